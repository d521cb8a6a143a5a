"""The AWS deployment's review (issue 19), item by item, over the parsed Terraform; the boot
script's items run for real in test_deploy_boot.py, Terraform itself in
test_deploy_terraform_cli.py."""

from __future__ import annotations

import re
from pathlib import Path

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
    variables,
)

FOLDERS = [*sorted(path for path in MODULES.iterdir() if path.is_dir()), EXAMPLE]
README = AWS.parent / "README.md"


def outputs(folder: Path) -> dict[str, dict[str, object]]:
    found: dict[str, dict[str, object]] = {}
    for path in folder.glob("*.tf"):
        for entry in parse(path).get("output", []):
            found.update(entry)
    return found


# --- 2. the KMS key policy names no role that may not exist yet -----------------------------


def test_the_key_policy_names_a_service_linked_role_the_deployment_creates() -> None:
    text = (EXAMPLE / "main.tf").read_text(encoding="utf-8")
    assert "autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling" not in text  # the default
    statements = policy_statements(EXAMPLE, "key")
    autoscaling = [s for s in statements if s["sid"].startswith("AutoScaling")]
    assert len(autoscaling) == 2
    for statement in autoscaling:
        assert first(statement, "principals")["identifiers"] == [
            "${aws_iam_service_linked_role.autoscaling.arn}"
        ]
    role = one(EXAMPLE, "aws_iam_service_linked_role")
    assert role["aws_service_name"] == "autoscaling.amazonaws.com"
    assert role["custom_suffix"] == "${var.name}"  # never collides with the account's default
    assert module_calls(EXAMPLE)["compute"]["service_linked_role_arn"] == (
        "${aws_iam_service_linked_role.autoscaling.arn}"
    )
    group = one(MODULES / "compute", "aws_autoscaling_group")
    assert group["service_linked_role_arn"] == "${var.service_linked_role_arn}"


# --- 6. load balancer logs in every region, after the bucket policy --------------------------


def test_load_balancer_logs_work_in_new_regions_and_wait_for_the_bucket_policy() -> None:
    for folder in FOLDERS:
        kinds = {block.kind for block in blocks(folder, "data")}
        assert "aws_elb_service_account" not in kinds, folder.name
    statements = policy_statements(MODULES / "storage", "logs")
    writers = {
        identifier
        for statement in statements
        if statement.get("actions") == ["s3:PutObject"]
        for identifier in listed(first(statement, "principals")["identifiers"])
    }
    assert "logdelivery.elasticloadbalancing.amazonaws.com" in writers
    log_bucket = outputs(MODULES / "storage")["log_bucket"]
    assert log_bucket["depends_on"] == ["${aws_s3_bucket_policy.logs}"]
    assert module_calls(EXAMPLE)["ingress"]["log_bucket"] == "${module.storage.log_bucket}"


# --- 7. the AMI is pinned -------------------------------------------------------------------


def test_the_ami_is_a_pinned_variable_not_the_latest_release() -> None:
    for folder in FOLDERS:
        kinds = {block.kind for block in blocks(folder, "data")}
        assert "aws_ssm_parameter" not in kinds, folder.name
        assert "aws_ami" not in kinds, folder.name
    template = one(MODULES / "compute", "aws_launch_template")
    assert template["image_id"] == "${var.ami_id}"
    for folder in (MODULES / "compute", EXAMPLE):
        ami = variables(folder)["ami_id"]
        assert "default" not in ami, folder.name
        assert "ami-" in first(ami, "validation")["condition"]
    assert module_calls(EXAMPLE)["compute"]["ami_id"] == "${var.ami_id}"
    assert "ami_id" in README.read_text(encoding="utf-8")


# --- 8. valid for the AWS provider 5.100 and 6.x; a backend and a lock file -------------------


def _admits(constraint: str, version: tuple[int, ...]) -> bool:
    for part in constraint.split(","):
        operator, wanted = re.fullmatch(r"\s*(>=|<=|>|<|=|~>)?\s*([0-9.]+)\s*", part).groups()
        target = tuple(int(n) for n in wanted.split("."))
        size = max(len(target), len(version))
        a = version + (0,) * (size - len(version))
        b = target + (0,) * (size - len(target))
        ok = {
            ">=": a >= b, ">": a > b, "<=": a <= b, "<": a < b, "=": a == b, None: a == b,
            "~>": a >= b and a[: len(target) - 1] == b[: len(target) - 1],
        }[operator]  # fmt: skip
        if not ok:
            return False
    return True


def test_every_module_admits_the_aws_provider_5_100_and_6() -> None:
    for folder in FOLDERS:
        terraform = parse(folder / "versions.tf")["terraform"][0]
        providers = terraform["required_providers"][0]
        assert set(providers) == {"aws"}, f"{folder.name}: only the AWS provider"
        constraint = providers["aws"]["version"]
        assert _admits(constraint, (5, 100, 0)), f"{folder.name}: {constraint}"
        assert _admits(constraint, (6, 0, 0)), f"{folder.name}: {constraint}"
        assert not _admits(constraint, (5, 99, 0)), "5.99 has no write-only arguments"


def test_the_example_has_a_backend_and_a_lock_file() -> None:
    terraform = parse(EXAMPLE / "versions.tf")["terraform"][0]
    assert "s3" in terraform["backend"][0]
    assert (EXAMPLE / "backend.hcl.example").is_file()
    lock = (EXAMPLE / ".terraform.lock.hcl").read_text(encoding="utf-8")
    assert 'provider "registry.terraform.io/hashicorp/aws"' in lock
    assert 'version     = "5.100.0"' in lock
    assert "h1:" in lock


# --- 9. DICOM TLS to openpacs, known AEs only ------------------------------------------------


def test_dicom_peers_are_listed_and_tls_material_comes_from_a_secret() -> None:
    compute = variables(MODULES / "compute")
    for name in ("dicom_peers", "dicom_tls_secret_arn"):
        assert "default" not in compute[name], name
    assert "default" not in variables(EXAMPLE)["dicom_peers"]
    remotes = locals_of(MODULES / "compute")["dicom_remotes"]
    assert "[[dicom.remotes]]" in str(remotes)
    call = module_calls(EXAMPLE)["compute"]
    assert call["dicom_peers"] == "${var.dicom_peers}"
    assert call["dicom_tls_secret_arn"] == "${var.dicom_tls_secret_arn}"


# --- 10. openpacs believes the ALB's X-Forwarded-For, and only the ALB's ----------------------


def test_the_servers_trust_forwarded_headers_from_the_load_balancer_subnets_only() -> None:
    assert module_calls(EXAMPLE)["compute"]["trusted_proxy_cidrs"] == (
        "${module.network.public_subnet_cidrs}"
    )
    condition = first(variables(MODULES / "compute")["trusted_proxy_cidrs"], "validation")
    assert "0.0.0.0/0" in condition["condition"]
    assert locals_of(MODULES / "compute")["user_data_vars"]["trusted_proxies"] == (
        "${jsonencode(var.trusted_proxy_cidrs)}"
    )


# --- 11. no patient data in database logs; every log group encrypted and expiring ------------


def test_slow_statements_are_logged_without_their_parameters() -> None:
    group = one(MODULES / "database", "aws_db_parameter_group")
    parameters = {p["name"]: str(p["value"]) for p in listed(group["parameter"])}
    assert parameters["log_parameter_max_length"] == "0"
    assert parameters["log_parameter_max_length_on_error"] == "0"
    assert parameters["log_statement"] == "ddl"


def test_every_log_group_has_the_key_and_a_retention() -> None:
    found = 0
    for folder in FOLDERS:
        for block in resources(folder, "aws_cloudwatch_log_group"):
            found += 1
            assert block.body.get("kms_key_id") == "${var.kms_key_arn}", block.name
            assert "retention_in_days" in block.body, block.name
    assert found >= 3
    database = MODULES / "database"
    exports = locals_of(database)["log_exports"]
    assert one(database, "aws_db_instance")["enabled_cloudwatch_logs_exports"] == (
        "${local.log_exports}"
    )
    (group,) = resources(database, "aws_cloudwatch_log_group")
    assert group.body["for_each"] == "${toset(local.log_exports)}"
    assert group.body["name"].endswith("/${each.key}")
    assert set(exports) == {"postgresql", "upgrade"}


# --- 12. egress only to the endpoints and the DICOM destinations -----------------------------


def test_the_servers_reach_only_the_endpoints_and_listed_dicom_destinations() -> None:
    compute = MODULES / "compute"
    rules = {
        block.name: block.body for block in resources(compute, "aws_vpc_security_group_egress_rule")
    }
    for name, rule in rules.items():
        assert rule.get("cidr_ipv4") != "0.0.0.0/0", name
    assert rules["endpoints"]["referenced_security_group_id"] == "${var.endpoint_security_group_id}"
    assert rules["s3"]["prefix_list_id"] == "${var.s3_prefix_list_id}"
    assert "var.dicom_destinations" in rules["dicom_destinations"]["for_each"]
    assert rules["dicom_destinations"]["from_port"] == "${each.value.port}"
    condition = first(variables(compute)["dicom_destinations"], "validation")["condition"]
    assert "0.0.0.0/0" in condition
    network = MODULES / "network"
    services = set(locals_of(network)["interface_services"])
    assert {"ecr.api", "ecr.dkr"} <= services
    for block in resources(network, "aws_vpc_endpoint"):
        assert block.body.get("policy", "").startswith("${data.aws_iam_policy_document."), (
            block.name
        )
    interface = policy_statements(network, "interface_endpoints")
    (condition,) = listed(interface[0]["condition"])
    assert condition["variable"] == "aws:PrincipalAccount"
    assert variables(network)["nat_gateways"]["default"] == 0


# --- 13. the connection budget fits the database ---------------------------------------------


def test_the_database_connection_budget_is_checked_at_plan() -> None:
    compute = MODULES / "compute"
    group = one(compute, "aws_autoscaling_group")
    (precondition,) = listed(first(group, "lifecycle")["precondition"])
    condition = precondition["condition"]
    assert "var.max_size * local.connections_per_server" in condition
    assert "var.database_max_connections" in condition
    per_server = locals_of(compute)["connections_per_server"]
    assert per_server == ("${var.workers * (var.database_pool_size + var.database_max_overflow)}")
    database = one(MODULES / "database", "aws_db_parameter_group")
    parameters = {p["name"]: str(p["value"]) for p in listed(database["parameter"])}
    assert parameters["max_connections"] == "${tostring(var.max_connections)}"
    call = module_calls(EXAMPLE)["compute"]
    assert call["database_max_connections"] == "${module.database.max_connections}"
    assert "max_size x workers x" in README.read_text(encoding="utf-8")


# --- 5. the upgrade path is written down ----------------------------------------------------


def test_the_readme_tells_how_to_upgrade() -> None:
    text = README.read_text(encoding="utf-8")
    assert "### Updating" in text
    section = text.split("### Updating", 1)[1].split("\n### ", 1)[0]
    for needle in ("openpacs db upgrade", "container_image", "ami_id", "instance refresh"):
        assert needle in section, needle


# --- 4. the servers never connect as the master user -----------------------------------------


def test_the_servers_connect_as_their_own_role_with_iam_tokens() -> None:
    statements = policy_statements(MODULES / "compute", "server")
    (connect,) = [s for s in statements if s.get("sid") == "ConnectAsItsDatabaseRole"]
    assert connect["actions"] == ["rds-db:connect"]
    (resource,) = connect["resources"]
    assert resource.endswith(":dbuser:${var.database_resource_id}/${var.database_user}")
    assert variables(MODULES / "compute")["database_user"]["default"] == "openpacs_server"
    assert module_calls(EXAMPLE)["compute"]["database_resource_id"] == (
        "${module.database.resource_id}"
    )
    assert one(MODULES / "database", "aws_db_instance")["iam_database_authentication_enabled"]


# --- issue 16, item 3: references resolve without the provider --------------------------------

_VARIABLE = re.compile(r"\bvar\.([a-z0-9_]+)")
_MODULE_OUTPUT = re.compile(r"\bmodule\.([a-z0-9_]+)\.([a-z0-9_]+)")
_LOCAL = re.compile(r"\blocal\.([a-z0-9_]+)")


def _text(folder: Path) -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in sorted(folder.glob("*.tf")))


def test_every_reference_names_something_declared() -> None:
    for folder in FOLDERS:
        text = _text(folder)
        declared = set(variables(folder))
        assert set(_VARIABLE.findall(text)) <= declared, folder.name
        assert set(_LOCAL.findall(text)) <= set(locals_of(folder)), folder.name
        template = folder / "user-data.sh.tftpl"
        if template.exists():
            assert "var." not in template.read_text(encoding="utf-8")
    calls = module_calls(EXAMPLE)
    for module, output in _MODULE_OUTPUT.findall(_text(EXAMPLE)):
        source = (EXAMPLE / calls[module]["source"]).resolve()
        assert output in outputs(source), f"module.{module}.{output}"


def test_the_example_passes_every_required_variable_and_nothing_else() -> None:
    for name, call in module_calls(EXAMPLE).items():
        folder = (EXAMPLE / call["source"]).resolve()
        declared = variables(folder)
        required = {key for key, body in declared.items() if "default" not in body}
        passed = set(call) - {"source", "depends_on", "providers", "count", "for_each"}
        assert required <= passed, f"{name}: {sorted(required - passed)} not passed"
        assert passed <= set(declared), f"{name}: {sorted(passed - set(declared))} unknown"


# --- issue 16, item 4: alarms -----------------------------------------------------------------


def test_alarms_cover_targets_database_errors_and_refusals_to_an_encrypted_topic() -> None:
    folder = MODULES / "operations"
    topic = one(folder, "aws_sns_topic")
    assert topic["kms_master_key_id"] == "${var.kms_key_arn}"
    alarms = {block.name: block.body for block in resources(folder, "aws_cloudwatch_metric_alarm")}
    assert set(alarms) == {
        "unhealthy_targets", "http_5xx", "database_cpu", "database_storage",
        "association_refusals",
    }  # fmt: skip
    metrics = {name: body["metric_name"] for name, body in alarms.items()}
    assert metrics["unhealthy_targets"] == "UnHealthyHostCount"
    assert metrics["http_5xx"] == "HTTPCode_Target_5XX_Count"
    assert metrics["database_cpu"] == "CPUUtilization"
    assert metrics["database_storage"] == "FreeStorageSpace"
    for name, body in alarms.items():
        assert body["alarm_actions"] == "${local.actions}", name
    assert locals_of(folder)["actions"] == ["${aws_sns_topic.alarms.arn}"]
    refusals = one(folder, "aws_cloudwatch_log_metric_filter")
    assert refusals["log_group_name"] == "${var.server_log_group}"
    assert "association rejected" in str(refusals["pattern"])
    statements = policy_statements(EXAMPLE, "key")
    (publish,) = [s for s in statements if s["sid"] == "CloudWatchAlarmsPublishToTheEncryptedTopic"]
    assert first(publish, "principals")["identifiers"] == ["cloudwatch.amazonaws.com"]
    call = module_calls(EXAMPLE)["operations"]
    assert call["server_log_group"] == "${module.compute.log_group}"


def test_openpacs_logs_the_line_the_refusal_filter_counts() -> None:
    """The metric filter counts "association rejected": the line openpacs logs when it sends
    an A-ASSOCIATE-RJ (dimse/server.py)."""
    source = (AWS.parents[1] / "src" / "openpacs" / "dimse" / "server.py").read_text()
    assert '"association %s calling=%s' in source
    assert 'if event == "rejected":' in source  # the engine's event, logged as its name
    association = (AWS.parents[1] / "src" / "openpacs" / "dimse" / "association.py").read_text()
    assert 'self._notify("rejected"' in association  # an A-ASSOCIATE-RJ sent


# --- issue 16, item 4: PrivateLink -----------------------------------------------------------


def test_dicom_is_offered_over_privatelink_to_listed_principals_with_acceptance() -> None:
    folder = MODULES / "ingress"
    service = one(folder, "aws_vpc_endpoint_service")
    assert service["acceptance_required"] is True
    assert service["allowed_principals"] == "${var.privatelink_allowed_principals}"
    balancers = {block.name: block.body for block in resources(folder, "aws_lb")}
    private = balancers["private"]
    assert private["internal"] is True
    assert private["load_balancer_type"] == "network"
    assert "length(var.privatelink_allowed_principals) > 0" in private["count"]
    listeners = {block.name: block.body for block in resources(folder, "aws_lb_listener")}
    assert listeners["private_dicom"]["protocol"] == "TCP"  # mutual TLS at openpacs
    condition = first(variables(folder)["privatelink_allowed_principals"], "validation")
    assert ":iam::" in condition["condition"]
    assert variables(folder)["privatelink_allowed_principals"]["default"] == []
    call = module_calls(EXAMPLE)["ingress"]
    assert call["private_subnet_ids"] == "${module.network.application_subnet_ids}"
    assert "aws ec2 create-vpc-endpoint" in README.read_text(encoding="utf-8")


# --- issue 16, item 4: bulk-upload intake ----------------------------------------------------


def test_the_intake_bucket_is_private_encrypted_expiring_and_queues_its_events() -> None:
    folder = MODULES / "intake"
    sse = first(first(one(folder, "aws_s3_bucket_server_side_encryption_configuration"), "rule"),
                "apply_server_side_encryption_by_default")  # fmt: skip
    assert sse == {"sse_algorithm": "aws:kms", "kms_master_key_id": "${var.kms_key_arn}"}
    block = one(folder, "aws_s3_bucket_public_access_block")
    keys = ("block_public_acls", "block_public_policy", "ignore_public_acls",
            "restrict_public_buckets")  # fmt: skip
    assert all(block[key] is True for key in keys)
    rule = first(one(folder, "aws_s3_bucket_lifecycle_configuration"), "rule")
    assert first(rule, "expiration")["days"] == "${var.expire_days}"
    (deny,) = [
        s for s in policy_statements(folder, "intake") if s["sid"] == "DenyRequestsWithoutTls"
    ]
    assert first(deny, "condition")["variable"] == "aws:SecureTransport"
    queues = {b.name: b.body for b in resources(folder, "aws_sqs_queue")}
    for queue in queues.values():
        assert queue["kms_master_key_id"] == "${var.kms_key_arn}"
    assert "aws_sqs_queue.dead_letters.arn" in queues["intake"]["redrive_policy"]
    notification = first(one(folder, "aws_s3_bucket_notification"), "queue")
    assert notification["queue_arn"] == "${aws_sqs_queue.intake.arn}"
    assert notification["events"] == ["s3:ObjectCreated:*"]
    (send,) = policy_statements(folder, "queue")
    assert first(send, "principals")["identifiers"] == ["s3.amazonaws.com"]
    conditions = {c["variable"]: c["values"] for c in listed(send["condition"])}
    assert conditions["aws:SourceArn"] == ["${aws_s3_bucket.intake.arn}"]
    assert "sqs" in locals_of(MODULES / "network")["interface_services"]
    compute = [
        content
        for block in blocks(MODULES / "compute", "data")
        if block.name == "server"
        for entry in listed(block.body.get("dynamic", []))
        for content in listed(entry["statement"]["content"])
    ]
    by_sid = {statement["sid"]: statement for statement in compute}
    assert by_sid["ImportFromItsIntake"]["actions"] == ["s3:GetObject", "s3:DeleteObject"]
    assert "sqs:ReceiveMessage" in by_sid["ConsumeItsIntakeQueue"]["actions"]
    call = module_calls(EXAMPLE)["compute"]
    assert call["intake_queue_arn"] == '${try(module.intake[0].queue_arn, "")}'
