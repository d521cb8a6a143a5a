# RDS PostgreSQL for the openpacs index: private subnets only, storage encrypted with the
# customer key, TLS forced (rds.force_ssl), deletion protection and backups on, and the master
# password generated and kept by RDS in Secrets Manager (manage_master_user_password), so no
# password is ever a Terraform variable or in Terraform state.

resource "aws_db_subnet_group" "this" {
  name_prefix = "${var.name}-"
  description = "openpacs index database, private subnets"
  subnet_ids  = var.subnet_ids
  tags        = var.tags
}

resource "aws_security_group" "this" {
  name_prefix = "${var.name}-database-"
  description = "PostgreSQL from the openpacs servers only"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-database" })
  lifecycle {
    create_before_destroy = true
  }
}

# count, not for_each: the groups' IDs are only known after apply, their number before it.
resource "aws_vpc_security_group_ingress_rule" "clients" {
  count                        = length(var.client_security_group_ids)
  security_group_id            = aws_security_group.this.id
  description                  = "PostgreSQL from openpacs"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = var.client_security_group_ids[count.index]
}

resource "aws_db_parameter_group" "this" {
  name_prefix = "${var.name}-pg${var.engine_version}-"
  family      = "postgres${var.engine_version}"
  description = "openpacs: TLS only, connection and slow-statement logging"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
  parameter {
    name  = "ssl_min_protocol_version"
    value = "TLSv1.2"
  }
  parameter {
    name  = "log_connections"
    value = "1"
  }
  parameter {
    name  = "log_disconnections"
    value = "1"
  }
  # Statements are logged by duration and DDL only: a full statement log would copy patient
  # names and identifiers from every query into the logs. openpacs sends values as bound
  # parameters, never in the statement text, and the parameters are never logged, so a slow
  # statement's log line holds its SQL and duration, no patient data.
  parameter {
    name  = "log_statement"
    value = "ddl"
  }
  parameter {
    name  = "log_min_duration_statement"
    value = "2000"
  }
  parameter {
    name  = "log_parameter_max_length"
    value = "0"
  }
  parameter {
    name  = "log_parameter_max_length_on_error"
    value = "0"
  }
  # Fixed rather than derived from the instance's memory, so the servers' connection budget
  # (compute module: max_size x workers x (pool + overflow)) is checked against it at plan.
  parameter {
    name         = "max_connections"
    value        = tostring(var.max_connections)
    apply_method = "pending-reboot"
  }

  tags = var.tags
  lifecycle {
    create_before_destroy = true
  }
}

locals {
  log_exports = ["postgresql", "upgrade"]
}

# One group per exported log, made here with the key and a retention before RDS would make
# it without either.
resource "aws_cloudwatch_log_group" "exports" {
  for_each          = toset(local.log_exports)
  name              = "/aws/rds/instance/${var.name}-index/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "monitoring" {
  name_prefix        = "${var.name}-rdsmon-"
  assume_role_policy = data.aws_iam_policy_document.monitoring_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "monitoring" {
  role       = aws_iam_role.monitoring.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "this" {
  identifier     = "${var.name}-index"
  engine         = "postgres"
  engine_version = var.engine_version
  instance_class = var.instance_class
  db_name        = var.database_name

  username                      = var.master_username
  manage_master_user_password   = true
  master_user_secret_kms_key_id = var.kms_key_arn

  allocated_storage     = var.allocated_storage_gb
  max_allocated_storage = var.max_allocated_storage_gb
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = var.kms_key_arn

  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [aws_security_group.this.id]
  publicly_accessible    = false
  multi_az               = var.multi_az
  parameter_group_name   = aws_db_parameter_group.this.name
  ca_cert_identifier     = "rds-ca-rsa2048-g1"

  iam_database_authentication_enabled = true
  backup_retention_period             = var.backup_retention_days
  backup_window                       = "02:00-03:00"
  maintenance_window                  = "sun:03:30-sun:04:30"
  copy_tags_to_snapshot               = true
  deletion_protection                 = var.deletion_protection
  skip_final_snapshot                 = false
  final_snapshot_identifier           = "${var.name}-index-final"
  delete_automated_backups            = false
  auto_minor_version_upgrade          = true
  apply_immediately                   = false

  enabled_cloudwatch_logs_exports       = local.log_exports
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = var.kms_key_arn
  performance_insights_retention_period = 7
  monitoring_interval                   = 60
  monitoring_role_arn                   = aws_iam_role.monitoring.arn

  tags       = var.tags
  depends_on = [aws_cloudwatch_log_group.exports]
}
