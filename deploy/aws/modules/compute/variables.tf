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

variable "ami_id" {
  description = "Amazon Linux 2023 AMI the servers boot, pinned: a new one rolls every server (an instance refresh), so change it deliberately (deploy/README.md, Updating)."
  type        = string
  validation {
    condition     = can(regex("^ami-[0-9a-f]{8}([0-9a-f]{9})?$", var.ami_id))
    error_message = "ami_id: an AMI ID (ami-0123456789abcdef0)."
  }
}

variable "service_linked_role_arn" {
  description = "Auto Scaling service-linked role the group uses (made by the caller, so the KMS key policy can name it before the group exists)."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling", var.service_linked_role_arn))
    error_message = "service_linked_role_arn: an Auto Scaling service-linked role ARN."
  }
}

variable "endpoint_security_group_id" {
  description = "Security group of the VPC's interface endpoints: the servers' HTTPS egress goes there."
  type        = string
}

variable "s3_prefix_list_id" {
  description = "Prefix list of S3 in the region (the gateway endpoint's): the servers' HTTPS egress to S3."
  type        = string
}

variable "dicom_destinations" {
  description = "Networks and ports openpacs may open DICOM associations to (C-MOVE destinations, send jobs); nothing else is reachable from the servers."
  type = list(object({
    cidr = string
    port = number
  }))
  default = []
  validation {
    condition = alltrue([
      for d in var.dicom_destinations :
      can(cidrhost(d.cidr, 0)) && d.cidr != "0.0.0.0/0" && d.port >= 1 && d.port <= 65535
    ])
    error_message = "dicom_destinations: IPv4 CIDRs (not 0.0.0.0/0) with ports 1-65535."
  }
}

variable "dicom_peers" {
  description = "The AEs allowed to associate (openpacs refuses any other calling AE title), and where C-MOVE reaches them: aet, host, port, tls."
  type = list(object({
    aet  = string
    host = string
    port = number
    tls  = bool
  }))
  validation {
    condition = alltrue([
      for peer in var.dicom_peers :
      can(regex("^[ -~]{1,16}$", peer.aet)) && !strcontains(peer.aet, "\\") && trimspace(peer.aet) != "" &&
      can(regex("^[A-Za-z0-9.:-]+$", peer.host)) && peer.port >= 1 && peer.port <= 65535
    ]) && length(distinct([for peer in var.dicom_peers : peer.aet])) == length(var.dicom_peers)
    error_message = "dicom_peers: AE titles of 1-16 printable characters without backslash, each once; a host name or address; a port 1-65535."
  }
}

variable "dicom_tls_secret_arn" {
  description = "Secrets Manager secret (JSON: certificate, private_key, client_ca; PEM) with the DICOM server certificate the modalities verify and the CA of their client certificates: TLS passes through the load balancer to openpacs."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:secretsmanager:", var.dicom_tls_secret_arn))
    error_message = "dicom_tls_secret_arn: a Secrets Manager secret ARN."
  }
}

variable "database_ca_bundle" {
  description = "PEM of the RDS certificate authorities (the region's bundle from the RDS trust store), kept in SSM for sslmode=verify-full."
  type        = string
  validation {
    condition     = startswith(trimspace(var.database_ca_bundle), "-----BEGIN CERTIFICATE-----") && length(var.database_ca_bundle) <= 8192
    error_message = "database_ca_bundle: PEM certificates, at most 8 KB (an SSM advanced parameter)."
  }
}

variable "trusted_proxy_cidrs" {
  description = "Where the web load balancer connects from (its subnets): openpacs believes X-Forwarded-For only from there ([http] trusted_proxies)."
  type        = list(string)
  validation {
    condition     = alltrue([for cidr in var.trusted_proxy_cidrs : can(cidrhost(cidr, 0)) && cidr != "0.0.0.0/0"])
    error_message = "trusted_proxy_cidrs: IPv4 CIDRs, not 0.0.0.0/0."
  }
}

variable "workers" {
  description = "openpacs worker processes per server ([dicom] workers): one per vCPU of instance_type is a good start."
  type        = number
  default     = 2
  validation {
    condition     = var.workers >= 1 && var.workers <= 64
    error_message = "workers: 1-64."
  }
}

variable "database_pool_size" {
  description = "Connections each worker keeps open ([database] pool_size)."
  type        = number
  default     = 5
  validation {
    condition     = var.database_pool_size >= 1 && var.database_pool_size <= 200
    error_message = "database_pool_size: 1-200."
  }
}

variable "database_max_overflow" {
  description = "Extra connections each worker may open under load ([database] max_overflow)."
  type        = number
  default     = 10
  validation {
    condition     = var.database_max_overflow >= 0 && var.database_max_overflow <= 1000
    error_message = "database_max_overflow: 0-1000."
  }
}

variable "database_max_connections" {
  description = "The database's max_connections: max_size x workers x (pool + overflow) + 10 must fit (checked at plan)."
  type        = number
  validation {
    condition     = var.database_max_connections >= 20
    error_message = "database_max_connections: at least 20."
  }
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

variable "blob_store" {
  description = "Where the servers keep images: \"s3\" (the bucket) or \"rds\" (the index database, [storage] url = \"postgresql\")."
  type        = string
  default     = "s3"
  validation {
    condition     = contains(["s3", "rds"], var.blob_store)
    error_message = "blob_store: \"s3\" or \"rds\"."
  }
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

variable "database_resource_id" {
  description = "The database instance's resource ID (db-...), for the servers' rds-db:connect permission."
  type        = string
  validation {
    condition     = can(regex("^db-[A-Z0-9]+$", var.database_resource_id))
    error_message = "database_resource_id: an RDS resource ID (db-ABCDEFGHIJKLMNOP)."
  }
}

variable "database_user" {
  description = "Login role the servers connect as, with RDS IAM tokens; `openpacs db grant` makes it (row access only) at every rollout."
  type        = string
  default     = "openpacs_server"
  validation {
    condition     = can(regex("^[a-z_][a-z0-9_]{0,62}$", var.database_user))
    error_message = "database_user: lower-case letters, digits and _ (at most 63)."
  }
}

variable "database_secret_arn" {
  description = "Secrets Manager secret with the schema owner's credentials (the RDS-managed master secret), used only by the one-shot upgrade and grant step, never by openpacs serving."
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

variable "https_egress_cidrs" {
  description = "Extra HTTPS destinations, only for a container registry outside AWS (reached through NAT); empty by default: the servers reach AWS through the VPC endpoints only."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for cidr in var.https_egress_cidrs : can(cidrhost(cidr, 0))])
    error_message = "https_egress_cidrs: IPv4 CIDRs."
  }
}

variable "intake_bucket_arn" {
  description = "Bulk-upload intake bucket (intake module) the servers import from and clean up; empty: none."
  type        = string
  default     = ""
  validation {
    condition     = var.intake_bucket_arn == "" || can(regex("^arn:aws[a-z-]*:s3:::", var.intake_bucket_arn))
    error_message = "intake_bucket_arn: empty or an S3 bucket ARN."
  }
}

variable "intake_queue_arn" {
  description = "SQS queue of the intake bucket's events, which `openpacs import --watch` consumes; empty: none."
  type        = string
  default     = ""
  validation {
    condition     = var.intake_queue_arn == "" || can(regex("^arn:aws[a-z-]*:sqs:", var.intake_queue_arn))
    error_message = "intake_queue_arn: empty or an SQS queue ARN."
  }
}

variable "oidc_settings_secret_arn" {
  description = "Secrets Manager secret (JSON) with openpacs' [auth.oidc] settings, from the identity module; the servers pass them to openpacs as OPENPACS_AUTH__OIDC__* values. Empty: no single sign-on."
  type        = string
  default     = ""
  validation {
    condition     = var.oidc_settings_secret_arn == "" || can(regex("^arn:aws[a-z-]*:secretsmanager:", var.oidc_settings_secret_arn))
    error_message = "oidc_settings_secret_arn: empty or a Secrets Manager secret ARN."
  }
}

variable "platform" {
  description = "Where the servers run: \"ec2\" (an Auto Scaling group of instances running the image in Docker, the default) or \"fargate\" (an ECS service on Fargate: the same image, role, security group and target groups, which must then have target type ip)."
  type        = string
  default     = "ec2"
  validation {
    condition     = contains(["ec2", "fargate"], var.platform)
    error_message = "platform: \"ec2\" or \"fargate\"."
  }
}

variable "fargate_cpu" {
  description = "CPU units of a Fargate task (1024 = one vCPU); with platform = \"fargate\" only."
  type        = number
  default     = 2048
  validation {
    condition     = contains([1024, 2048, 4096, 8192, 16384], var.fargate_cpu)
    error_message = "fargate_cpu: 1024, 2048, 4096, 8192 or 16384."
  }
}

variable "fargate_memory" {
  description = "Memory of a Fargate task in MiB (allowed values depend on fargate_cpu: 2 to 8 GB per vCPU); with platform = \"fargate\" only."
  type        = number
  default     = 8192
  validation {
    condition     = var.fargate_memory >= 2048 && var.fargate_memory <= 122880 && var.fargate_memory % 1024 == 0
    error_message = "fargate_memory: whole GiB (a multiple of 1024) from 2048 to 122880."
  }
}
