variable "name" {
  description = "Prefix for every resource name (lower case letters, digits, hyphens)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,23}$", var.name))
    error_message = "name: 2-24 characters (IAM name prefixes and bucket names are short), lower case letters, digits and hyphens, starting with a letter."
  }
}

variable "vpc_id" {
  description = "VPC of the servers."
  type        = string
}

variable "subnet_ids" {
  description = "Private application subnets (two zones) the servers run in."
  type        = list(string)
  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "subnet_ids: at least two private subnets, in different availability zones."
  }
}

variable "database_cidrs" {
  description = "Address ranges of the database subnets (PostgreSQL egress)."
  type        = list(string)
  validation {
    condition     = alltrue([for cidr in var.database_cidrs : can(cidrhost(cidr, 0))])
    error_message = "database_cidrs: IPv4 CIDRs."
  }
}

variable "load_balancer_security_group_ids" {
  description = "Security groups of the load balancers: the only sources admitted to the servers."
  type        = list(string)
}

variable "target_group_arns" {
  description = "Load balancer target groups the servers register with."
  type        = list(string)
}

variable "container_image" {
  description = "openpacs container image (built from deploy/Dockerfile), preferably pinned by digest: REGISTRY/openpacs@sha256:..."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9._/:-]*(@sha256:[a-f0-9]{64}|:[A-Za-z0-9._-]+)$", var.container_image))
    error_message = "container_image: REGISTRY/NAME:TAG or REGISTRY/NAME@sha256:DIGEST."
  }
}

variable "ecr_repository_arn" {
  description = "ECR repository holding container_image, which the servers may pull from; empty for a public registry."
  type        = string
  default     = ""
  validation {
    condition     = var.ecr_repository_arn == "" || can(regex("^arn:aws[a-z-]*:ecr:", var.ecr_repository_arn))
    error_message = "ecr_repository_arn: empty or an ECR repository ARN."
  }
}

variable "instance_type" {
  description = "EC2 instance type; openpacs runs one DICOM worker per core."
  type        = string
  default     = "t3.large"
}

variable "ami_ssm_parameter" {
  description = "SSM parameter holding the Amazon Linux 2023 AMI to boot."
  type        = string
  default     = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
}

variable "min_size" {
  description = "Fewest servers; 2 keeps the service up through a zone or instance failure."
  type        = number
  default     = 2
  validation {
    condition     = var.min_size >= 1
    error_message = "min_size: at least 1."
  }
}

variable "max_size" {
  description = "Most servers."
  type        = number
  default     = 4
  validation {
    condition     = var.max_size >= 1 && var.max_size <= 20
    error_message = "max_size: between 1 and 20."
  }
}

variable "root_volume_gb" {
  description = "Root volume size (GB): the OS, the image and received files in transit to S3."
  type        = number
  default     = 40
  validation {
    condition     = var.root_volume_gb >= 20
    error_message = "root_volume_gb: at least 20."
  }
}

variable "kms_key_arn" {
  description = "Customer managed KMS key: EBS volumes, the S3 objects, the secrets, the logs."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/", var.kms_key_arn))
    error_message = "kms_key_arn: the ARN of a KMS key (arn:aws:kms:REGION:ACCOUNT:key/ID)."
  }
}

variable "bucket" {
  description = "Image bucket name."
  type        = string
}

variable "bucket_prefix" {
  description = "Key prefix in the bucket; the servers may use nothing else."
  type        = string
}

variable "database_address" {
  description = "PostgreSQL host name."
  type        = string
}

variable "database_port" {
  description = "PostgreSQL port."
  type        = number
  default     = 5432
}

variable "database_name" {
  description = "Name of the openpacs database."
  type        = string
}

variable "database_secret_arn" {
  description = "Secrets Manager secret with the database credentials (the RDS-managed master secret)."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:secretsmanager:", var.database_secret_arn))
    error_message = "database_secret_arn: a Secrets Manager secret ARN."
  }
}

variable "ae_title" {
  description = "openpacs' DICOM AE title."
  type        = string
  default     = "OPENPACS"
  validation {
    condition     = can(regex("^[A-Z0-9_ -]{1,16}$", var.ae_title)) && trimspace(var.ae_title) != ""
    error_message = "ae_title: 1-16 upper case letters, digits, spaces, '_' or '-'."
  }
}

variable "admin_user" {
  description = "Name of the first openpacs administrator; the password is generated into Secrets Manager."
  type        = string
  default     = "admin"
  validation {
    condition     = can(regex("^[A-Za-z0-9_.@-]{1,64}$", var.admin_user))
    error_message = "admin_user: 1-64 letters, digits, '_', '.', '@' or '-'."
  }
}

variable "log_retention_days" {
  description = "Days openpacs' logs are kept in CloudWatch."
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
