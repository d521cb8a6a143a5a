variable "name" {
  description = "Prefix for every resource name (lower case letters, digits, hyphens)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,23}$", var.name))
    error_message = "name: 2-24 characters (IAM name prefixes and bucket names are short), lower case letters, digits and hyphens, starting with a letter."
  }
}

variable "cidr_block" {
  description = "The VPC's address range; split into public, application and database subnets in two availability zones."
  type        = string
  default     = "10.40.0.0/16"
  validation {
    condition     = can(cidrhost(var.cidr_block, 0)) && tonumber(split("/", var.cidr_block)[1]) <= 20
    error_message = "cidr_block: an IPv4 CIDR of /20 or larger."
  }
}

variable "nat_gateways" {
  description = "NAT gateways for the application subnets: 0 (the default: images from ECR and packages from S3 go through the endpoints), 1 or 2 (one per zone) for a registry outside AWS."
  type        = number
  default     = 0
  validation {
    condition     = contains([0, 1, 2], var.nat_gateways)
    error_message = "nat_gateways: 0, 1 or 2."
  }
}

variable "kms_key_arn" {
  description = "Customer managed KMS key that encrypts the flow log group."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/", var.kms_key_arn))
    error_message = "kms_key_arn: the ARN of a KMS key (arn:aws:kms:REGION:ACCOUNT:key/ID)."
  }
}

variable "flow_log_retention_days" {
  description = "Days VPC flow logs are kept (a year or more satisfies most audit rules)."
  type        = number
  default     = 365
  validation {
    condition     = contains([365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.flow_log_retention_days)
    error_message = "flow_log_retention_days: a CloudWatch retention of at least 365 days (365, 400, 545, 731, 1096, 1827, ...)."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
