variable "name" {
  description = "Prefix for every resource name (lower case letters, digits, hyphens)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,23}$", var.name))
    error_message = "name: 2-24 characters, lower case letters, digits and hyphens, starting with a letter."
  }
}

variable "kms_key_arn" {
  description = "Customer managed KMS key that encrypts the alarm topic."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/", var.kms_key_arn))
    error_message = "kms_key_arn: the ARN of a KMS key (arn:aws:kms:REGION:ACCOUNT:key/ID)."
  }
}

variable "alarm_emails" {
  description = "Addresses subscribed to the alarm topic (each confirms by e-mail); other subscribers (chat, paging) can be added to the topic."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for address in var.alarm_emails : can(regex("^[^@ ]+@[^@ ]+\\.[^@ ]+$", address))])
    error_message = "alarm_emails: e-mail addresses."
  }
}

variable "metric_dimensions" {
  description = "The load balancers' and target groups' CloudWatch dimensions (ingress module output metric_dimensions)."
  type = object({
    web_load_balancer   = string
    web_target_group    = string
    dicom_load_balancer = string
    dicom_target_group  = string
  })
}

variable "database_identifier" {
  description = "The database instance's identifier."
  type        = string
}

variable "server_log_group" {
  description = "openpacs' CloudWatch log group (compute module output log_group)."
  type        = string
}

variable "database_cpu_percent" {
  description = "Alarm when the database's average CPU stays above this for 15 minutes."
  type        = number
  default     = 80
  validation {
    condition     = var.database_cpu_percent > 0 && var.database_cpu_percent <= 100
    error_message = "database_cpu_percent: 1-100."
  }
}

variable "database_free_storage_gb" {
  description = "Alarm when the database's free storage falls below this many GB."
  type        = number
  default     = 10
  validation {
    condition     = var.database_free_storage_gb >= 1
    error_message = "database_free_storage_gb: at least 1."
  }
}

variable "http_5xx_per_5_minutes" {
  description = "Alarm when openpacs answers more HTTP 5xx than this in 5 minutes."
  type        = number
  default     = 10
  validation {
    condition     = var.http_5xx_per_5_minutes >= 0
    error_message = "http_5xx_per_5_minutes: 0 or more."
  }
}

variable "association_refusals_per_5_minutes" {
  description = "Alarm when openpacs refuses more DICOM associations than this in 5 minutes (a misconfigured modality, or someone probing)."
  type        = number
  default     = 5
  validation {
    condition     = var.association_refusals_per_5_minutes >= 0
    error_message = "association_refusals_per_5_minutes: 0 or more."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
