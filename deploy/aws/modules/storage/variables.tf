variable "name" {
  description = "Prefix for every resource name (lower case letters, digits, hyphens)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,23}$", var.name))
    error_message = "name: 2-24 characters (IAM name prefixes and bucket names are short), lower case letters, digits and hyphens, starting with a letter."
  }
}

variable "bucket_name" {
  description = "Name of the image bucket (globally unique); empty: derived from name, account and region."
  type        = string
  default     = ""
  validation {
    condition     = var.bucket_name == "" || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name: empty, or a valid S3 bucket name (3-63 lower case letters, digits, dots, hyphens)."
  }
}

variable "prefix" {
  description = "Key prefix openpacs stores under, without slashes at either end."
  type        = string
  default     = "archive"
  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9._/-]*[A-Za-z0-9]$", var.prefix)) && !can(regex("//", var.prefix))
    error_message = "prefix: letters, digits, '.', '_', '-' and single '/', not at either end."
  }
}

variable "kms_key_arn" {
  description = "Customer managed KMS key for SSE-KMS on the image bucket."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/", var.kms_key_arn))
    error_message = "kms_key_arn: the ARN of a KMS key (arn:aws:kms:REGION:ACCOUNT:key/ID)."
  }
}

variable "server_role_arn" {
  description = "IAM role of the openpacs servers: the only principal allowed to read or write objects."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/", var.server_role_arn))
    error_message = "server_role_arn: an IAM role ARN."
  }
}

variable "break_glass_principal_arns" {
  description = "Further IAM principals (e.g. a backup or incident-response role) allowed object access; empty by default."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for arn in var.break_glass_principal_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:", arn))])
    error_message = "break_glass_principal_arns: IAM principal ARNs."
  }
}

variable "infrequent_access_after_days" {
  description = "Days after which images move to S3 Standard-IA (cheaper, same speed; 0 disables)."
  type        = number
  default     = 90
  validation {
    condition     = var.infrequent_access_after_days == 0 || var.infrequent_access_after_days >= 30
    error_message = "infrequent_access_after_days: 0 or at least 30 (S3's minimum for Standard-IA)."
  }
}

variable "glacier_instant_after_days" {
  description = "Days after which images move to S3 Glacier Instant Retrieval (milliseconds to read, cheapest to keep; 0 disables)."
  type        = number
  default     = 365
  validation {
    condition     = var.glacier_instant_after_days == 0 || var.glacier_instant_after_days >= 90
    error_message = "glacier_instant_after_days: 0 or at least 90."
  }
}

variable "noncurrent_version_days" {
  description = "Days a replaced or deleted image version is kept before it expires (undo window for deletions)."
  type        = number
  default     = 30
  validation {
    condition     = var.noncurrent_version_days >= 1 && var.noncurrent_version_days <= 3650
    error_message = "noncurrent_version_days: between 1 and 3650."
  }
}

variable "log_retention_days" {
  description = "Days access logs (S3 and load balancers) are kept in the log bucket."
  type        = number
  default     = 365
  validation {
    condition     = var.log_retention_days >= 90
    error_message = "log_retention_days: at least 90."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "replicate" {
  description = "Replicate the images to a copy in a second region (replica_bucket_arn, replica_kms_key_arn, replication_role_arn: the replica module's outputs)."
  type        = bool
  default     = false
}

variable "replica_bucket_arn" {
  description = "The copy in a second region (replica module's bucket_arn), with replicate = true."
  type        = string
  default     = ""
  validation {
    condition     = var.replica_bucket_arn == "" || can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]+$", var.replica_bucket_arn))
    error_message = "replica_bucket_arn: empty or an S3 bucket ARN."
  }
}

variable "replica_kms_key_arn" {
  description = "The second region's key the copy is encrypted with (replica module's kms_key_arn); with replica_bucket_arn."
  type        = string
  default     = ""
  validation {
    condition     = var.replica_kms_key_arn == "" || can(regex("^arn:aws[a-z-]*:kms:", var.replica_kms_key_arn))
    error_message = "replica_kms_key_arn: empty or a KMS key ARN."
  }
}

variable "replication_role_arn" {
  description = "The role S3 replication assumes (replica module's replication_role_arn), admitted to the bucket's objects; with replica_bucket_arn."
  type        = string
  default     = ""
  validation {
    condition     = var.replication_role_arn == "" || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/", var.replication_role_arn))
    error_message = "replication_role_arn: empty or an IAM role ARN."
  }
}

variable "replica_storage_class" {
  description = "Storage class of the copies (read only in a recovery, so Standard-IA by default)."
  type        = string
  default     = "STANDARD_IA"
  validation {
    condition     = contains(["STANDARD", "STANDARD_IA", "ONEZONE_IA", "GLACIER_IR", "INTELLIGENT_TIERING"], var.replica_storage_class)
    error_message = "replica_storage_class: STANDARD, STANDARD_IA, ONEZONE_IA, GLACIER_IR or INTELLIGENT_TIERING."
  }
}
