output "vpc_id" {
  description = "The VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr_block" {
  description = "The VPC's address range."
  value       = aws_vpc.this.cidr_block
}

output "public_subnet_ids" {
  description = "Subnets for the load balancers only."
  value       = aws_subnet.public[*].id
}

output "application_subnet_ids" {
  description = "Private subnets for the openpacs servers."
  value       = aws_subnet.application[*].id
}

output "application_subnet_cidrs" {
  description = "Address ranges of the application subnets (load balancer egress)."
  value       = aws_subnet.application[*].cidr_block
}

output "database_subnet_ids" {
  description = "Private subnets for the database, without any route out."
  value       = aws_subnet.database[*].id
}

output "database_subnet_cidrs" {
  description = "Address ranges of the database subnets."
  value       = aws_subnet.database[*].cidr_block
}

output "s3_endpoint_id" {
  description = "The S3 gateway endpoint."
  value       = aws_vpc_endpoint.s3.id
}
