variable "name" {
  description = "Prefix for every resource name (lower case letters, digits, hyphens)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,24}$", var.name))
    error_message = "name: 2-25 characters (load balancer names are short), lower case letters, digits, hyphens."
  }
}

variable "vpc_id" {
  description = "VPC of the load balancers."
  type        = string
}

variable "public_subnet_ids" {
  description = "Public subnets (two zones) for the load balancers."
  type        = list(string)
  validation {
    condition     = length(var.public_subnet_ids) >= 2
    error_message = "public_subnet_ids: at least two subnets, in different availability zones."
  }
}

variable "target_cidrs" {
  description = "Address ranges of the openpacs servers (the application subnets): the only place the load balancers send traffic to."
  type        = list(string)
  validation {
    condition     = length(var.target_cidrs) >= 1 && alltrue([for cidr in var.target_cidrs : can(cidrhost(cidr, 0))])
    error_message = "target_cidrs: one or more IPv4 CIDRs."
  }
}

variable "certificate_arn" {
  description = "ACM certificate (issued by ACM or imported) for the HTTPS and DICOM TLS listeners."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/", var.certificate_arn))
    error_message = "certificate_arn: the ARN of an ACM certificate."
  }
}

variable "web_client_cidrs" {
  description = "Address ranges allowed to reach the web interface and DICOMweb over HTTPS (443). 0.0.0.0/0 is refused: list your sites and VPN ranges."
  type        = list(string)
  validation {
    condition = length(var.web_client_cidrs) >= 1 && alltrue([
      for cidr in var.web_client_cidrs : can(cidrhost(cidr, 0)) && !contains(["0.0.0.0/0", "::/0"], cidr)
    ])
    error_message = "web_client_cidrs: one or more valid CIDRs, and not 0.0.0.0/0 or ::/0."
  }
}

variable "dicom_client_cidrs" {
  description = "Address ranges of the modalities and workstations allowed to reach DICOM over TLS. 0.0.0.0/0 is refused."
  type        = list(string)
  validation {
    condition = length(var.dicom_client_cidrs) >= 1 && alltrue([
      for cidr in var.dicom_client_cidrs : can(cidrhost(cidr, 0)) && !contains(["0.0.0.0/0", "::/0"], cidr)
    ])
    error_message = "dicom_client_cidrs: one or more valid CIDRs, and not 0.0.0.0/0 or ::/0."
  }
}

variable "dicom_port" {
  description = "Port modalities connect to for DICOM over TLS (2762 is IANA's dicom-tls)."
  type        = number
  default     = 2762
  validation {
    condition     = var.dicom_port >= 1 && var.dicom_port <= 65535 && var.dicom_port != 443
    error_message = "dicom_port: 1-65535, not 443."
  }
}

variable "target_dicom_tls_port" {
  description = "openpacs' DICOM TLS port on the servers ([dicom] tls_port)."
  type        = number
  default     = 2762
}

variable "target_https_port" {
  description = "openpacs' HTTPS port on the servers ([http] port)."
  type        = number
  default     = 8042
}

variable "log_bucket" {
  description = "Bucket for the load balancers' access logs (written under lb/)."
  type        = string
}

variable "web_acl_arn" {
  description = "Optional AWS WAF web ACL to attach to the web load balancer; empty: none."
  type        = string
  default     = ""
  validation {
    condition     = var.web_acl_arn == "" || can(regex("^arn:aws[a-z-]*:wafv2:", var.web_acl_arn))
    error_message = "web_acl_arn: empty or a WAFv2 web ACL ARN."
  }
}

variable "deletion_protection" {
  description = "Refuse to delete the load balancers (their DNS names are what sites configure)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "privatelink_allowed_principals" {
  description = "AWS principals (account roots or roles, e.g. arn:aws:iam::444455556666:root) allowed to request a PrivateLink connection to DICOM; empty: no endpoint service."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for principal in var.privatelink_allowed_principals : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:", principal))])
    error_message = "privatelink_allowed_principals: IAM principal ARNs (never *)."
  }
}

variable "private_subnet_ids" {
  description = "Subnets of the internal load balancer behind the PrivateLink endpoint service (the application subnets); used only with privatelink_allowed_principals."
  type        = list(string)
  default     = []
  validation {
    condition     = length(var.private_subnet_ids) == 0 || length(var.private_subnet_ids) >= 2
    error_message = "private_subnet_ids: none, or at least two (one per availability zone)."
  }
}

variable "target_type" {
  description = "How the servers register with the target groups: \"instance\" (EC2 Auto Scaling) or \"ip\" (ECS tasks on Fargate)."
  type        = string
  default     = "instance"
  validation {
    condition     = contains(["instance", "ip"], var.target_type)
    error_message = "target_type: \"instance\" or \"ip\"."
  }
}
