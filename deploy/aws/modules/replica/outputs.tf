output "bucket" {
  description = "Name of the copy in the second region."
  value       = aws_s3_bucket.replica.id
}

output "bucket_arn" {
  description = "ARN of the copy (the storage module's replication destination)."
  value       = aws_s3_bucket.replica.arn
}

output "kms_key_arn" {
  description = "The second region's key the copy is encrypted with."
  value       = aws_kms_key.replica.arn
}

output "replication_role_arn" {
  description = "The role S3 replication assumes (the image bucket admits it to its objects)."
  value       = aws_iam_role.replication.arn
}
