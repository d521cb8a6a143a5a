# A complete openpacs deployment: network, KMS key, image bucket, PostgreSQL, load balancers and
# the servers. Copy this folder, fill terraform.tfvars (see terraform.tfvars.example), then
# `terraform init && terraform apply`. No variable holds a secret.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account   = data.aws_caller_identity.current.account_id
  partition = data.aws_partition.current.partition
  region    = data.aws_region.current.name
}

# --- the Auto Scaling service-linked role ---------------------------------------------------
# A role of this deployment's own (a custom suffix), created before the key whose policy names
# it: the account's default AWSServiceRoleForAutoScaling exists only once Auto Scaling has
# been used, and naming a missing role fails the key's creation.

resource "aws_iam_service_linked_role" "autoscaling" {
  aws_service_name = "autoscaling.amazonaws.com"
  custom_suffix    = var.name
  description      = "Auto Scaling for openpacs ${var.name}: launches servers with volumes encrypted by its key"
}

# --- one customer managed key for everything at rest ----------------------------------------

data "aws_iam_policy_document" "key" {
  #checkov:skip=CKV_AWS_111:A KMS key policy: resource "*" means this key only, and kms:* for the account root is AWS's default statement that delegates access to IAM policies.
  #checkov:skip=CKV_AWS_356:A KMS key policy: resource "*" means this key only.
  #checkov:skip=CKV_AWS_109:A KMS key policy: the account root administers its own key (AWS's default statement); IAM policies then decide who may use it.
  statement {
    sid       = "AccountAdministersTheKeyThroughIam"
    actions   = ["kms:*"]
    resources = ["*"] # in a key policy, "*" is this key
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account}:root"]
    }
  }

  statement {
    sid       = "CloudWatchLogsEncryptsThisDeploymentsLogs"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values = [
        "arn:${local.partition}:logs:${local.region}:${local.account}:log-group:/openpacs/${var.name}/*",
        "arn:${local.partition}:logs:${local.region}:${local.account}:log-group:/aws/rds/instance/${var.name}-index/*",
      ]
    }
  }

  # CloudWatch alarms publish to the alarm topic, which this key encrypts.
  statement {
    sid       = "CloudWatchAlarmsPublishToTheEncryptedTopic"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }

  # Auto Scaling launches the servers with volumes encrypted by this key.
  statement {
    sid       = "AutoScalingUsesTheKeyForVolumes"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = [aws_iam_service_linked_role.autoscaling.arn]
    }
  }

  # platform = "fargate": Fargate encrypts the tasks' storage with this key (cluster setting).
  dynamic "statement" {
    for_each = var.platform == "fargate" ? ["kms:GenerateDataKeyWithoutPlaintext", "kms:CreateGrant"] : []
    content {
      sid       = statement.value == "kms:CreateGrant" ? "FargateGrantsForTaskStorage" : "FargateEncryptsTaskStorage"
      actions   = [statement.value]
      resources = ["*"]
      principals {
        type        = "Service"
        identifiers = ["fargate.amazonaws.com"]
      }
      condition {
        test     = "StringEquals"
        variable = "kms:EncryptionContext:aws:ecs:clusterAccount"
        values   = [local.account]
      }
      condition {
        test     = "StringEquals"
        variable = "kms:EncryptionContext:aws:ecs:clusterName"
        values   = [var.name]
      }
      dynamic "condition" {
        for_each = statement.value == "kms:CreateGrant" ? ["Decrypt"] : []
        content {
          test     = "ForAllValues:StringEquals"
          variable = "kms:GrantOperations"
          values   = [condition.value]
        }
      }
    }
  }

  statement {
    sid       = "AutoScalingGrantsForVolumes"
    actions   = ["kms:CreateGrant"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = [aws_iam_service_linked_role.autoscaling.arn]
    }
    condition {
      test     = "Bool"
      variable = "kms:GrantIsForAWSResource"
      values   = ["true"]
    }
  }
}

resource "aws_kms_key" "openpacs" {
  description             = "openpacs ${var.name}: images, index, secrets, logs, volumes"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.key.json
}

resource "aws_kms_alias" "openpacs" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.openpacs.key_id
}

# --- the parts ------------------------------------------------------------------------------

module "network" {
  source       = "../../modules/network"
  name         = var.name
  cidr_block   = var.vpc_cidr
  nat_gateways = var.nat_gateways
  kms_key_arn  = aws_kms_key.openpacs.arn
}

module "storage" {
  source          = "../../modules/storage"
  name            = var.name
  kms_key_arn     = aws_kms_key.openpacs.arn
  server_role_arn = module.compute.role_arn

  replicate            = var.replica_region != ""
  replica_bucket_arn   = try(module.replica[0].bucket_arn, "")
  replica_kms_key_arn  = try(module.replica[0].kms_key_arn, "")
  replication_role_arn = try(module.replica[0].replication_role_arn, "")
}

# --- with replica_region: the images copied to a second region --------------------------------

provider "aws" {
  alias  = "replica"
  region = coalesce(var.replica_region, var.region) # unused without replica_region
  default_tags {
    tags = merge(var.tags, { Application = "openpacs", Deployment = var.name })
  }
}

module "replica" {
  source             = "../../modules/replica"
  count              = var.replica_region != "" ? 1 : 0
  providers          = { aws = aws.replica }
  name               = var.name
  source_bucket_arn  = module.storage.bucket_arn
  source_kms_key_arn = aws_kms_key.openpacs.arn
  source_region      = var.region
  prefix             = module.storage.prefix
}

module "database" {
  source                    = "../../modules/database"
  name                      = var.name
  vpc_id                    = module.network.vpc_id
  subnet_ids                = module.network.database_subnet_ids
  client_security_group_ids = [module.compute.security_group_id]
  kms_key_arn               = aws_kms_key.openpacs.arn
  instance_class            = var.database_instance_class
  multi_az                  = var.database_multi_az
  deletion_protection       = var.deletion_protection
  max_connections           = var.database_max_connections
  allocated_storage_gb      = var.database_allocated_storage_gb
  max_allocated_storage_gb  = max(var.database_max_allocated_storage_gb, var.database_allocated_storage_gb)
}

module "ingress" {
  source              = "../../modules/ingress"
  name                = var.name
  vpc_id              = module.network.vpc_id
  public_subnet_ids   = module.network.public_subnet_ids
  target_cidrs        = module.network.application_subnet_cidrs
  certificate_arn     = var.certificate_arn
  web_client_cidrs    = var.web_client_cidrs
  dicom_client_cidrs  = var.dicom_client_cidrs
  log_bucket          = module.storage.log_bucket
  deletion_protection = var.deletion_protection

  target_type = var.platform == "fargate" ? "ip" : "instance"

  privatelink_allowed_principals = var.privatelink_allowed_principals
  private_subnet_ids             = module.network.application_subnet_ids
}

module "compute" {
  source                           = "../../modules/compute"
  name                             = var.name
  vpc_id                           = module.network.vpc_id
  subnet_ids                       = module.network.application_subnet_ids
  database_cidrs                   = module.network.database_subnet_cidrs
  load_balancer_security_group_ids = module.ingress.security_group_ids
  target_group_arns                = module.ingress.target_group_arns
  container_image                  = var.container_image
  ecr_repository_arn               = var.ecr_repository_arn
  instance_type                    = var.instance_type
  min_size                         = var.min_servers
  max_size                         = var.max_servers
  kms_key_arn                      = aws_kms_key.openpacs.arn
  bucket                           = module.storage.bucket
  bucket_prefix                    = module.storage.prefix
  blob_store                       = var.blob_store
  database_address                 = module.database.address
  database_port                    = module.database.port
  database_name                    = module.database.database_name
  database_secret_arn              = module.database.master_user_secret_arn
  database_resource_id             = module.database.resource_id
  database_ca_bundle               = file("${path.root}/${var.database_ca_file}")
  database_max_connections         = module.database.max_connections
  workers                          = var.workers
  ae_title                         = var.ae_title
  ami_id                           = var.ami_id
  service_linked_role_arn          = aws_iam_service_linked_role.autoscaling.arn
  endpoint_security_group_id       = module.network.endpoint_security_group_id
  s3_prefix_list_id                = module.network.s3_prefix_list_id
  https_egress_cidrs               = local.https_egress_cidrs
  trusted_proxy_cidrs              = module.network.public_subnet_cidrs
  dicom_tls_secret_arn             = var.dicom_tls_secret_arn
  dicom_peers                      = var.dicom_peers
  dicom_destinations               = var.dicom_destinations
  intake_bucket_arn                = try(module.intake[0].bucket_arn, "")
  intake_queue_arn                 = try(module.intake[0].queue_arn, "")
  oidc_settings_secret_arn         = try(module.identity[0].settings_secret_arn, "")

  platform       = var.platform
  fargate_cpu    = var.fargate_cpu
  fargate_memory = var.fargate_memory
}

module "operations" {
  source              = "../../modules/operations"
  name                = var.name
  kms_key_arn         = aws_kms_key.openpacs.arn
  alarm_emails        = var.alarm_emails
  metric_dimensions   = module.ingress.metric_dimensions
  database_identifier = module.database.identifier
  server_log_group    = module.compute.log_group
}

module "intake" {
  source                  = "../../modules/intake"
  count                   = var.intake ? 1 : 0
  name                    = var.name
  kms_key_arn             = aws_kms_key.openpacs.arn
  log_bucket              = module.storage.log_bucket
  uploader_principal_arns = var.intake_uploader_principal_arns
}

# --- single sign-on (identity = true) -------------------------------------------------------
# A Cognito user pool; openpacs is its public client. A user pool with a domain cannot be
# reached through a VPC endpoint: the servers reach Cognito over HTTPS through the NAT
# gateways (discovery, keys, the token endpoint), so identity needs nat_gateways >= 1.

locals {
  portal_url         = "https://${var.web_host_name != "" ? var.web_host_name : module.ingress.web_dns_name}"
  https_egress_cidrs = var.identity ? distinct(concat(var.https_egress_cidrs, ["0.0.0.0/0"])) : var.https_egress_cidrs
}

module "identity" {
  source              = "../../modules/identity"
  count               = var.identity ? 1 : 0
  name                = var.name
  kms_key_arn         = aws_kms_key.openpacs.arn
  portal_url          = local.portal_url
  domain_prefix       = var.identity_domain_prefix
  mfa                 = var.identity_mfa
  deletion_protection = var.deletion_protection
}
