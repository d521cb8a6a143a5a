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
  description = "NAT gateways: 0 (the servers reach ECR, S3 and the AWS APIs through endpoints), or 1 or 2 with https_egress_cidrs for a registry outside AWS."
  type        = number
  default     = 0
  validation {
    condition     = contains([0, 1, 2], var.nat_gateways)
    error_message = "nat_gateways: 0, 1 or 2."
  }
}

variable "https_egress_cidrs" {
  description = "Extra HTTPS destinations of the servers, only for a registry outside AWS (with nat_gateways)."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for cidr in var.https_egress_cidrs : can(cidrhost(cidr, 0))])
    error_message = "https_egress_cidrs: IPv4 CIDRs."
  }
}

variable "ami_id" {
  description = "Amazon Linux 2023 AMI of the servers, pinned (deploy/README.md, Updating): aws ssm get-parameter --name /aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64 --query Parameter.Value --output text."
  type        = string
  validation {
    condition     = can(regex("^ami-[0-9a-f]{8}([0-9a-f]{9})?$", var.ami_id))
    error_message = "ami_id: an AMI ID (ami-0123456789abcdef0)."
  }
}

variable "dicom_tls_secret_arn" {
  description = "Secrets Manager secret (JSON: certificate, private_key, client_ca; PEM) with the DICOM server certificate for dicom_host_name and the CA of the modalities' client certificates (deploy/README.md)."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:secretsmanager:", var.dicom_tls_secret_arn))
    error_message = "dicom_tls_secret_arn: a Secrets Manager secret ARN."
  }
}

variable "dicom_peers" {
  description = "The modalities and workstations allowed to associate (aet, host, port, tls); openpacs refuses every other calling AE title."
  type = list(object({
    aet  = string
    host = string
    port = number
    tls  = bool
  }))
  validation {
    condition     = length(var.dicom_peers) >= 1
    error_message = "dicom_peers: at least one AE (unknown AEs are refused)."
  }
}

variable "dicom_destinations" {
  description = "Networks and ports the servers may open DICOM associations to (C-MOVE destinations, send jobs)."
  type = list(object({
    cidr = string
    port = number
  }))
  default = []
  validation {
    condition     = alltrue([for d in var.dicom_destinations : can(cidrhost(d.cidr, 0)) && d.cidr != "0.0.0.0/0"])
    error_message = "dicom_destinations: IPv4 CIDRs, not 0.0.0.0/0."
  }
}

variable "database_ca_file" {
  description = "File (beside this configuration) with the region's RDS CA bundle: curl -o rds-ca.pem https://truststore.pki.rds.amazonaws.com/REGION/REGION-bundle.pem"
  type        = string
  default     = "rds-ca.pem"
  validation {
    condition     = endswith(var.database_ca_file, ".pem")
    error_message = "database_ca_file: a .pem file name."
  }
}

variable "workers" {
  description = "openpacs worker processes per server (one per vCPU of instance_type)."
  type        = number
  default     = 2
  validation {
    condition     = var.workers >= 1 && var.workers <= 64
    error_message = "workers: 1-64."
  }
}

variable "database_max_connections" {
  description = "PostgreSQL max_connections (about 400 for db.t4g.medium); max_servers x workers x 15 + 10 must fit."
  type        = number
  default     = 400
  validation {
    condition     = var.database_max_connections >= 20 && var.database_max_connections <= 5000
    error_message = "database_max_connections: 20-5000."
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

variable "blob_store" {
  description = "Where the images go: \"s3\" (the bucket, the default) or \"rds\" (PostgreSQL, beside the index: one service to back up, encrypt and replicate; see the sizing note in deploy/README.md)."
  type        = string
  default     = "s3"
  validation {
    condition     = contains(["s3", "rds"], var.blob_store)
    error_message = "blob_store: \"s3\" or \"rds\"."
  }
}

variable "database_allocated_storage_gb" {
  description = "Initial RDS storage (GB). The index alone needs about 10 KB per instance; with blob_store = \"rds\" add the images themselves (plus about 10 %)."
  type        = number
  default     = 50
  validation {
    condition     = var.database_allocated_storage_gb >= 20 && var.database_allocated_storage_gb <= 65536
    error_message = "database_allocated_storage_gb: 20 to 65536 (the gp3 limits)."
  }
}

variable "database_max_allocated_storage_gb" {
  description = "Ceiling of RDS storage autoscaling (GB); with blob_store = \"rds\" the archive's size for the years ahead."
  type        = number
  default     = 500
  validation {
    condition     = var.database_max_allocated_storage_gb >= 20 && var.database_max_allocated_storage_gb <= 65536
    error_message = "database_max_allocated_storage_gb: 20 to 65536 (the gp3 limits)."
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

variable "alarm_emails" {
  description = "Addresses that receive the alarms (unhealthy servers, database CPU and storage, HTTP 5xx, refused associations)."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for address in var.alarm_emails : can(regex("^[^@ ]+@[^@ ]+\\.[^@ ]+$", address))])
    error_message = "alarm_emails: e-mail addresses."
  }
}

variable "privatelink_allowed_principals" {
  description = "AWS principals (a hospital's account) allowed to connect to DICOM through PrivateLink, without any public endpoint."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for principal in var.privatelink_allowed_principals : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:", principal))])
    error_message = "privatelink_allowed_principals: IAM principal ARNs (never *)."
  }
}

variable "intake" {
  description = "Make the bulk-upload intake: a bucket sites upload studies to and a queue of its events that `openpacs import --watch` consumes."
  type        = bool
  default     = false
}

variable "intake_uploader_principal_arns" {
  description = "Principals allowed to upload to the intake bucket (a site's role)."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for principal in var.intake_uploader_principal_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:", principal))])
    error_message = "intake_uploader_principal_arns: IAM principal ARNs."
  }
}

variable "identity" {
  description = "Single sign-on with a Cognito user pool (identity module): openpacs' [auth.oidc] points at it. Needs nat_gateways >= 1: the servers reach Cognito over the internet."
  type        = bool
  default     = false
  validation {
    condition     = !var.identity || var.nat_gateways >= 1
    error_message = "identity: needs nat_gateways = 1 or 2 (a user pool with a domain has no VPC endpoint)."
  }
}

variable "identity_domain_prefix" {
  description = "Prefix of the user pool's hosted UI (<prefix>.auth.<region>.amazoncognito.com); empty: <name>-<account id>."
  type        = string
  default     = ""
  validation {
    condition     = var.identity_domain_prefix == "" || can(regex("^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$", var.identity_domain_prefix))
    error_message = "identity_domain_prefix: empty, or lower case letters, digits and hyphens."
  }
}

variable "identity_mfa" {
  description = "Multi-factor authentication in the user pool: \"required\" or \"optional\"."
  type        = string
  default     = "required"
  validation {
    condition     = contains(["required", "optional"], var.identity_mfa)
    error_message = "identity_mfa: \"required\" or \"optional\"."
  }
}

variable "platform" {
  description = "Where the servers run: \"ec2\" (Auto Scaling group, the default) or \"fargate\" (an ECS service on Fargate with the same image, role and load balancers; see deploy/README.md)."
  type        = string
  default     = "ec2"
  validation {
    condition     = contains(["ec2", "fargate"], var.platform)
    error_message = "platform: \"ec2\" or \"fargate\"."
  }
}

variable "fargate_cpu" {
  description = "CPU units of a Fargate task (1024 = one vCPU), with platform = \"fargate\"."
  type        = number
  default     = 2048
  validation {
    condition     = contains([1024, 2048, 4096, 8192, 16384], var.fargate_cpu)
    error_message = "fargate_cpu: 1024, 2048, 4096, 8192 or 16384."
  }
}

variable "fargate_memory" {
  description = "Memory of a Fargate task in MiB (2 to 8 GB per vCPU), with platform = \"fargate\"."
  type        = number
  default     = 8192
  validation {
    condition     = var.fargate_memory >= 2048 && var.fargate_memory <= 122880 && var.fargate_memory % 1024 == 0
    error_message = "fargate_memory: whole GiB (a multiple of 1024) from 2048 to 122880."
  }
}

variable "replica_region" {
  description = "A second region the images are replicated to (S3 replication, a key of that region, deletions mirrored, old versions kept 90 days there; see deploy/README.md, Backups and recovery); empty: none."
  type        = string
  default     = ""
  validation {
    condition     = var.replica_region == "" || (can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.replica_region)) && var.replica_region != var.region)
    error_message = "replica_region: empty or an AWS region name such as eu-central-1, other than region."
  }
}
