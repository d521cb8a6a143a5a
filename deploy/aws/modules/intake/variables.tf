variable "name" {
  description = "Prefix for every resource name (lower case letters, digits, hyphens)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,23}$", var.name))
    error_message = "name: 2-24 characters, lower case letters, digits and hyphens, starting with a letter."
  }
}

variable "kms_key_arn" {
  description = "Customer managed KMS key: the uploads and the queue's messages."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/", var.kms_key_arn))
    error_message = "kms_key_arn: the ARN of a KMS key (arn:aws:kms:REGION:ACCOUNT:key/ID)."
  }
}

variable "log_bucket" {
  description = "Bucket receiving the intake bucket's access logs (storage module output log_bucket)."
  type        = string
}

variable "uploader_principal_arns" {
  description = "Principals that may upload (a site's role or user); empty: this account's principals with an IAM grant of their own."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for principal in var.uploader_principal_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:", principal))])
    error_message = "uploader_principal_arns: IAM principal ARNs."
  }
}

variable "expire_days" {
  description = "Days after upload an object is deleted (imported long before; kept a little for retries)."
  type        = number
  default     = 7
  validation {
    condition     = var.expire_days >= 1 && var.expire_days <= 90
    error_message = "expire_days: 1-90."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
