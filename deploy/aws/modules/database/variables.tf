variable "name" {
  description = "Prefix for every resource name (lower case letters, digits, hyphens)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,23}$", var.name))
    error_message = "name: 2-24 characters (IAM name prefixes and bucket names are short), lower case letters, digits and hyphens, starting with a letter."
  }
}

variable "vpc_id" {
  description = "VPC of the database."
  type        = string
}

variable "subnet_ids" {
  description = "Private database subnets, in at least two availability zones."
  type        = list(string)
  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "subnet_ids: at least two subnets, in different availability zones."
  }
}

variable "client_security_group_ids" {
  description = "Security groups (the openpacs servers) allowed to connect on the PostgreSQL port."
  type        = list(string)
  validation {
    condition     = length(var.client_security_group_ids) >= 1
    error_message = "client_security_group_ids: at least one security group."
  }
}

variable "kms_key_arn" {
  description = "Customer managed KMS key for the storage, the managed master password secret, Performance Insights and logs."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/", var.kms_key_arn))
    error_message = "kms_key_arn: the ARN of a KMS key (arn:aws:kms:REGION:ACCOUNT:key/ID)."
  }
}

variable "engine_version" {
  description = "PostgreSQL major version."
  type        = string
  default     = "16"
  validation {
    condition     = contains(["15", "16", "17"], var.engine_version)
    error_message = "engine_version: 15, 16 or 17."
  }
}

variable "instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.medium"
  validation {
    condition     = can(regex("^db\\.", var.instance_class))
    error_message = "instance_class: an RDS class such as db.t4g.medium or db.m7g.large."
  }
}

variable "allocated_storage_gb" {
  description = "Initial storage (GB); it grows automatically up to max_allocated_storage_gb. The index is small: about 10 KB per instance."
  type        = number
  default     = 50
  validation {
    condition     = var.allocated_storage_gb >= 20 && var.allocated_storage_gb <= 65536
    error_message = "allocated_storage_gb: between 20 and 65536."
  }
}

variable "max_allocated_storage_gb" {
  description = "Ceiling for storage autoscaling (GB)."
  type        = number
  default     = 500
  validation {
    condition     = var.max_allocated_storage_gb >= 20 && var.max_allocated_storage_gb <= 65536
    error_message = "max_allocated_storage_gb: between 20 and 65536."
  }
}

variable "multi_az" {
  description = "A standby in the second zone with automatic failover (doubles the instance cost)."
  type        = bool
  default     = true
}

variable "backup_retention_days" {
  description = "Days of automated backups (point-in-time recovery window)."
  type        = number
  default     = 14
  validation {
    condition     = var.backup_retention_days >= 7 && var.backup_retention_days <= 35
    error_message = "backup_retention_days: between 7 and 35."
  }
}

variable "deletion_protection" {
  description = "Refuse to delete the database (turn off deliberately before a destroy)."
  type        = bool
  default     = true
}

variable "master_username" {
  description = "Master user name; its password is generated and kept by RDS in Secrets Manager, never by Terraform."
  type        = string
  default     = "openpacs"
  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.master_username)) && !contains(["postgres", "admin", "rdsadmin"], var.master_username)
    error_message = "master_username: lower case letters, digits, underscores, starting with a letter; not a reserved name."
  }
}

variable "database_name" {
  description = "Name of the openpacs database."
  type        = string
  default     = "openpacs"
  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.database_name))
    error_message = "database_name: lower case letters, digits, underscores, starting with a letter."
  }
}

variable "log_retention_days" {
  description = "Days the PostgreSQL logs are kept in CloudWatch."
  type        = number
  default     = 365
  validation {
    condition     = contains([365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days: a CloudWatch retention of at least 365 days."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "max_connections" {
  description = "PostgreSQL max_connections; fit it to the instance class (RDS' default is about memory / 9.5 MB: 400 for 4 GB)."
  type        = number
  default     = 400
  validation {
    condition     = var.max_connections >= 20 && var.max_connections <= 5000
    error_message = "max_connections: 20-5000."
  }
}
