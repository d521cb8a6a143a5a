output "bucket" {
  description = "Name of the image bucket."
  value       = aws_s3_bucket.images.id
}

output "bucket_arn" {
  description = "ARN of the image bucket."
  value       = aws_s3_bucket.images.arn
}

output "prefix" {
  description = "Key prefix openpacs stores under."
  value       = var.prefix
}

output "storage_url" {
  description = "The [storage] url for openpacs."
  value       = "s3://${aws_s3_bucket.images.id}/${var.prefix}"
}

output "log_bucket" {
  description = "Bucket receiving S3 and load balancer access logs (load balancers write under lb/); known only once its policy admits the log delivery services, so a load balancer's access-log check on first apply finds it ready."
  value       = aws_s3_bucket.logs.id
  depends_on  = [aws_s3_bucket_policy.logs]
}
