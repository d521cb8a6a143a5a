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

output "public_subnet_cidrs" {
  description = "Address ranges of the public subnets: where the load balancers connect to the servers from."
  value       = aws_subnet.public[*].cidr_block
}

output "s3_prefix_list_id" {
  description = "Prefix list of S3 in the region, for security group egress through the gateway endpoint."
  value       = aws_vpc_endpoint.s3.prefix_list_id
}

output "endpoint_security_group_id" {
  description = "Security group of the interface endpoints, for security group egress to them."
  value       = aws_security_group.endpoints.id
}
