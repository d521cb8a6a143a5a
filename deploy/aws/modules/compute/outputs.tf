output "role_arn" {
  description = "IAM role of the openpacs servers (the only principal the bucket serves)."
  value       = aws_iam_role.server.arn
}

output "security_group_id" {
  description = "Security group of the servers (the database admits it)."
  value       = aws_security_group.server.id
}

output "autoscaling_group_name" {
  description = "The Auto Scaling group (aws ssm start-session works on its instances); empty on Fargate."
  value       = one(aws_autoscaling_group.server[*].name)
}

output "ecs_service" {
  description = "The ECS cluster and service of the servers on Fargate; null on EC2."
  value       = local.on_fargate ? { cluster = one(aws_ecs_cluster.openpacs[*].name), service = one(aws_ecs_service.server[*].name) } : null
}

output "admin_password_secret_arn" {
  description = "Secrets Manager secret with the first administrator's password (read it with aws secretsmanager get-secret-value)."
  value       = aws_secretsmanager_secret.admin.arn
}

output "log_group" {
  description = "CloudWatch log group of openpacs."
  value       = aws_cloudwatch_log_group.openpacs.name
}

output "ae_title" {
  description = "openpacs' DICOM AE title."
  value       = var.ae_title
}

output "database_connections" {
  description = "Most connections the servers open to PostgreSQL: max_size x workers x (pool + overflow)."
  value       = var.max_size * local.connections_per_server
}
