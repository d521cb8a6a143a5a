#!/bin/sh
# Run once by the minio-init service: the bucket, versioned, and openpacs' own MinIO user,
# whose policy allows that bucket only (the root credentials stay with MinIO).
set -eu
secret() { tr -d '\r\n' < "/run/secrets/$1"; }
credential() { sed -n "s/^$1[[:space:]]*=[[:space:]]*//p" /run/secrets/s3_credentials | tr -d '\r\n'; }

mc alias set local https://minio:9000 "$(secret minio_root_user)" "$(secret minio_root_password)" >/dev/null
mc mb --ignore-existing "local/${BUCKET}"
mc version enable "local/${BUCKET}"

cat > /tmp/openpacs-policy.json <<JSON
{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
     "Resource": ["arn:aws:s3:::${BUCKET}"]},
    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                                   "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
     "Resource": ["arn:aws:s3:::${BUCKET}/*"]}
  ]
}
JSON
mc admin policy create local openpacs /tmp/openpacs-policy.json
mc admin user add local "$(credential aws_access_key_id)" "$(credential aws_secret_access_key)"
mc admin policy attach local openpacs --user "$(credential aws_access_key_id)" 2>/dev/null || true
echo "bucket ${BUCKET} and user $(credential aws_access_key_id) ready"
