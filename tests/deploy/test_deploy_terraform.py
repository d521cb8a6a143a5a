"""The AWS deployment's security properties, read from the parsed Terraform (python-hcl2),
and checkov's verdict on it.

No cloud is reached: these tests read what `terraform apply` would create and fail when a
change weakens it (a public subnet for the servers, an open SSH port, a password variable,
an unencrypted database or bucket, a bucket policy that admits plain HTTP).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.terraform_model import (
    AWS,
    EXAMPLE,
    MODULES,
    blocks,
    first,
    listed,
    locals_of,
    module_calls,
    one,
    parse,
    policy_statements,
    resources,
    skip_comments,
    tf_files,
    variables,
)

MODULE_NAMES = (
    "network",
    "database",
    "storage",
    "compute",
    "ingress",
    "operations",
    "intake",
    "identity",
    "replica",
)
FOLDERS = [MODULES / name for name in MODULE_NAMES] + [EXAMPLE]


@pytest.mark.parametrize("path", tf_files(), ids=lambda p: str(p.relative_to(AWS)))
def test_every_terraform_file_parses(path: Path) -> None:
    assert parse(path), f"{path} is empty"


def test_reusable_modules_and_a_root_example() -> None:
    for folder in FOLDERS:
        names = {path.name for path in folder.glob("*.tf")}
        assert {"main.tf", "variables.tf", "outputs.tf", "versions.tf"} <= names, folder
    calls = module_calls(EXAMPLE)
    assert {call["source"] for call in calls.values()} == {
        f"../../modules/{name}" for name in MODULE_NAMES
    }
    assert (EXAMPLE / "terraform.tfvars.example").is_file()


# --- variables ------------------------------------------------------------------------------

# Values passed between modules (IDs, names, ports) or with no wrong value: no validation.
UNVALIDATED = {
    "vpc_id", "load_balancer_security_group_ids", "target_group_arns", "instance_type",
    "ami_ssm_parameter", "bucket", "bucket_prefix", "database_address", "database_port",
    "database_name", "log_bucket", "target_dicom_tls_port", "target_https_port",
    "web_host_name", "dicom_host_name", "endpoint_security_group_id", "s3_prefix_list_id",
    "database_identifier", "server_log_group", "metric_dimensions",
}  # fmt: skip


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_variables_are_described_typed_and_validated(folder: Path) -> None:
    for name, body in variables(folder).items():
        assert len(body.get("description", "")) > 10, f"{folder.name}: {name} has no description"
        assert "type" in body, f"{folder.name}: {name} has no type"
        kind = str(body["type"])
        if name in UNVALIDATED or kind in ("bool", "${bool}") or "map(" in kind:
            continue
        assert body.get("validation"), f"{folder.name}: {name} has no validation block"


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_no_variable_carries_a_secret(folder: Path) -> None:
    for name, body in variables(folder).items():
        lowered = name.lower()
        assert "password" not in lowered or lowered.endswith("_secret_arn"), name
        assert not lowered.endswith("secret"), name
        assert "token" not in lowered, name
        assert body.get("sensitive") is not True, f"{name}: a sensitive input is a secret"
        assert not body.get("ephemeral"), name


def test_safe_defaults() -> None:
    database = variables(MODULES / "database")
    assert database["deletion_protection"]["default"] is True
    assert database["multi_az"]["default"] is True
    assert database["backup_retention_days"]["default"] >= 7
    compute = variables(MODULES / "compute")
    assert compute["min_size"]["default"] >= 2
    ingress = variables(MODULES / "ingress")
    for name in ("web_client_cidrs", "dicom_client_cidrs"):
        assert "default" not in ingress[name], f"{name}: clients must be listed, never defaulted"
        condition = first(ingress[name], "validation")["condition"]
        assert "0.0.0.0/0" in condition
        assert "::/0" in condition


# --- the database ---------------------------------------------------------------------------


def test_rds_is_encrypted_with_the_customer_key_and_manages_its_password() -> None:
    db = one(MODULES / "database", "aws_db_instance")
    assert db["storage_encrypted"] is True
    assert db["kms_key_id"] == "${var.kms_key_arn}"
    assert db["manage_master_user_password"] is True
    assert db["master_user_secret_kms_key_id"] == "${var.kms_key_arn}"
    assert "password" not in db
    assert db["publicly_accessible"] is False
    assert db["deletion_protection"] == "${var.deletion_protection}"
    assert db["backup_retention_period"] == "${var.backup_retention_days}"
    assert db["skip_final_snapshot"] is False
    kms = variables(MODULES / "database")["kms_key_arn"]
    assert "default" not in kms
    assert ":kms:" in first(kms, "validation")["condition"]


def test_rds_forces_tls_through_its_parameter_group() -> None:
    folder = MODULES / "database"
    group = one(folder, "aws_db_parameter_group")
    parameters = {p["name"]: str(p["value"]) for p in listed(group["parameter"])}
    assert parameters["rds.force_ssl"] == "1"
    assert parameters["ssl_min_protocol_version"] == "TLSv1.2"
    db = one(folder, "aws_db_instance")
    assert db["parameter_group_name"] == "${aws_db_parameter_group.this.name}"


def test_the_database_admits_only_the_servers_security_group() -> None:
    folder = MODULES / "database"
    (rule,) = resources(folder, "aws_vpc_security_group_ingress_rule")
    assert (rule.body["from_port"], rule.body["to_port"]) == (5432, 5432)
    assert rule.body["referenced_security_group_id"] == (
        "${var.client_security_group_ids[count.index]}"
    )
    assert "cidr_ipv4" not in rule.body
    call = module_calls(EXAMPLE)["database"]
    assert call["client_security_group_ids"] == ["${module.compute.security_group_id}"]


# --- the bucket -----------------------------------------------------------------------------


def test_the_bucket_is_encrypted_private_versioned_and_tiered() -> None:
    folder = MODULES / "storage"
    images = [b for b in resources(folder, "aws_s3_bucket_server_side_encryption_configuration")]
    by_bucket = {b.body["bucket"]: b.body for b in images}
    sse = first(first(by_bucket["${aws_s3_bucket.images.id}"], "rule"),
                "apply_server_side_encryption_by_default")  # fmt: skip
    assert sse == {"sse_algorithm": "aws:kms", "kms_master_key_id": "${var.kms_key_arn}"}
    for block in resources(folder, "aws_s3_bucket_public_access_block"):
        for key in ("block_public_acls", "block_public_policy", "ignore_public_acls",
                    "restrict_public_buckets"):  # fmt: skip
            assert block.body[key] is True, (block.name, key)
    for block in resources(folder, "aws_s3_bucket_versioning"):
        assert first(block.body, "versioning_configuration")["status"] == "Enabled"
    lifecycle = {b.name: b.body for b in resources(folder, "aws_s3_bucket_lifecycle_configuration")}
    rules = listed(lifecycle["images"]["rule"])
    assert any("noncurrent_version_expiration" in rule for rule in rules)
    assert any("abort_incomplete_multipart_upload" in rule for rule in rules)
    classes = {
        content["storage_class"]
        for rule in rules
        for dynamic in listed(rule.get("dynamic", []))
        for content in listed(dynamic.get("transition", {}).get("content", []))
    }
    assert classes == {"STANDARD_IA", "GLACIER_IR"}


def bucket_policy() -> list[dict[str, Any]]:
    return policy_statements(MODULES / "storage", "images")


def test_the_bucket_refuses_requests_without_tls() -> None:
    (deny,) = [s for s in bucket_policy() if s.get("sid") == "DenyRequestsWithoutTls"]
    assert deny["effect"] == "Deny"
    assert deny["actions"] == ["s3:*"]
    assert set(deny["resources"]) == {
        "${aws_s3_bucket.images.arn}",
        "${aws_s3_bucket.images.arn}/*",
    }
    assert first(deny, "principals")["identifiers"] == ["*"]
    condition = first(deny, "condition")
    assert (condition["test"], condition["variable"], condition["values"]) == (
        "Bool",
        "aws:SecureTransport",
        ["false"],
    )
    policies = {b.name: b.body for b in resources(MODULES / "storage", "aws_s3_bucket_policy")}
    policy = policies["images"]
    assert policy["bucket"] == "${aws_s3_bucket.images.id}"
    assert policy["policy"] == "${data.aws_iam_policy_document.images.json}"


def test_the_bucket_serves_objects_to_the_server_role_only() -> None:
    (deny,) = [
        s for s in bucket_policy() if s.get("sid") == "DenyObjectAccessToAnyoneButTheServers"
    ]
    assert deny["effect"] == "Deny"
    condition = first(deny, "condition")
    assert (condition["test"], condition["variable"]) == ("ArnNotEquals", "aws:PrincipalArn")
    assert condition["values"] == "${local.object_principals}"
    assert "[var.server_role_arn]" in str(_local(MODULES / "storage", "object_principals"))
    assert module_calls(EXAMPLE)["storage"]["server_role_arn"] == "${module.compute.role_arn}"
    assert "default" not in variables(MODULES / "storage")["break_glass_principal_arns"] or (
        variables(MODULES / "storage")["break_glass_principal_arns"]["default"] == []
    )


def _local(folder: Path, name: str) -> Any:
    return locals_of(folder)[name]


# --- the network ----------------------------------------------------------------------------


def ingress_rules() -> list[tuple[Path, str, dict[str, Any]]]:
    found = []
    for folder in FOLDERS:
        for block in resources(folder, "aws_vpc_security_group_ingress_rule"):
            found.append((folder, block.name, block.body))
        for block in resources(folder, "aws_security_group_rule"):
            if block.body.get("type") == "ingress":
                found.append((folder, block.name, block.body))
        for block in resources(folder, "aws_security_group"):
            for rule in listed(block.body.get("ingress", [])):
                found.append((folder, block.name, rule))
    return found


def test_no_ingress_on_ssh_and_none_from_anywhere() -> None:
    rules = ingress_rules()
    assert len(rules) >= 6
    for folder, name, rule in rules:
        protocol = str(rule.get("ip_protocol", rule.get("protocol", "")))
        assert protocol not in ("-1", "all"), (folder.name, name)
        low, high = int(rule["from_port"]) if str(rule["from_port"]).isdigit() else None, None
        if low is not None:
            high = int(rule["to_port"])
            assert not low <= 22 <= high, f"{folder.name}/{name} opens port 22"
        cidrs = listed(rule.get("cidr_ipv4", rule.get("cidr_blocks", [])))
        assert "0.0.0.0/0" not in cidrs, f"{folder.name}/{name} admits 0.0.0.0/0"
        assert "::/0" not in listed(rule.get("cidr_ipv6", []))
        if low == 5432:
            assert "referenced_security_group_id" in rule, f"{folder.name}/{name}"
    for block in resources(MODULES / "compute", "aws_launch_template"):
        assert "key_name" not in block.body, "no SSH key pair: administration is through SSM"


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_for_each_keys_are_known_at_plan_time(folder: Path) -> None:
    """for_each over IDs created in the same apply fails at plan ("Invalid for_each
    argument"); those lists use count, whose length is known."""
    for block in blocks(folder, "resource"):
        key = str(block.body.get("for_each", ""))
        assert "security_group_id" not in key, f"{block.kind}.{block.name}: {key}"
        assert "_arn" not in key, f"{block.kind}.{block.name}: {key}"


def test_the_default_security_group_is_closed() -> None:
    group = one(MODULES / "network", "aws_default_security_group")
    assert "ingress" not in group
    assert "egress" not in group


def test_servers_and_database_live_in_private_subnets() -> None:
    network = MODULES / "network"
    for block in resources(network, "aws_subnet"):
        assert block.body.get("map_public_ip_on_launch", False) is False, block.name
    routes = {block.name: block.body for block in resources(network, "aws_route")}
    assert "gateway_id" in routes["public_internet"]
    assert set(routes) == {"public_internet", "application_nat"}
    assert "nat_gateway_id" in routes["application_nat"]
    assert routes["application_nat"]["route_table_id"].startswith("${aws_route_table.application[")
    associations = {b.name: b.body for b in resources(network, "aws_route_table_association")}
    assert "aws_subnet.application" in associations["application"]["subnet_id"]
    assert "aws_route_table.application" in associations["application"]["route_table_id"]
    assert "aws_subnet.database" in associations["database"]["subnet_id"]
    calls = module_calls(EXAMPLE)
    assert calls["compute"]["subnet_ids"] == "${module.network.application_subnet_ids}"
    assert calls["database"]["subnet_ids"] == "${module.network.database_subnet_ids}"
    assert calls["ingress"]["public_subnet_ids"] == "${module.network.public_subnet_ids}"
    template = one(MODULES / "compute", "aws_launch_template")
    assert "network_interfaces" not in template  # no associate_public_ip_address anywhere
    group = one(MODULES / "compute", "aws_autoscaling_group")
    assert group["vpc_zone_identifier"] == "${var.subnet_ids}"


def test_aws_apis_are_reached_through_endpoints_and_flows_are_logged() -> None:
    network = MODULES / "network"
    endpoints = {block.name: block.body for block in resources(network, "aws_vpc_endpoint")}
    assert endpoints["s3"]["vpc_endpoint_type"] == "Gateway"
    assert endpoints["interface"]["vpc_endpoint_type"] == "Interface"
    assert endpoints["interface"]["private_dns_enabled"] is True
    services = set(locals_of(network)["interface_services"])
    assert {"secretsmanager", "kms", "ssm", "ssmmessages", "logs"} <= services
    flow = one(network, "aws_flow_log")
    assert flow["traffic_type"] == "ALL"
    group = {b.name: b.body for b in resources(network, "aws_cloudwatch_log_group")}
    assert group["flow_logs"]["kms_key_id"] == "${var.kms_key_arn}"


# --- the servers ----------------------------------------------------------------------------


def test_the_instance_role_is_least_privilege() -> None:
    statements = policy_statements(MODULES / "compute", "server")
    dynamic = [
        content
        for block in blocks(MODULES / "compute", "data")
        if block.name == "server"
        for entry in listed(block.body.get("dynamic", []))
        for content in listed(entry["statement"]["content"])
    ]
    assert len(dynamic) == 5  # the ECR pull, the intake, single sign-on: only when there are ones
    statements = statements + dynamic
    for statement in statements:
        actions = listed(statement.get("actions", []))
        assert not any(action == "*" or action.endswith(":*") for action in actions), actions
        if listed(statement.get("resources", [])) == ["*"]:
            assert actions == ["ecr:GetAuthorizationToken"], actions
    by_sid = {s.get("sid"): s for s in statements if "sid" in s}
    assert by_sid["ReadWriteItsPrefix"]["resources"] == [
        "${local.bucket_arn}/${var.bucket_prefix}/*"
    ]
    assert by_sid["UseItsKey"]["resources"] == ["${var.kms_key_arn}"]
    listing = first(by_sid["ListItsPrefix"], "condition")
    assert listing["variable"] == "s3:prefix"
    assert listing["values"] == ["${var.bucket_prefix}", "${var.bucket_prefix}/*"]
    assert set(by_sid["ReadItsSecrets"]["resources"]) == {
        "${var.database_secret_arn}",
        "${aws_secretsmanager_secret.admin.arn}",
        "${var.dicom_tls_secret_arn}",
    }
    assert by_sid["ReadItsSingleSignOnSettings"]["resources"] == ["${statement.value}"]
    assert by_sid["ReadItsDatabaseCa"]["resources"] == ["${aws_ssm_parameter.database_ca.arn}"]
    attachment = one(MODULES / "compute", "aws_iam_role_policy_attachment")
    assert attachment["policy_arn"].endswith(":iam::aws:policy/AmazonSSMManagedInstanceCore")


def test_instances_require_imdsv2_and_encrypt_their_volumes() -> None:
    template = one(MODULES / "compute", "aws_launch_template")
    assert first(template, "metadata_options")["http_tokens"] == "required"
    ebs = first(first(template, "block_device_mappings"), "ebs")
    assert ebs["encrypted"] is True
    assert ebs["kms_key_id"] == "${var.kms_key_arn}"


def test_the_admin_password_never_reaches_state() -> None:
    version = one(MODULES / "compute", "aws_secretsmanager_secret_version")
    assert "secret_string" not in version
    assert version["secret_string_wo"] == (
        "${ephemeral.aws_secretsmanager_random_password.admin.random_password}"
    )
    assert not resources(MODULES / "compute", "random_password")  # only the ephemeral one


# --- the load balancers ---------------------------------------------------------------------


def test_tls_from_client_to_load_balancer_to_openpacs() -> None:
    """HTTPS ends at the ALB (ACM) and opens again to openpacs; DICOM TLS passes through the
    NLB (TCP) to openpacs, which requires client certificates (issue 19, item 9)."""
    ingress = MODULES / "ingress"
    listeners = {block.name: block.body for block in resources(ingress, "aws_lb_listener")}
    assert listeners["web"]["protocol"] == "HTTPS"
    assert listeners["web"]["certificate_arn"] == "${var.certificate_arn}"
    assert listeners["web"]["ssl_policy"] == "${local.tls_policy}"
    assert listeners["dicom"]["protocol"] == "TCP"
    assert "certificate_arn" not in listeners["dicom"]
    groups = {block.name: block.body for block in resources(ingress, "aws_lb_target_group")}
    assert groups["web"]["protocol"] == "HTTPS"
    assert groups["dicom"]["protocol"] == "TCP"
    for group in groups.values():
        check = first(group, "health_check")
        assert (check["protocol"], check["path"]) == ("HTTPS", "/health")
    balancers = {block.name: block.body for block in resources(ingress, "aws_lb")}
    assert balancers["web"]["load_balancer_type"] == "application"
    assert balancers["dicom"]["load_balancer_type"] == "network"
    assert balancers["web"]["drop_invalid_header_fields"] is True
    rules = {
        block.name: block.body
        for block in resources(ingress, "aws_vpc_security_group_ingress_rule")
    }
    assert rules["web_clients"]["for_each"] == "${toset(var.web_client_cidrs)}"
    assert rules["dicom_clients"]["for_each"] == "${toset(var.dicom_client_cidrs)}"


def test_outputs_tell_where_to_connect() -> None:
    outputs = {}
    for path in EXAMPLE.glob("*.tf"):
        for entry in parse(path).get("output", []):
            outputs.update(entry)
    assert {"web_url", "dicom_endpoint", "bucket", "admin_password_secret_arn"} <= set(outputs)
    endpoint = outputs["dicom_endpoint"]["value"]
    assert {"host", "port", "ae_title", "tls"} <= set(endpoint)


# --- checkov --------------------------------------------------------------------------------


def checkov_binary() -> str:
    """checkov lives in its own virtual environment (scripts/test makes it): its pinned
    dependencies conflict with the project's."""
    candidates = [
        os.environ.get("OPENPACS_CHECKOV", ""),
        shutil.which("checkov") or "",
        str(Path.home() / ".cache" / "openpacs" / "checkov" / "bin" / "checkov"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    pytest.skip("checkov is not installed (scripts/test installs it)")


def test_every_skipped_check_says_why() -> None:
    skips = skip_comments()
    assert skips
    for path, check, reason in skips:
        assert len(reason) >= 20, f"{path}: {check} is skipped without a reason"


@pytest.mark.slow
def test_checkov_finds_no_failed_check() -> None:
    result = subprocess.run(
        [checkov_binary(), "--directory", str(AWS), "--framework", "terraform",
         "--skip-download", "--quiet", "--output", "json"],
        capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )  # fmt: skip
    assert result.stdout, result.stderr
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    summary = report["summary"]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']})"
        for c in report.get("results", {}).get("failed_checks", [])
    ]
    assert summary["failed"] == 0, "\n".join(failed)
    assert summary["parsing_errors"] == 0
    assert summary["passed"] >= 250
    assert summary["skipped"] <= len(skip_comments())


@pytest.mark.slow
def test_checkov_passes_the_dockerfile() -> None:
    dockerfile = AWS.parent / "Dockerfile"
    result = subprocess.run(
        [checkov_binary(), "--file", str(dockerfile), "--framework", "dockerfile",
         "--skip-download", "--quiet", "--output", "json"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.stdout, result.stderr
    report = json.loads(result.stdout)
    summary = (report[0] if isinstance(report, list) else report)["summary"]
    assert summary["failed"] == 0, result.stdout
    assert summary["passed"] >= 30
