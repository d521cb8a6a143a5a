variable "name" {
  description = "Prefix for every resource name (lower case letters, digits, hyphens)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,23}$", var.name))
    error_message = "name: 2-24 characters, lower case letters, digits and hyphens, starting with a letter."
  }
}

variable "source_bucket_arn" {
  description = "ARN of the image bucket that is copied (storage module's bucket_arn)."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]+$", var.source_bucket_arn))
    error_message = "source_bucket_arn: an S3 bucket ARN."
  }
}

variable "source_kms_key_arn" {
  description = "ARN of the key the image bucket is encrypted with (replication decrypts with it)."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.source_kms_key_arn))
    error_message = "source_kms_key_arn: a KMS key ARN."
  }
}

variable "source_region" {
  description = "Region of the image bucket; the copy must be in another one."
  type        = string
  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.source_region))
    error_message = "source_region: an AWS region name such as eu-west-1."
  }
}

variable "prefix" {
  description = "Key prefix openpacs stores under in the image bucket: what is copied."
  type        = string
  default     = "archive"
  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9._/-]*[A-Za-z0-9]$", var.prefix)) && !can(regex("//", var.prefix))
    error_message = "prefix: letters, digits, '.', '_', '-' and single '/', not at either end."
  }
}

variable "noncurrent_version_days" {
  description = "Days the copy keeps a replaced or deleted image version (a deletion can be undone from the copy for this long)."
  type        = number
  default     = 90
  validation {
    condition     = var.noncurrent_version_days >= 1
    error_message = "noncurrent_version_days: at least 1."
  }
}

variable "break_glass_principal_arns" {
  description = "IAM principals (a recovery role) allowed object access to the copy besides replication; empty by default."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for arn in var.break_glass_principal_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:", arn))])
    error_message = "break_glass_principal_arns: IAM principal ARNs."
  }
}

variable "log_retention_days" {
  description = "Days the copy's access logs are kept."
  type        = number
  default     = 365
  validation {
    condition     = var.log_retention_days >= 90
    error_message = "log_retention_days: at least 90."
  }
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
