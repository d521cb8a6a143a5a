# Bulk-upload intake: a bucket sites upload studies to (aws s3 sync over the S3 gateway or
# an interface endpoint; KMS, TLS only, no public access), whose object-created events go to
# an SQS queue that `openpacs import --watch` consumes; what was imported expires after
# expire_days. The servers' role may read, delete and receive; uploaders get their own grant
# (uploader_principal_arns).

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

locals {
  account = data.aws_caller_identity.current.account_id
  region  = data.aws_region.current.name
  bucket  = "${var.name}-intake-${local.account}-${local.region}"
}

resource "aws_s3_bucket" "intake" {
  #checkov:skip=CKV_AWS_144:Uploads are transient: imported into the image bucket, then expired; no second region is needed.
  #checkov:skip=CKV_AWS_21:Objects are written once and deleted after import; versions would keep patient data past its expiry.
  bucket = local.bucket
  tags   = var.tags
}

resource "aws_s3_bucket_public_access_block" "intake" {
  bucket                  = aws_s3_bucket.intake.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "intake" {
  bucket = aws_s3_bucket.intake.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "intake" {
  bucket = aws_s3_bucket.intake.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_logging" "intake" {
  bucket        = aws_s3_bucket.intake.id
  target_bucket = var.log_bucket
  target_prefix = "s3/${local.bucket}/"
}

resource "aws_s3_bucket_lifecycle_configuration" "intake" {
  bucket = aws_s3_bucket.intake.id
  rule {
    id     = "expire-imported"
    status = "Enabled"
    filter {}
    expiration {
      days = var.expire_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 2
    }
  }
}

data "aws_iam_policy_document" "intake" {
  statement {
    sid       = "DenyRequestsWithoutTls"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.intake.arn, "${aws_s3_bucket.intake.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
  statement {
    sid       = "UploadersWrite"
    actions   = ["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
    resources = ["${aws_s3_bucket.intake.arn}/*"]
    principals {
      type        = "AWS"
      identifiers = length(var.uploader_principal_arns) > 0 ? var.uploader_principal_arns : ["arn:aws:iam::${local.account}:root"]
    }
  }
}

resource "aws_s3_bucket_policy" "intake" {
  bucket     = aws_s3_bucket.intake.id
  policy     = data.aws_iam_policy_document.intake.json
  depends_on = [aws_s3_bucket_public_access_block.intake]
}

# --- the queue ------------------------------------------------------------------------------

resource "aws_sqs_queue" "dead_letters" {
  name                              = "${var.name}-intake-failed"
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = 3600
  message_retention_seconds         = 1209600
  tags                              = var.tags
}

resource "aws_sqs_queue" "intake" {
  name                              = "${var.name}-intake"
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = 3600
  visibility_timeout_seconds        = 900 # a large study's import
  message_retention_seconds         = 1209600
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letters.arn
    maxReceiveCount     = 5
  })
  tags = var.tags
}

data "aws_iam_policy_document" "queue" {
  statement {
    sid       = "TheIntakeBucketSendsItsEvents"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.intake.arn]
    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_s3_bucket.intake.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_sqs_queue_policy" "intake" {
  queue_url = aws_sqs_queue.intake.id
  policy    = data.aws_iam_policy_document.queue.json
}

resource "aws_s3_bucket_notification" "intake" {
  bucket = aws_s3_bucket.intake.id
  queue {
    queue_arn = aws_sqs_queue.intake.arn
    events    = ["s3:ObjectCreated:*"]
  }
  depends_on = [aws_sqs_queue_policy.intake]
}
