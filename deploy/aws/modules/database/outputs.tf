output "address" {
  description = "Host name of the database."
  value       = aws_db_instance.this.address
}

output "port" {
  description = "PostgreSQL port."
  value       = aws_db_instance.this.port
}

output "database_name" {
  description = "Name of the openpacs database."
  value       = aws_db_instance.this.db_name
}

output "master_user_secret_arn" {
  description = "Secrets Manager secret RDS keeps the master credentials in (JSON with username and password)."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}

output "security_group_id" {
  description = "The database's security group."
  value       = aws_security_group.this.id
}

output "max_connections" {
  description = "PostgreSQL max_connections, for the servers' connection budget."
  value       = var.max_connections
}

output "resource_id" {
  description = "The instance's resource ID, which IAM database authentication policies name (rds-db:connect)."
  value       = aws_db_instance.this.resource_id
}

output "identifier" {
  description = "The database instance's identifier (CloudWatch dimension DBInstanceIdentifier)."
  value       = aws_db_instance.this.identifier
}
