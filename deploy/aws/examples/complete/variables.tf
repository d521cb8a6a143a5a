variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "eu-west-1"
  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region: an AWS region name such as eu-west-1."
  }
}

variable "name" {
  description = "Name of this deployment: the prefix of every resource (lower case letters, digits, hyphens)."
  type        = string
  default     = "openpacs"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "name: 2-21 characters, lower case letters, digits and hyphens, starting with a letter."
  }
}

variable "certificate_arn" {
  description = "ACM certificate for the web and DICOM host names (requested in ACM, or imported)."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/", var.certificate_arn))
    error_message = "certificate_arn: the ARN of an ACM certificate."
  }
}

variable "web_host_name" {
  description = "Host name users browse to (covered by the certificate); empty: the load balancer's own name."
  type        = string
  default     = ""
}

variable "dicom_host_name" {
  description = "Host name modalities connect to (covered by the certificate); empty: the load balancer's own name."
  type        = string
  default     = ""
}

variable "web_client_cidrs" {
  description = "Address ranges allowed to use the web interface and DICOMweb (your sites, your VPN). 0.0.0.0/0 is refused."
  type        = list(string)
  validation {
    condition = length(var.web_client_cidrs) >= 1 && alltrue([
      for cidr in var.web_client_cidrs : can(cidrhost(cidr, 0)) && !contains(["0.0.0.0/0", "::/0"], cidr)
    ])
    error_message = "web_client_cidrs: one or more valid CIDRs, and not 0.0.0.0/0 or ::/0."
  }
}

variable "dicom_client_cidrs" {
  description = "Address ranges of the modalities and workstations allowed to send and retrieve over DICOM TLS. 0.0.0.0/0 is refused."
  type        = list(string)
  validation {
    condition = length(var.dicom_client_cidrs) >= 1 && alltrue([
      for cidr in var.dicom_client_cidrs : can(cidrhost(cidr, 0)) && !contains(["0.0.0.0/0", "::/0"], cidr)
    ])
    error_message = "dicom_client_cidrs: one or more valid CIDRs, and not 0.0.0.0/0 or ::/0."
  }
}

variable "container_image" {
  description = "openpacs image built from deploy/Dockerfile and pushed to your registry, pinned by digest (REGISTRY/openpacs@sha256:...)."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9._/:-]*(@sha256:[a-f0-9]{64}|:[A-Za-z0-9._-]+)$", var.container_image))
    error_message = "container_image: REGISTRY/NAME:TAG or REGISTRY/NAME@sha256:DIGEST."
  }
}

variable "ecr_repository_arn" {
  description = "ECR repository of container_image, which the servers may pull from; empty for a public registry."
  type        = string
  default     = ""
  validation {
    condition     = var.ecr_repository_arn == "" || can(regex("^arn:aws[a-z-]*:ecr:", var.ecr_repository_arn))
    error_message = "ecr_repository_arn: empty or an ECR repository ARN."
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

variable "vpc_cidr" {
  description = "Address range of the new VPC."
  type        = string
  default     = "10.40.0.0/16"
  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0))
    error_message = "vpc_cidr: an IPv4 CIDR."
  }
}

variable "nat_gateways" {
  description = "NAT gateways: 1 (cheaper) or 2 (one per zone)."
  type        = number
  default     = 1
  validation {
    condition     = contains([1, 2], var.nat_gateways)
    error_message = "nat_gateways: 1 or 2 (the servers pull their image and packages through NAT)."
  }
}

variable "instance_type" {
  description = "EC2 instance type of the openpacs servers."
  type        = string
  default     = "t3.large"
}

variable "min_servers" {
  description = "Fewest openpacs servers (2: survives the loss of a zone)."
  type        = number
  default     = 2
  validation {
    condition     = var.min_servers >= 1 && var.min_servers <= 20
    error_message = "min_servers: between 1 and 20."
  }
}

variable "max_servers" {
  description = "Most openpacs servers."
  type        = number
  default     = 4
  validation {
    condition     = var.max_servers >= 1 && var.max_servers <= 20
    error_message = "max_servers: between 1 and 20."
  }
}

variable "database_instance_class" {
  description = "RDS instance class of the index database."
  type        = string
  default     = "db.t4g.medium"
  validation {
    condition     = can(regex("^db\\.", var.database_instance_class))
    error_message = "database_instance_class: an RDS class such as db.t4g.medium."
  }
}

variable "database_multi_az" {
  description = "Keep a standby database in the second zone."
  type        = bool
  default     = true
}

variable "deletion_protection" {
  description = "Protect the database and the load balancers from deletion."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
