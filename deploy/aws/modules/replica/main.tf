# A copy of the image bucket in a second region, for a site whose policy asks for one: a
# versioned bucket encrypted with a key of that region, S3 replication's role, and an
# access-log bucket beside the copy. Called with the second region's provider; the source
# side (the replication rule on the image bucket) is the storage module's.
#
# Deletes: openpacs' deletions (delete markers) are replicated, so the copy mirrors the
# archive, and the copy keeps every replaced or deleted version for noncurrent_version_days
# (90 by default, longer than the source's 30), so a deletion is undone from either side for
# that long. Deleting a version for good is never replicated (S3 does not), so a purge of the
# source, by mistake or malice, leaves the copy whole.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account           = data.aws_caller_identity.current.account_id
  region            = data.aws_region.current.name
  partition         = data.aws_partition.current.partition
  object_principals = concat([aws_iam_role.replication.arn], var.break_glass_principal_arns)
}

# --- the key of the second region -------------------------------------------------------------

data "aws_iam_policy_document" "key" {
  #checkov:skip=CKV_AWS_111:A KMS key policy: resource "*" means this key only, and kms:* for the account root is AWS's default statement that delegates access to IAM policies.
  #checkov:skip=CKV_AWS_356:A KMS key policy: resource "*" means this key only.
  #checkov:skip=CKV_AWS_109:A KMS key policy: the account root administers its own key (AWS's default statement); IAM policies then decide who may use it.
  statement {
    sid       = "AccountAdministersTheKeyThroughIam"
    actions   = ["kms:*"]
    resources = ["*"] # in a key policy, "*" is this key
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account}:root"]
    }
  }
}

resource "aws_kms_key" "replica" {
  description             = "openpacs ${var.name}: the image copy in ${local.region}"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.key.json
  tags                    = var.tags
}

resource "aws_kms_alias" "replica" {
  name          = "alias/${var.name}-replica"
  target_key_id = aws_kms_key.replica.key_id
}

# --- the copy ---------------------------------------------------------------------------------

resource "aws_s3_bucket" "replica" {
  #checkov:skip=CKV_AWS_144:This bucket is the second region's copy; a copy of the copy would be a third.
  #checkov:skip=CKV2_AWS_62:No consumer of object events exists; the copy is read only in a recovery.
  bucket = "${var.name}-replica-${local.account}-${local.region}"
  tags   = var.tags

  lifecycle {
    precondition {
      condition     = local.region != var.source_region
      error_message = "The copy must be in another region than the image bucket (replica_region)."
    }
  }
}

resource "aws_s3_bucket_public_access_block" "replica" {
  bucket                  = aws_s3_bucket.replica.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "replica" {
  bucket = aws_s3_bucket.replica.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "replica" {
  bucket = aws_s3_bucket.replica.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.replica.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_versioning" "replica" {
  bucket = aws_s3_bucket.replica.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "replica" {
  bucket = aws_s3_bucket.replica.id
  rule {
    id     = "keep-replaced-and-deleted-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
    expiration {
      expired_object_delete_marker = true
    }
  }
  depends_on = [aws_s3_bucket_versioning.replica]
}

resource "aws_s3_bucket_logging" "replica" {
  bucket        = aws_s3_bucket.replica.id
  target_bucket = aws_s3_bucket.logs.id
  target_prefix = "s3/${aws_s3_bucket.replica.id}/"
}

data "aws_iam_policy_document" "replica" {
  statement {
    sid       = "DenyRequestsWithoutTls"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.replica.arn, "${aws_s3_bucket.replica.arn}/*"]
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

  # Objects only for replication (and the break-glass principals a recovery uses).
  statement {
    sid    = "DenyObjectAccessToAnyoneButReplication"
    effect = "Deny"
    actions = [
      "s3:GetObject*", "s3:PutObject*", "s3:DeleteObject*", "s3:ListBucket*", "s3:RestoreObject",
      "s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags",
    ]
    resources = [aws_s3_bucket.replica.arn, "${aws_s3_bucket.replica.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "ArnNotEquals"
      variable = "aws:PrincipalArn"
      values   = local.object_principals
    }
  }
}

resource "aws_s3_bucket_policy" "replica" {
  bucket     = aws_s3_bucket.replica.id
  policy     = data.aws_iam_policy_document.replica.json
  depends_on = [aws_s3_bucket_public_access_block.replica]
}

# --- replication's role: read the source prefix's versions, write the copy ---------------------

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_iam_role" "replication" {
  name_prefix        = "${var.name}-replication-"
  description        = "S3 replication of openpacs ${var.name}'s images to ${local.region}"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "replication" {
  statement {
    sid       = "ReadTheSourcesConfiguration"
    actions   = ["s3:GetReplicationConfiguration", "s3:ListBucket"]
    resources = [var.source_bucket_arn]
  }

  statement {
    sid       = "ReadTheSourcesVersions"
    actions   = ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging"]
    resources = ["${var.source_bucket_arn}/${var.prefix}/*"]
  }

  statement {
    sid       = "WriteTheCopy"
    actions   = ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"]
    resources = ["${aws_s3_bucket.replica.arn}/${var.prefix}/*"]
  }

  # Through S3 only, for these buckets only (with bucket keys the context is the bucket).
  statement {
    sid       = "DecryptTheSource"
    actions   = ["kms:Decrypt"]
    resources = [var.source_kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.source_region}.amazonaws.com"]
    }
    condition {
      test     = "StringLike"
      variable = "kms:EncryptionContext:aws:s3:arn"
      values   = [var.source_bucket_arn, "${var.source_bucket_arn}/${var.prefix}/*"]
    }
  }

  statement {
    sid       = "EncryptTheCopy"
    actions   = ["kms:Encrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.replica.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "StringLike"
      variable = "kms:EncryptionContext:aws:s3:arn"
      values   = [aws_s3_bucket.replica.arn, "${aws_s3_bucket.replica.arn}/${var.prefix}/*"]
    }
  }
}

resource "aws_iam_role_policy" "replication" {
  name   = "openpacs-replication"
  role   = aws_iam_role.replication.id
  policy = data.aws_iam_policy_document.replication.json
}

# --- the copy's access logs (S3 delivers them in the bucket's own region) ----------------------

resource "aws_s3_bucket" "logs" {
  #checkov:skip=CKV_AWS_18:This is the access-log bucket itself; logging it into itself would loop.
  #checkov:skip=CKV_AWS_144:Access logs need no further region.
  #checkov:skip=CKV_AWS_145:S3 server access logs can only be delivered to buckets encrypted with SSE-S3, which this bucket uses.
  #checkov:skip=CKV2_AWS_62:Nothing consumes log delivery events.
  bucket = "${var.name}-rlogs-${local.account}-${local.region}"
  tags   = var.tags
}

resource "aws_s3_bucket_public_access_block" "logs" {
  bucket                  = aws_s3_bucket.logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "logs" {
  bucket = aws_s3_bucket.logs.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    id     = "expire"
    status = "Enabled"
    filter {}
    expiration {
      days = var.log_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 7
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
  depends_on = [aws_s3_bucket_versioning.logs]
}

data "aws_iam_policy_document" "logs" {
  statement {
    sid       = "DenyRequestsWithoutTls"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.logs.arn, "${aws_s3_bucket.logs.arn}/*"]
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
    sid       = "S3ServerAccessLogs"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.logs.arn}/s3/*"]
    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_s3_bucket_policy" "logs" {
  bucket     = aws_s3_bucket.logs.id
  policy     = data.aws_iam_policy_document.logs.json
  depends_on = [aws_s3_bucket_public_access_block.logs]
}
