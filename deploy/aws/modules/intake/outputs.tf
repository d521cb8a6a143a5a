output "bucket" {
  description = "The intake bucket sites upload to."
  value       = aws_s3_bucket.intake.id
}

output "bucket_arn" {
  description = "ARN of the intake bucket (the servers' role reads and deletes there)."
  value       = aws_s3_bucket.intake.arn
}

output "queue_url" {
  description = "The queue `openpacs import --watch` consumes."
  value       = aws_sqs_queue.intake.id
}

output "queue_arn" {
  description = "ARN of the intake queue (the servers' role receives and deletes its messages)."
  value       = aws_sqs_queue.intake.arn
}
