output "web_url" {
  description = "Where users log in (after pointing web_host_name at web_load_balancer)."
  value       = "https://${var.web_host_name != "" ? var.web_host_name : module.ingress.web_dns_name}/"
}

output "web_load_balancer" {
  description = "DNS name of the web load balancer (CNAME or alias target for web_host_name)."
  value       = module.ingress.web_dns_name
}

output "dicom_endpoint" {
  description = "What a modality is configured with: host, port, AE title, TLS."
  value = {
    host     = var.dicom_host_name != "" ? var.dicom_host_name : module.ingress.dicom_dns_name
    port     = module.ingress.dicom_port
    ae_title = module.compute.ae_title
    tls      = true
  }
}

output "dicom_load_balancer" {
  description = "DNS name of the DICOM load balancer (CNAME or alias target for dicom_host_name)."
  value       = module.ingress.dicom_dns_name
}

output "bucket" {
  description = "The image bucket."
  value       = module.storage.bucket
}

output "admin_password_secret_arn" {
  description = "Secret with the first administrator's password: aws secretsmanager get-secret-value --secret-id ARN --query SecretString --output text"
  value       = module.compute.admin_password_secret_arn
}

output "database_secret_arn" {
  description = "Secret RDS keeps the database credentials in."
  value       = module.database.master_user_secret_arn
}

output "autoscaling_group" {
  description = "Auto Scaling group of the servers (administration: aws ssm start-session --target INSTANCE_ID); null with platform = \"fargate\"."
  value       = module.compute.autoscaling_group_name
}

output "kms_key_arn" {
  description = "The customer managed key."
  value       = aws_kms_key.openpacs.arn
}

output "alarm_topic_arn" {
  description = "SNS topic of the alarms: subscribe paging or chat to it."
  value       = module.operations.alarm_topic_arn
}

output "privatelink_service_name" {
  description = "PrivateLink endpoint service for DICOM (with privatelink_allowed_principals)."
  value       = module.ingress.privatelink_service_name
}

output "intake" {
  description = "Bulk-upload intake: bucket to upload to and the queue openpacs consumes (with intake = true)."
  value       = var.intake ? { bucket = module.intake[0].bucket, queue_url = module.intake[0].queue_url } : null
}

output "identity" {
  description = "Single sign-on (with identity = true): the user pool, where users are made and put in the role groups, and its hosted UI."
  value = var.identity ? {
    user_pool_id = module.identity[0].user_pool_id
    hosted_ui    = module.identity[0].hosted_ui
    issuer       = module.identity[0].issuer
    client_id    = module.identity[0].client_id
    groups       = module.identity[0].groups
  } : null
}

output "ecs_service" {
  description = "With platform = \"fargate\": the ECS cluster and service of the servers (aws ecs update-service --force-new-deployment rolls them)."
  value       = module.compute.ecs_service
}

output "replica_bucket" {
  description = "With replica_region: the copy of the images in the second region."
  value       = try(module.replica[0].bucket, null)
}
