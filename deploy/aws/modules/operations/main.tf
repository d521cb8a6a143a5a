# Alarms to an SNS topic (encrypted with the deployment's key): targets the load balancers
# find unhealthy, the database's CPU and free storage, HTTP 5xx answers from openpacs, and
# refused DICOM associations (a metric filter on openpacs' log: "association rejected",
# which it logs for every A-ASSOCIATE-RJ it sends).

resource "aws_sns_topic" "alarms" {
  name              = "${var.name}-alarms"
  kms_master_key_id = var.kms_key_arn
  tags              = var.tags
}

resource "aws_sns_topic_subscription" "email" {
  for_each  = toset(var.alarm_emails)
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = each.key
}

locals {
  actions = [aws_sns_topic.alarms.arn]
  targets = {
    web   = { load_balancer = var.metric_dimensions.web_load_balancer, target_group = var.metric_dimensions.web_target_group, namespace = "AWS/ApplicationELB" }
    dicom = { load_balancer = var.metric_dimensions.dicom_load_balancer, target_group = var.metric_dimensions.dicom_target_group, namespace = "AWS/NetworkELB" }
  }
}

resource "aws_cloudwatch_metric_alarm" "unhealthy_targets" {
  for_each            = local.targets
  alarm_name          = "${var.name}-${each.key}-unhealthy-targets"
  alarm_description   = "openpacs servers the ${each.key} load balancer finds unhealthy (/health)"
  namespace           = each.value.namespace
  metric_name         = "UnHealthyHostCount"
  dimensions          = { LoadBalancer = each.value.load_balancer, TargetGroup = each.value.target_group }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 3
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "http_5xx" {
  alarm_name          = "${var.name}-http-5xx"
  alarm_description   = "HTTP 5xx answers from openpacs behind the web load balancer"
  namespace           = "AWS/ApplicationELB"
  metric_name         = "HTTPCode_Target_5XX_Count"
  dimensions          = { LoadBalancer = var.metric_dimensions.web_load_balancer }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.http_5xx_per_5_minutes
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "database_cpu" {
  alarm_name          = "${var.name}-database-cpu"
  alarm_description   = "The index database's CPU"
  namespace           = "AWS/RDS"
  metric_name         = "CPUUtilization"
  dimensions          = { DBInstanceIdentifier = var.database_identifier }
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 3
  threshold           = var.database_cpu_percent
  comparison_operator = "GreaterThanThreshold"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "database_storage" {
  alarm_name          = "${var.name}-database-free-storage"
  alarm_description   = "Free storage of the index database (storage autoscaling has a ceiling)"
  namespace           = "AWS/RDS"
  metric_name         = "FreeStorageSpace"
  dimensions          = { DBInstanceIdentifier = var.database_identifier }
  statistic           = "Minimum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.database_free_storage_gb * 1024 * 1024 * 1024
  comparison_operator = "LessThanThreshold"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

resource "aws_cloudwatch_log_metric_filter" "association_refusals" {
  name           = "${var.name}-association-refusals"
  log_group_name = var.server_log_group
  pattern        = "\"association rejected\""
  metric_transformation {
    name          = "AssociationRefusals"
    namespace     = "openpacs/${var.name}"
    value         = "1"
    default_value = "0"
  }
}

resource "aws_cloudwatch_metric_alarm" "association_refusals" {
  alarm_name          = "${var.name}-association-refusals"
  alarm_description   = "DICOM associations openpacs refused (unknown AE, no client certificate, no common context)"
  namespace           = "openpacs/${var.name}"
  metric_name         = aws_cloudwatch_log_metric_filter.association_refusals.metric_transformation[0].name
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.association_refusals_per_5_minutes
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  tags                = var.tags
}
