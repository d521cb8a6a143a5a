"""platform = "fargate": the servers as an ECS service, read from the parsed Terraform, and the
task's prepare step (fargate-prepare.sh) run for real against moto's Secrets Manager and SSM
and the local PostgreSQL.

The properties are those of the EC2 path: the same image, role, security group, log group and
openpacs.toml; secrets as files, never in the task definition; the schema upgraded by the
schema's owner before the server starts.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from openpacs.cli.main import cli
from openpacs.config import load_settings
from tests.deploy.terraform_model import (
    EXAMPLE,
    MODULES,
    blocks,
    first,
    listed,
    locals_of,
    module_calls,
    parse,
    policy_statements,
    resources,
    variables,
)
from tests.deploy.test_deploy_boot import SAMPLE, TEMPLATE, render
from tests.support.backends import AWS_ENVIRONMENT
from tests.support.postgres import temporary_database
from tests.support.s3 import client, moto_server

COMPUTE = MODULES / "compute"
PREPARE = COMPUTE / "fargate-prepare.sh"


def by_name(kind: str, folder: Path = COMPUTE) -> dict[str, dict[str, Any]]:
    return {block.name: block.body for block in resources(folder, kind)}


def containers() -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in locals_of(COMPUTE)["containers"]}


# --- the choice -----------------------------------------------------------------------------


def test_ec2_stays_the_default_and_fargate_is_chosen_by_one_variable() -> None:
    for folder in (COMPUTE, EXAMPLE):
        platform = variables(folder)["platform"]
        assert platform["default"] == "ec2"
        assert '["ec2", "fargate"]' in first(platform, "validation")["condition"]
    call = module_calls(EXAMPLE)
    assert call["compute"]["platform"] == "${var.platform}"
    assert call["ingress"]["target_type"] == '${var.platform == "fargate" ? "ip" : "instance"}'
    for group in by_name("aws_lb_target_group", MODULES / "ingress").values():
        assert group["target_type"] == "${var.target_type}"
    assert variables(MODULES / "ingress")["target_type"]["default"] == "instance"
    # modalities' addresses reach openpacs with IP targets too
    assert (
        by_name("aws_lb_target_group", MODULES / "ingress")["dicom"]["preserve_client_ip"] is True
    )


def test_each_platform_makes_only_its_own_resources() -> None:
    ec2 = ("aws_launch_template", "aws_autoscaling_group", "aws_iam_instance_profile",
           "aws_iam_role_policy_attachment")  # fmt: skip
    fargate = ("aws_ecs_cluster", "aws_ecs_task_definition", "aws_ecs_service",
               "aws_appautoscaling_target", "aws_appautoscaling_policy")  # fmt: skip
    for kind in ec2:
        for body in by_name(kind).values():
            assert body["count"] == "${local.on_ec2 ? 1 : 0}", kind
    for kind in fargate:
        for body in by_name(kind).values():
            assert body["count"] == "${local.on_fargate ? 1 : 0}", kind
    assert by_name("aws_iam_role")["execution"]["count"] == "${local.on_fargate ? 1 : 0}"
    # existing EC2 deployments keep their resources (count added): a moved block for each
    moved = {(m["from"], m["to"]) for m in blocks_moved()}
    for kind in ec2:
        name = "ssm" if kind == "aws_iam_role_policy_attachment" else "server"
        assert (f"${{{kind}.{name}}}", f"${{{kind}.{name}[0]}}") in moved, kind


def blocks_moved() -> list[dict[str, Any]]:
    return [
        entry for path in COMPUTE.glob("*.tf") for entry in listed(parse(path).get("moved", []))
    ]


# --- the same least privilege ---------------------------------------------------------------


def test_the_task_role_is_the_servers_role_trusted_by_this_accounts_tasks() -> None:
    task = by_name("aws_ecs_task_definition")["server"]
    assert task["task_role_arn"] == "${aws_iam_role.server.arn}"
    assert task["execution_role_arn"] == "${aws_iam_role.execution[0].arn}"
    (assume,) = policy_statements(COMPUTE, "assume")
    principal = first(assume, "principals")
    assert principal["identifiers"] == [
        '${local.on_fargate ? "ecs-tasks.amazonaws.com" : "ec2.amazonaws.com"}'
    ]
    condition = first(first(assume, "dynamic")["condition"], "content")
    assert condition["variable"] == "aws:SourceAccount"
    # the role's policy is the EC2 one (its tests hold for both); SSM only for instances
    assert by_name("aws_iam_role_policy")["server"]["role"] == "${aws_iam_role.server.id}"


def test_the_execution_role_pulls_the_image_and_writes_logs_only() -> None:
    (logs,) = policy_statements(COMPUTE, "execution")
    assert logs["actions"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert logs["resources"] == ["${aws_cloudwatch_log_group.openpacs.arn}:*"]
    (execution,) = [b for b in blocks(COMPUTE, "data") if b.name == "execution"]
    dynamic = [listed(d["statement"]["content"])[0] for d in listed(execution.body["dynamic"])]
    actions = {a for statement in dynamic for a in statement["actions"]}
    assert actions == {
        "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability",
        "ecr:GetAuthorizationToken",
    }  # fmt: skip
    assert not any(a.startswith("secretsmanager:") for a in actions)  # no ECS-injected secrets
    (trust,) = policy_statements(COMPUTE, "ecs_tasks_assume")
    assert first(trust, "condition")["variable"] == "aws:SourceAccount"


# --- the task -------------------------------------------------------------------------------


def test_secrets_never_appear_in_the_task_definition() -> None:
    for name, container in containers().items():
        assert "secrets" not in container, name
        environment = json.dumps(container.get("environment", []))
        for word in ("password", "private_key", "PASSWORD_FILE"):
            assert word not in environment, (name, word)
    prepare = containers()["prepare"]["environment"]
    for arn in ("DB_SECRET_ARN = var.database_secret_arn",
                "ADMIN_SECRET_ARN = aws_secretsmanager_secret.admin.arn",
                "DICOM_TLS_SECRET_ARN = var.dicom_tls_secret_arn"):  # fmt: skip
        assert arn in prepare


def test_containers_run_in_order_read_only_without_capabilities() -> None:
    found = containers()
    assert list(found) == ["volumes", "prepare", "openpacs"]
    assert found["prepare"]["dependsOn"] == [{"containerName": "volumes", "condition": "SUCCESS"}]
    assert found["openpacs"]["dependsOn"] == [{"containerName": "prepare", "condition": "SUCCESS"}]
    assert [c["essential"] for c in found.values()] == [False, False, True]
    for container in found.values():
        assert container["readonlyRootFilesystem"] is True
        assert container["image"] == "${var.container_image}"
        assert container["logConfiguration"] == "${local.task_logs}"
    assert found["prepare"]["user"] == found["openpacs"]["user"] == "10001:10001"
    for name in ("prepare", "openpacs"):
        assert found[name]["linuxParameters"]["capabilities"]["drop"] == ["ALL"]
    # the one root step keeps CHOWN only, to hand Fargate's root-owned volumes over
    kept = set(locals_of(COMPUTE)["all_but_chown"])
    assert "CHOWN" not in kept
    assert {"DAC_OVERRIDE", "SETUID", "SETGID", "FOWNER"} <= kept
    mounts = {m["sourceVolume"]: m["readOnly"] for m in found["openpacs"]["mountPoints"]}
    assert mounts == {"run": True, "conf": True, "data": False}
    assert found["openpacs"]["command"] == ["serve", "--config", "/etc/openpacs/openpacs.toml"]
    probe = found["openpacs"]["healthCheck"]["command"]
    assert probe[:3] == ["CMD", "python", "-c"]


def test_the_task_and_service_shape() -> None:
    task = by_name("aws_ecs_task_definition")["server"]
    assert task["requires_compatibilities"] == ["FARGATE"]
    assert task["network_mode"] == "awsvpc"
    assert task["container_definitions"] == "${jsonencode(local.containers)}"
    service = by_name("aws_ecs_service")["server"]
    assert first(service, "deployment_circuit_breaker") == {"enable": True, "rollback": True}
    network = first(service, "network_configuration")
    assert network["assign_public_ip"] is False
    assert network["security_groups"] == ["${aws_security_group.server.id}"]
    assert network["subnets"] == "${var.subnet_ids}"
    targets = {
        (lb["target_group_arn"], lb["container_port"]) for lb in listed(service["load_balancer"])
    }
    assert targets == {
        ("${var.target_group_arns[0]}", "${local.https_port}"),
        ("${var.target_group_arns[1]}", "${local.dicom_tls_port}"),
    }
    assert service["platform_version"] == "LATEST"
    assert service["enable_execute_command"] is False
    conditions = [p["condition"] for p in first(service, "lifecycle")["precondition"]]
    assert any("database_max_connections" in c for c in conditions)
    cluster = by_name("aws_ecs_cluster")["openpacs"]
    assert first(cluster, "setting") == {"name": "containerInsights", "value": "enabled"}
    storage = first(first(cluster, "configuration"), "managed_storage_configuration")
    assert storage["fargate_ephemeral_storage_kms_key_id"] == "${var.kms_key_arn}"


def test_logs_go_to_the_encrypted_group_with_its_retention() -> None:
    logs = locals_of(COMPUTE)["task_logs"]
    assert logs["logDriver"] == "awslogs"
    assert logs["options"]["awslogs-group"] == "${aws_cloudwatch_log_group.openpacs.name}"
    group = by_name("aws_cloudwatch_log_group")["openpacs"]
    assert group["kms_key_id"] == "${var.kms_key_arn}"
    assert group["retention_in_days"] == "${var.log_retention_days}"


def test_the_key_lets_fargate_encrypt_this_clusters_task_storage_only() -> None:
    (key,) = [b for b in blocks(EXAMPLE, "data") if b.name == "key"]
    (fargate,) = [
        d["statement"]
        for d in listed(key.body["dynamic"])
        if "fargate" in d["statement"]["for_each"]
    ]
    content = listed(fargate["content"])[0]
    assert first(content, "principals")["identifiers"] == ["fargate.amazonaws.com"]
    variables_ = {c["variable"]: c["values"] for c in listed(content["condition"])}
    assert variables_["kms:EncryptionContext:aws:ecs:clusterName"] == ["${var.name}"]
    assert variables_["kms:EncryptionContext:aws:ecs:clusterAccount"] == ["${local.account}"]


# --- openpacs.toml: one source for both platforms -------------------------------------------


def toml_pattern() -> re.Pattern[str]:
    """The regex fargate.tf applies to the rendered boot script, as Terraform reads it."""
    source = (COMPUTE / "fargate.tf").read_text(encoding="utf-8")
    (literal,) = re.findall(r'"(\(\?s\)<<\'TOML\'[^"]*)"', source)
    return re.compile(literal.replace("\\\\", "\\"))


def fargate_toml(values: dict[str, str] = SAMPLE) -> str:
    match = toml_pattern().search(render(TEMPLATE.read_text(encoding="utf-8"), values))
    assert match, "the boot script no longer writes openpacs.toml as a <<'TOML' here-document"
    return match[1]


def test_the_tasks_openpacs_toml_is_the_instances(tmp_path: Path) -> None:
    toml = fargate_toml()
    assert toml.startswith("# Written at boot")
    assert "[dicom.remotes]" in toml
    assert 'aet = "CT1"' in toml
    for name in ("dicom.pem", "dicom.key", "dicom-ca.pem", "server.pem", "server.key",
                 "admin-password"):  # fmt: skip
        (tmp_path / name).write_text("x", encoding="utf-8")
    config = tmp_path / "openpacs.toml"
    config.write_text(toml.replace("/run/openpacs/", f"{tmp_path}/"), encoding="utf-8")
    settings = load_settings(config, environ={})
    assert settings.dicom.tls_require_client_cert is True
    assert settings.dicom.accept_unknown_aets is False
    assert settings.database.rds_iam is True
    assert settings.storage.url == SAMPLE["storage_url"]


@pytest.mark.slow
def test_terraform_extracts_the_same_toml(tmp_path: Path) -> None:
    """RE2 (Terraform's regex) and Python's re agree on the pattern: terraform console
    evaluates fargate.tf's expression over the rendered boot script."""
    from tests.deploy.terraform_cli import terraform_binary

    (tmp_path / "user-data.sh").write_text(
        render(TEMPLATE.read_text(encoding="utf-8"), SAMPLE), encoding="utf-8"
    )
    source = (COMPUTE / "fargate.tf").read_text(encoding="utf-8")
    (literal,) = re.findall(r'"(\(\?s\)<<\'TOML\'[^"]*)"', source)
    expression = f'jsonencode(regex("{literal}", file("user-data.sh"))[0])\n'
    result = subprocess.run(
        [terraform_binary(), "console"], input=expression, cwd=tmp_path, capture_output=True,
        text=True, timeout=120, check=False,
        env={**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "CHECKPOINT_DISABLE": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(json.loads(result.stdout)) == fargate_toml()


# --- the prepare step, run for real ---------------------------------------------------------


@pytest.fixture(scope="module")
def account(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """moto's Secrets Manager and SSM with the deployment's secrets and parameter."""
    pki = tmp_path_factory.mktemp("pki")
    runner = CliRunner()
    for args in (["ca", str(pki)], ["server", str(pki), "--host", "dicom.pacs.example.org"]):
        result = runner.invoke(cli, ["certs", *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    dicom_tls = {
        "certificate": (pki / "server.pem").read_text(),
        "private_key": (pki / "server.key").read_text(),
        "client_ca": (pki / "ca.pem").read_text(),
    }
    with moto_server() as endpoint:
        secrets = client(endpoint, "secretsmanager")
        arns = {}
        values = {
            "database": json.dumps({"username": "postgres", "password": "x"}),
            "admin": "from-admin-secret",
            "dicom-tls": json.dumps(dicom_tls),
            "oidc": json.dumps(OIDC_SETTINGS),
        }
        for name, value in values.items():
            arns[name] = secrets.create_secret(Name=name, SecretString=value)["ARN"]
        client(endpoint, "ssm").put_parameter(
            Name="/openpacs/test/database-ca", Type="SecureString", Value=dicom_tls["client_ca"]
        )
        yield endpoint, arns


@pytest.fixture
def server_role() -> Iterator[str]:
    """A login role of this test's own on the shared PostgreSQL, and rds_iam as RDS has it."""
    from tests.support.postgres import ADMIN_URL

    role = f"pacs_server_{uuid.uuid4().hex[:8]}"
    admin = create_engine(
        make_url(ADMIN_URL).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.execute(
            text(
                "DO $$ BEGIN CREATE ROLE rds_iam NOLOGIN; "
                "EXCEPTION WHEN duplicate_object THEN NULL; END $$"
            )
        )
    try:
        yield role
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP ROLE IF EXISTS {role}"))
        admin.dispose()


# What the identity module puts in its secret (deploy/aws/modules/identity, oidc_settings).
OIDC_SETTINGS = {
    "issuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc",
    "client_id": "4f2client",
    "redirect_uri": "https://pacs.example.org/api/oidc/callback",
    "scopes": "openid profile email",
    "username_claim": "cognito:username",
    "role_claim": "cognito:groups",
    "roles": ["openpacs-admin=admin", "openpacs-user=user", 'quote"d=uploader'],
}


def test_prepare_writes_secrets_as_files_upgrades_and_removes_the_owners_secret(
    tmp_path: Path, account: tuple[str, dict[str, str]], server_role: str
) -> None:
    endpoint, arns = account
    run, conf = tmp_path / "run", tmp_path / "conf"
    run.mkdir(mode=0o700)
    conf.mkdir()
    toml = fargate_toml().replace("/run/openpacs/", f"{run}/")
    with temporary_database() as url:
        environment = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OPENPACS_"))},
            **AWS_ENVIRONMENT,
            "AWS_ENDPOINT_URL": endpoint,
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "RUN_DIR": str(run),
            "CONF_DIR": str(conf),
            "DB_SECRET_ARN": arns["database"],
            "ADMIN_SECRET_ARN": arns["admin"],
            "DICOM_TLS_SECRET_ARN": arns["dicom-tls"],
            "DB_CA_PARAMETER": "/openpacs/test/database-ca",
            "DB_USER": server_role,
            "DB_OWNER_URL": url,
            "OPENPACS_TOML": toml,
            "OIDC_SECRET_ARN": arns["oidc"],
        }
        result = subprocess.run(
            ["/bin/sh", "-c", PREPARE.read_text(encoding="utf-8")],
            env=environment, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"))
        with engine.connect() as connection:
            assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
            granted = connection.execute(
                text("SELECT pg_has_role(:role, 'rds_iam', 'member')"), {"role": server_role}
            ).scalar()
            assert granted is True
            assert connection.execute(
                text("SELECT has_table_privilege(:role, 'instances', 'INSERT')"),
                {"role": server_role},
            ).scalar()
        engine.dispose()
    files = {path.name for path in run.iterdir()}
    assert files == {"admin-password", "dicom.pem", "dicom.key", "dicom-ca.pem", "server.pem",
                     "server.key", "ca.pem"}, files  # fmt: skip
    assert "database.json" not in files  # the owner's secret is gone before openpacs starts
    assert (run / "admin-password").read_text() == "from-admin-secret"
    for name in ("admin-password", "dicom.key", "dicom.pem"):
        assert stat.S_IMODE((run / name).stat().st_mode) == 0o400, name
    written = (conf / "openpacs.toml").read_text()
    assert written.startswith(toml.rstrip("\n") + "\n\n[auth.oidc]\n")
    oidc = tomllib.loads(written)["auth"]["oidc"]
    assert oidc == OIDC_SETTINGS  # the identity module's settings, as openpacs reads them
    assert "BEGIN CERTIFICATE" in (conf / "rds-ca.pem").read_text()


def test_prepare_fails_and_starts_nothing_when_a_secret_is_missing(
    tmp_path: Path, account: tuple[str, dict[str, str]]
) -> None:
    endpoint, arns = account
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OPENPACS_"))},
        **AWS_ENVIRONMENT,
        "AWS_ENDPOINT_URL": endpoint,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "RUN_DIR": str(tmp_path),
        "CONF_DIR": str(tmp_path),
        "DB_SECRET_ARN": arns["database"],
        "ADMIN_SECRET_ARN": arns["admin"] + "-gone",
        "DICOM_TLS_SECRET_ARN": arns["dicom-tls"],
        "DB_CA_PARAMETER": "/openpacs/test/database-ca",
        "DB_USER": "unused",
        "DB_OWNER_URL": "postgresql://127.0.0.1:1/none",
        "OPENPACS_TOML": "",
    }
    result = subprocess.run(
        ["/bin/sh", "-c", PREPARE.read_text(encoding="utf-8")],
        env=environment, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "ResourceNotFoundException" in result.stderr
    assert not (tmp_path / "server.pem").exists()  # stopped at the first failure
