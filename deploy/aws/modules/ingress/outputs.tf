output "web_dns_name" {
  description = "DNS name of the web load balancer (point your web host name at it)."
  value       = aws_lb.web.dns_name
}

output "web_zone_id" {
  description = "Route 53 zone of the web load balancer, for an alias record."
  value       = aws_lb.web.zone_id
}

output "dicom_dns_name" {
  description = "DNS name of the DICOM load balancer (point your DICOM host name at it)."
  value       = aws_lb.dicom.dns_name
}

output "dicom_zone_id" {
  description = "Route 53 zone of the DICOM load balancer, for an alias record."
  value       = aws_lb.dicom.zone_id
}

output "dicom_port" {
  description = "Port modalities use for DICOM over TLS."
  value       = var.dicom_port
}

output "target_group_arns" {
  description = "Target groups the openpacs servers register with."
  value       = [aws_lb_target_group.web.arn, aws_lb_target_group.dicom.arn]
}

output "security_group_ids" {
  description = "Security groups of the load balancers (the only sources openpacs admits)."
  value       = [aws_security_group.web.id, aws_security_group.dicom.id]
}

output "metric_dimensions" {
  description = "CloudWatch dimensions of the load balancers and target groups (ARN suffixes), for alarms."
  value = {
    web_load_balancer   = aws_lb.web.arn_suffix
    web_target_group    = aws_lb_target_group.web.arn_suffix
    dicom_load_balancer = aws_lb.dicom.arn_suffix
    dicom_target_group  = aws_lb_target_group.dicom.arn_suffix
  }
}

output "privatelink_service_name" {
  description = "The endpoint service a hospital's VPC connects to (aws ec2 create-vpc-endpoint --service-name ...); null without privatelink_allowed_principals."
  value       = one(aws_vpc_endpoint_service.dicom[*].service_name)
}
