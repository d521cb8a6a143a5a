# openpacs servers: an Auto Scaling group in the private application subnets, behind the load
# balancers. No SSH key and no port 22: administrators use SSM Session Manager. The instance
# role may read its two secrets, use its KMS key, and read and write its bucket prefix; nothing
# else. The first administrator's password is generated straight into Secrets Manager through
# a write-only argument, so it is in neither the plan nor the state.

data "aws_region" "current" {}
data "aws_partition" "current" {}

data "aws_ssm_parameter" "ami" {
  name = var.ami_ssm_parameter
}

locals {
  region         = data.aws_region.current.region
  bucket_arn     = "arn:${data.aws_partition.current.partition}:s3:::${var.bucket}"
  dicom_tls_port = 2762
  https_port     = 8042

  # Everything the boot script is rendered with (tests render it with the same names).
  user_data_vars = {
    region           = local.region
    image            = var.container_image
    ecr_login        = var.ecr_repository_arn != "" ? "true" : "false"
    db_host          = var.database_address
    db_port          = var.database_port
    db_name          = var.database_name
    db_secret_arn    = var.database_secret_arn
    admin_secret_arn = aws_secretsmanager_secret.admin.arn
    admin_user       = var.admin_user
    bucket           = var.bucket
    prefix           = var.bucket_prefix
    kms_key_arn      = var.kms_key_arn
    ae_title         = var.ae_title
    log_group        = aws_cloudwatch_log_group.openpacs.name
    dicom_tls_port   = local.dicom_tls_port
    https_port       = local.https_port
  }
}

# --- the first administrator's password -----------------------------------------------------

resource "aws_secretsmanager_secret" "admin" {
  #checkov:skip=CKV2_AWS_57:The first administrator's initial password; it is changed in openpacs after the first login, where rotation applies, not here.
  name_prefix             = "${var.name}-admin-password-"
  description             = "openpacs: initial password of the first administrator (${var.admin_user})"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = 7
  tags                    = var.tags
}

ephemeral "random_password" "admin" {
  length  = 32
  special = false
}

resource "aws_secretsmanager_secret_version" "admin" {
  secret_id                = aws_secretsmanager_secret.admin.id
  secret_string_wo         = ephemeral.random_password.admin.result
  secret_string_wo_version = 1
}

# --- logs -----------------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "openpacs" {
  name              = "/openpacs/${var.name}/server"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

# --- the instance role ----------------------------------------------------------------------

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "server" {
  name_prefix        = "${var.name}-server-"
  description        = "openpacs servers: their secrets, their key, their bucket prefix, SSM"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "ssm" {
  role       = aws_iam_role.server.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

data "aws_iam_policy_document" "server" {
  statement {
    sid       = "ReadItsSecrets"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = [var.database_secret_arn, aws_secretsmanager_secret.admin.arn]
  }

  statement {
    sid       = "UseItsKey"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = [var.kms_key_arn]
  }

  # openpacs checks the bucket with HeadBucket at start-up, which needs s3:ListBucket and
  # carries no prefix: "IfExists" lets it through while listings stay inside the prefix.
  statement {
    sid       = "ListItsPrefix"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket_arn]
    condition {
      test     = "StringLikeIfExists"
      variable = "s3:prefix"
      values   = [var.bucket_prefix, "${var.bucket_prefix}/*"]
    }
  }

  statement {
    sid       = "LocateItsBucket"
    actions   = ["s3:GetBucketLocation"]
    resources = [local.bucket_arn]
  }

  statement {
    sid = "ReadWriteItsPrefix"
    actions = [
      "s3:GetObject", "s3:PutObject", "s3:DeleteObject",
      "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts",
    ]
    resources = ["${local.bucket_arn}/${var.bucket_prefix}/*"]
  }

  statement {
    sid       = "WriteItsLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${aws_cloudwatch_log_group.openpacs.arn}:*"]
  }

  dynamic "statement" {
    for_each = var.ecr_repository_arn != "" ? [var.ecr_repository_arn] : []
    content {
      sid       = "PullItsImage"
      actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = var.ecr_repository_arn != "" ? [var.ecr_repository_arn] : []
    content {
      sid       = "LogInToEcr"
      actions   = ["ecr:GetAuthorizationToken"]
      resources = ["*"] # this action has no resource-level permissions
    }
  }
}

resource "aws_iam_role_policy" "server" {
  name   = "openpacs-server"
  role   = aws_iam_role.server.id
  policy = data.aws_iam_policy_document.server.json
}

resource "aws_iam_instance_profile" "server" {
  name_prefix = "${var.name}-server-"
  role        = aws_iam_role.server.name
  tags        = var.tags
}

# --- network access -------------------------------------------------------------------------

resource "aws_security_group" "server" {
  name_prefix = "${var.name}-server-"
  description = "openpacs servers: DICOM TLS and HTTPS from the load balancers only"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-server" })
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "dicom_tls" {
  count                        = length(var.load_balancer_security_group_ids)
  security_group_id            = aws_security_group.server.id
  description                  = "DICOM TLS from a load balancer"
  ip_protocol                  = "tcp"
  from_port                    = local.dicom_tls_port
  to_port                      = local.dicom_tls_port
  referenced_security_group_id = var.load_balancer_security_group_ids[count.index]
}

resource "aws_vpc_security_group_ingress_rule" "https" {
  count                        = length(var.load_balancer_security_group_ids)
  security_group_id            = aws_security_group.server.id
  description                  = "HTTPS and health checks from a load balancer"
  ip_protocol                  = "tcp"
  from_port                    = local.https_port
  to_port                      = local.https_port
  referenced_security_group_id = var.load_balancer_security_group_ids[count.index]
}

resource "aws_vpc_security_group_egress_rule" "postgresql" {
  for_each          = toset(var.database_cidrs)
  security_group_id = aws_security_group.server.id
  description       = "PostgreSQL to the database subnets"
  ip_protocol       = "tcp"
  from_port         = 5432
  to_port           = 5432
  cidr_ipv4         = each.key
}

resource "aws_vpc_security_group_egress_rule" "https_out" {
  #checkov:skip=CKV_AWS_382:HTTPS only, to AWS APIs (through the VPC endpoints), the container registry, OS packages and the RDS CA bundle (through NAT); the servers accept no inbound connection from these.
  security_group_id = aws_security_group.server.id
  description       = "HTTPS to AWS APIs, the registry, OS packages"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

# --- instances ------------------------------------------------------------------------------

resource "aws_launch_template" "server" {
  name_prefix            = "${var.name}-server-"
  description            = "openpacs server"
  image_id               = data.aws_ssm_parameter.ami.insecure_value
  instance_type          = var.instance_type
  vpc_security_group_ids = [aws_security_group.server.id]
  user_data              = base64encode(templatefile("${path.module}/user-data.sh.tftpl", local.user_data_vars))
  update_default_version = true
  ebs_optimized          = true

  iam_instance_profile {
    arn = aws_iam_instance_profile.server.arn
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size           = var.root_volume_gb
      volume_type           = "gp3"
      encrypted             = true
      kms_key_id            = var.kms_key_arn
      delete_on_termination = true
    }
  }

  monitoring {
    enabled = true
  }

  tag_specifications {
    resource_type = "instance"
    tags          = merge(var.tags, { Name = "${var.name}-server" })
  }

  tag_specifications {
    resource_type = "volume"
    tags          = merge(var.tags, { Name = "${var.name}-server" })
  }

  tags = var.tags
}

resource "aws_autoscaling_group" "server" {
  name_prefix               = "${var.name}-server-"
  vpc_zone_identifier       = var.subnet_ids
  min_size                  = var.min_size
  max_size                  = max(var.max_size, var.min_size)
  desired_capacity          = var.min_size
  health_check_type         = "ELB"
  health_check_grace_period = 600
  target_group_arns         = var.target_group_arns
  default_instance_warmup   = 300

  launch_template {
    id      = aws_launch_template.server.id
    version = aws_launch_template.server.latest_version
  }

  instance_refresh {
    strategy = "Rolling"
    preferences {
      min_healthy_percentage = 50
    }
  }

  dynamic "tag" {
    for_each = merge(var.tags, { Name = "${var.name}-server" })
    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }

  lifecycle {
    ignore_changes = [desired_capacity]
  }

  depends_on = [aws_iam_role_policy.server, aws_secretsmanager_secret_version.admin]
}
