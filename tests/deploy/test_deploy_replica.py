"""replica_region: the image bucket replicated to a second region, read from the parsed
Terraform. Both sides versioned, the copy encrypted with a key of its own region, the
replication role limited to the two buckets' prefix and keys through S3, deletions mirrored
while the copy keeps old versions longer than the source."""

from __future__ import annotations

from typing import Any

from tests.deploy.terraform_model import (
    EXAMPLE,
    MODULES,
    first,
    listed,
    module_calls,
    policy_statements,
    resources,
    skip_comments,
    variables,
)

REPLICA = MODULES / "replica"
STORAGE = MODULES / "storage"


def by_name(folder: Any, kind: str) -> dict[str, dict[str, Any]]:
    return {block.name: block.body for block in resources(folder, kind)}


def test_replication_is_off_by_default_and_one_variable_turns_it_on() -> None:
    assert variables(EXAMPLE)["replica_region"]["default"] == ""
    condition = first(variables(EXAMPLE)["replica_region"], "validation")["condition"]
    assert "var.replica_region != var.region" in condition
    calls = module_calls(EXAMPLE)
    assert calls["replica"]["count"] == '${var.replica_region != "" ? 1 : 0}'
    assert calls["replica"]["providers"] == {"aws": "${aws.replica}"}
    assert calls["replica"]["source_kms_key_arn"] == "${aws_kms_key.openpacs.arn}"
    assert calls["storage"]["replicate"] == '${var.replica_region != ""}'
    assert variables(STORAGE)["replicate"]["default"] is False
    (rule,) = by_name(STORAGE, "aws_s3_bucket_replication_configuration").values()
    assert rule["count"] == "${var.replicate ? 1 : 0}"


def test_the_rule_copies_the_prefix_encrypted_with_the_second_regions_key() -> None:
    configuration = by_name(STORAGE, "aws_s3_bucket_replication_configuration")["images"]
    assert configuration["role"] == "${var.replication_role_arn}"
    rule = first(configuration, "rule")
    assert rule["status"] == "Enabled"
    assert first(rule, "filter")["prefix"] == "${var.prefix}/"
    criteria = first(first(rule, "source_selection_criteria"), "sse_kms_encrypted_objects")
    assert criteria["status"] == "Enabled"
    destination = first(rule, "destination")
    assert destination["bucket"] == "${var.replica_bucket_arn}"
    encryption = first(destination, "encryption_configuration")
    assert encryption["replica_kms_key_id"] == "${var.replica_kms_key_arn}"
    assert configuration["depends_on"] == ["${aws_s3_bucket_versioning.images}"]


def test_deletions_are_mirrored_and_the_copy_keeps_old_versions_longer() -> None:
    rule = first(by_name(STORAGE, "aws_s3_bucket_replication_configuration")["images"], "rule")
    assert first(rule, "delete_marker_replication")["status"] == "Enabled"
    kept = variables(REPLICA)["noncurrent_version_days"]["default"]
    assert kept > variables(STORAGE)["noncurrent_version_days"]["default"]
    lifecycle = first(by_name(REPLICA, "aws_s3_bucket_lifecycle_configuration")["replica"], "rule")
    expiry = first(lifecycle, "noncurrent_version_expiration")
    assert expiry["noncurrent_days"] == "${var.noncurrent_version_days}"


def test_both_sides_versioned_the_copy_encrypted_private_and_logged() -> None:
    for folder, name in ((STORAGE, "images"), (REPLICA, "replica")):
        versioning = by_name(folder, "aws_s3_bucket_versioning")[name]
        assert first(versioning, "versioning_configuration")["status"] == "Enabled"
    encryption = by_name(REPLICA, "aws_s3_bucket_server_side_encryption_configuration")["replica"]
    default = first(first(encryption, "rule"), "apply_server_side_encryption_by_default")
    assert default == {
        "sse_algorithm": "aws:kms",
        "kms_master_key_id": "${aws_kms_key.replica.arn}",
    }
    key = by_name(REPLICA, "aws_kms_key")["replica"]
    assert key["enable_key_rotation"] is True
    block = by_name(REPLICA, "aws_s3_bucket_public_access_block")["replica"]
    flags = ("block_public_acls", "block_public_policy", "ignore_public_acls",
             "restrict_public_buckets")  # fmt: skip
    assert all(block[flag] is True for flag in flags)
    assert by_name(REPLICA, "aws_s3_bucket_logging")["replica"]["target_bucket"] == (
        "${aws_s3_bucket.logs.id}"
    )
    policy = {s["sid"]: s for s in policy_statements(REPLICA, "replica")}
    assert first(policy["DenyRequestsWithoutTls"], "condition")["values"] == ["false"]
    deny = first(policy["DenyObjectAccessToAnyoneButReplication"], "condition")
    assert deny["values"] == "${local.object_principals}"
    bucket = by_name(REPLICA, "aws_s3_bucket")["replica"]
    (precondition,) = listed(first(bucket, "lifecycle")["precondition"])
    assert "var.source_region" in precondition["condition"]


def test_the_replication_role_is_least_privilege() -> None:
    statements = {s["sid"]: s for s in policy_statements(REPLICA, "replication")}
    assert set(statements) == {
        "ReadTheSourcesConfiguration", "ReadTheSourcesVersions", "WriteTheCopy",
        "DecryptTheSource", "EncryptTheCopy",
    }  # fmt: skip
    for statement in statements.values():
        assert "*" not in listed(statement["resources"])
        assert not any(a.endswith(":*") for a in statement["actions"])
    assert statements["ReadTheSourcesVersions"]["resources"] == [
        "${var.source_bucket_arn}/${var.prefix}/*"
    ]
    assert statements["WriteTheCopy"]["resources"] == [
        "${aws_s3_bucket.replica.arn}/${var.prefix}/*"
    ]
    for sid, key in (("DecryptTheSource", "${var.source_kms_key_arn}"),
                     ("EncryptTheCopy", "${aws_kms_key.replica.arn}")):  # fmt: skip
        assert statements[sid]["resources"] == [key]
        conditions = {c["variable"] for c in listed(statements[sid]["condition"])}
        assert conditions == {"kms:ViaService", "kms:EncryptionContext:aws:s3:arn"}
    (trust,) = policy_statements(REPLICA, "assume")
    assert first(trust, "principals")["identifiers"] == ["s3.amazonaws.com"]
    assert first(trust, "condition")["variable"] == "aws:SourceAccount"


def test_the_image_bucket_admits_replication_and_no_longer_skips_the_replication_check() -> None:
    principals = (STORAGE / "main.tf").read_text(encoding="utf-8")
    assert "var.replicate ? [var.replication_role_arn] : []" in principals
    images = [s for s in skip_comments() if s[0].parent == STORAGE and s[1] == "CKV_AWS_144"]
    assert len(images) == 1  # the log bucket's only; the image bucket's skip is gone
