# platform = "fargate": the servers as an ECS service on Fargate instead of the Auto Scaling
# group. The same image, the same role and policy (the tasks' role), the same security group,
# log group, secrets and openpacs.toml; targets registered by IP with the same load balancer
# target groups. Each task runs three containers in order:
#   volumes  (root, CHOWN only) hands the task's volumes to openpacs' user and exits;
#   prepare  (fargate-prepare.sh) fetches the secrets as files, writes the database CA and
#            openpacs.toml, makes the web certificate, upgrades the schema and grants the
#            servers' role, as openpacs-prepare and openpacs-db-upgrade do on EC2;
#   openpacs the server, started only once prepare has succeeded.
# Secrets never appear in the task definition: prepare reads them with the task role.

locals {
  # openpacs.toml exactly as the EC2 boot script writes it: one source for both platforms.
  openpacs_toml = regex(
    "(?s)<<'TOML'\\n(.*?)\\nTOML\\n",
    templatefile("${path.module}/user-data.sh.tftpl", local.user_data_vars),
  )[0]

  task_volumes = { run = "/run/openpacs", conf = "/etc/openpacs", data = "/var/lib/openpacs" }
  task_logs = {
    logDriver = "awslogs"
    options = {
      awslogs-group         = aws_cloudwatch_log_group.openpacs.name
      awslogs-region        = local.region
      awslogs-stream-prefix = "fargate"
    }
  }
  # Docker's default capabilities but CHOWN: the volumes container may hand over the
  # volumes (owned by root on Fargate) and do nothing else.
  all_but_chown = [
    "AUDIT_WRITE", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
    "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
  ]
  health_probe = "import os, ssl, urllib.request as r; c = ssl.create_default_context(); c.check_hostname = False; c.verify_mode = ssl.CERT_NONE; r.urlopen(os.environ['OPENPACS_HEALTH_URL'], timeout=4, context=c)"

  containers = [
    {
      name                   = "volumes"
      image                  = var.container_image
      essential              = false
      user                   = "0"
      readonlyRootFilesystem = true
      entryPoint             = ["/bin/sh", "-c"]
      command                = ["chown 10001:10001 ${join(" ", values(local.task_volumes))} && chmod 0700 ${local.task_volumes.run}"]
      mountPoints            = [for name, path in local.task_volumes : { sourceVolume = name, containerPath = path, readOnly = false }]
      linuxParameters        = { capabilities = { drop = local.all_but_chown } }
      logConfiguration       = local.task_logs
    },
    {
      name                   = "prepare"
      image                  = var.container_image
      essential              = false
      user                   = "10001:10001"
      readonlyRootFilesystem = true
      entryPoint             = ["/bin/sh", "-c"]
      command                = [file("${path.module}/fargate-prepare.sh")]
      dependsOn              = [{ containerName = "volumes", condition = "SUCCESS" }]
      environment = [
        for name, value in {
          AWS_REGION           = local.region
          DB_SECRET_ARN        = var.database_secret_arn
          ADMIN_SECRET_ARN     = aws_secretsmanager_secret.admin.arn
          DICOM_TLS_SECRET_ARN = var.dicom_tls_secret_arn
          DB_CA_PARAMETER      = aws_ssm_parameter.database_ca.name
          DB_USER              = var.database_user
          DB_OWNER_URL         = "postgresql://${var.database_address}:${var.database_port}/${var.database_name}?sslmode=verify-full&sslrootcert=/etc/openpacs/rds-ca.pem"
          OPENPACS_TOML        = local.openpacs_toml
          OIDC_SECRET_ARN      = var.oidc_settings_secret_arn
        } : { name = name, value = tostring(value) }
      ]
      mountPoints = [
        { sourceVolume = "run", containerPath = local.task_volumes.run, readOnly = false },
        { sourceVolume = "conf", containerPath = local.task_volumes.conf, readOnly = false },
      ]
      linuxParameters  = { capabilities = { drop = ["ALL"] } }
      logConfiguration = local.task_logs
    },
    {
      name                   = "openpacs"
      image                  = var.container_image
      essential              = true
      user                   = "10001:10001"
      readonlyRootFilesystem = true
      command                = ["serve", "--config", "/etc/openpacs/openpacs.toml"]
      dependsOn              = [{ containerName = "prepare", condition = "SUCCESS" }]
      portMappings = [
        { containerPort = local.dicom_tls_port, protocol = "tcp" },
        { containerPort = local.https_port, protocol = "tcp" },
      ]
      environment = [
        { name = "AWS_REGION", value = local.region },
        { name = "OPENPACS_HEALTH_URL", value = "https://127.0.0.1:${local.https_port}/health" },
      ]
      mountPoints = [
        { sourceVolume = "run", containerPath = local.task_volumes.run, readOnly = true },
        { sourceVolume = "conf", containerPath = local.task_volumes.conf, readOnly = true },
        { sourceVolume = "data", containerPath = local.task_volumes.data, readOnly = false },
      ]
      healthCheck = {
        command     = ["CMD", "python", "-c", local.health_probe]
        interval    = 30
        timeout     = 5
        retries     = 3
        startPeriod = 60
      }
      stopTimeout      = 60 # openpacs finishes its associations and requests (40 s on EC2)
      linuxParameters  = { capabilities = { drop = ["ALL"] }, initProcessEnabled = true }
      logConfiguration = local.task_logs
    },
  ]
}

# --- the cluster: Container Insights, task storage encrypted with the deployment's key -------

resource "aws_ecs_cluster" "openpacs" {
  count = local.on_fargate ? 1 : 0
  name  = var.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  configuration {
    managed_storage_configuration {
      fargate_ephemeral_storage_kms_key_id = var.kms_key_arn
    }
  }

  tags = var.tags
}

# --- the execution role: pulls the image and writes the logs, nothing else ----------------

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "execution" {
  count              = local.on_fargate ? 1 : 0
  name_prefix        = "${var.name}-execution-"
  description        = "ECS for openpacs tasks: pull the image, write the logs"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "WriteItsLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
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

resource "aws_iam_role_policy" "execution" {
  count  = local.on_fargate ? 1 : 0
  name   = "openpacs-execution"
  role   = aws_iam_role.execution[0].id
  policy = data.aws_iam_policy_document.execution.json
}

# --- the task and the service ----------------------------------------------------------------

resource "aws_ecs_task_definition" "server" {
  count                    = local.on_fargate ? 1 : 0
  family                   = "${var.name}-server"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.fargate_cpu
  memory                   = var.fargate_memory
  execution_role_arn       = aws_iam_role.execution[0].arn
  task_role_arn            = aws_iam_role.server.arn
  container_definitions    = jsonencode(local.containers)

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  dynamic "volume" {
    for_each = local.task_volumes
    content {
      name = volume.key # task storage, encrypted with the cluster's key, gone with the task
    }
  }

  tags = var.tags
}

resource "aws_ecs_service" "server" {
  count                              = local.on_fargate ? 1 : 0
  name                               = "${var.name}-server"
  cluster                            = aws_ecs_cluster.openpacs[0].id
  task_definition                    = aws_ecs_task_definition.server[0].arn
  desired_count                      = var.min_size
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  deployment_minimum_healthy_percent = 50
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = 300
  enable_execute_command             = false
  propagate_tags                     = "SERVICE"
  enable_ecs_managed_tags            = true

  # A new image whose tasks never become healthy (a failed schema upgrade, a bad
  # configuration) is rolled back to the last one that was.
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [aws_security_group.server.id]
    assign_public_ip = false
  }

  # target_group_arns: the web (HTTPS) target group, then the DICOM one.
  load_balancer {
    target_group_arn = var.target_group_arns[0]
    container_name   = "openpacs"
    container_port   = local.https_port
  }

  load_balancer {
    target_group_arn = var.target_group_arns[1]
    container_name   = "openpacs"
    container_port   = local.dicom_tls_port
  }

  depends_on = [aws_iam_role_policy.server, aws_iam_role_policy.execution, aws_secretsmanager_secret_version.admin]

  tags = var.tags

  lifecycle {
    ignore_changes = [desired_count]
    precondition {
      condition     = var.max_size * local.connections_per_server + 10 <= var.database_max_connections
      error_message = "Database connections: max_size x workers x (database_pool_size + database_max_overflow) + 10 reserved must not exceed database_max_connections."
    }
    precondition {
      condition     = length(var.target_group_arns) == 2
      error_message = "target_group_arns: the web target group, then the DICOM one (target type ip)."
    }
  }
}

# Between min_size and max_size, on CPU, as the instance count stays between them on EC2.
resource "aws_appautoscaling_target" "server" {
  count              = local.on_fargate ? 1 : 0
  service_namespace  = "ecs"
  scalable_dimension = "ecs:service:DesiredCount"
  resource_id        = "service/${aws_ecs_cluster.openpacs[0].name}/${aws_ecs_service.server[0].name}"
  min_capacity       = var.min_size
  max_capacity       = max(var.max_size, var.min_size)
}

resource "aws_appautoscaling_policy" "server_cpu" {
  count              = local.on_fargate ? 1 : 0
  name               = "${var.name}-server-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.server[0].service_namespace
  scalable_dimension = aws_appautoscaling_target.server[0].scalable_dimension
  resource_id        = aws_appautoscaling_target.server[0].resource_id
  target_tracking_scaling_policy_configuration {
    target_value       = 60
    scale_in_cooldown  = 300
    scale_out_cooldown = 120
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}
