"""The servers' boot script (compute module user data): rendered as Terraform's templatefile
would render it, it is valid bash within EC2's user-data limit, and run for real (tests/deploy/
boot_harness.py: stand-ins for the instance metadata, AWS, docker and a registry) it pulls a
private ECR image, leaves openpacs the files it needs, makes them again at every boot, and
writes an openpacs.toml that openpacs' own `load_settings` accepts.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509

from openpacs.cli.main import cli
from openpacs.config import Settings, load_settings
from openpacs.errors import ConfigError
from tests.deploy.boot_harness import PRIVATE_IP, Machine, machine
from tests.deploy.terraform_model import MODULES, locals_of, one

TEMPLATE = MODULES / "compute" / "user-data.sh.tftpl"
#: EC2 refuses user data over 16 KB (before base64).
USER_DATA_LIMIT = 16384

SAMPLE = {
    "region": "eu-west-1",
    "image": "111122223333.dkr.ecr.eu-west-1.amazonaws.com/openpacs@sha256:" + "a" * 64,
    "ecr_login": "true",
    "db_host": "openpacs-index.abc123.eu-west-1.rds.amazonaws.com",
    "db_port": "5432",
    "db_name": "openpacs",
    "db_user": "openpacs_server",
    "db_secret_arn": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:rds!db-1234-AbCdEf",
    "admin_secret_arn": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:admin-AbCdEf",
    "admin_user": "admin",
    "storage_url": "s3://openpacs-images-111122223333-eu-west-1/archive",
    "kms_key_arn": "arn:aws:kms:eu-west-1:111122223333:key/0000aaaa-bbbb-cccc-dddd-eeeeffff0000",
    "ae_title": "OPENPACS",
    "log_group": "/openpacs/openpacs/server",
    "dicom_tls_port": "2762",
    "https_port": "8042",
    "dicom_tls_secret_arn": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:dicom-tls-AbCdEf",
    "db_ca_parameter": "/openpacs/openpacs/database-ca",
    "trusted_proxies": '["10.40.0.0/20", "10.40.16.0/20"]',
    "dicom_remotes": (
        '[[dicom.remotes]]\naet = "CT1"\nhost = "10.20.0.15"\nport = 104\ntls = true\n'
    ),
    "workers": "2",
    "pool_size": "5",
    "max_overflow": "10",
    "oidc_secret_arn": "",
}

_INTERPOLATION = re.compile(r"(?<!\$)\$\{([^}]*)\}")


def template_names(text: str) -> set[str]:
    return set(_INTERPOLATION.findall(text))


def render(text: str, values: dict[str, str]) -> str:
    """Terraform's templatefile for a template with only ${name} and $${ escapes."""
    assert "%{" not in text.replace("%%{", ""), "directives are not expected in the template"

    def substitute(match: re.Match[str]) -> str:
        return values[match[1]]

    return _INTERPOLATION.sub(substitute, text).replace("$${", "${")


@pytest.fixture(scope="module")
def script() -> str:
    return render(TEMPLATE.read_text(encoding="utf-8"), SAMPLE)


def test_the_template_and_the_module_agree_on_its_variables() -> None:
    names = template_names(TEMPLATE.read_text(encoding="utf-8"))
    passed = set(locals_of(MODULES / "compute")["user_data_vars"])
    assert names == passed
    assert names == set(SAMPLE)
    template = one(MODULES / "compute", "aws_launch_template")
    assert (
        'templatefile("${path.module}/user-data.sh.tftpl", local.user_data_vars)'
        in (template["user_data"])
    )


def test_blobs_in_rds_are_the_index_database() -> None:
    """blob_store = "rds": the module passes "postgresql", the blobs' URL for the index's
    own database, and the script writes it as [storage] url."""
    expression = locals_of(MODULES / "compute")["user_data_vars"]["storage_url"]
    assert '"rds"' in expression
    assert '"postgresql"' in expression
    rendered = render(TEMPLATE.read_text(encoding="utf-8"), SAMPLE | {"storage_url": "postgresql"})
    assert re.search(r'\[storage\]\nurl = "postgresql"\n', rendered)


def test_the_rendered_script_is_valid_bash_within_the_user_data_limit(script: str) -> None:
    assert script.startswith("#!/bin/bash\n")
    assert "set -euo pipefail" in script
    result = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True,
                            timeout=30, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert len(script.encode()) <= USER_DATA_LIMIT


# --- run for real ---------------------------------------------------------------------------


def make_account(folder: Path) -> tuple[dict[str, str], dict[str, str]]:
    """The secrets and SSM parameters of the stand-in account: real certificates."""
    runner = CliRunner()
    pki = folder / "pki"
    for args in (["ca", str(pki)], ["server", str(pki), "--host", "dicom.pacs.example.org"]):
        result = runner.invoke(cli, ["certs", *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    dicom_tls = {
        "certificate": (pki / "server.pem").read_text(),
        "private_key": (pki / "server.key").read_text(),
        "client_ca": (pki / "ca.pem").read_text(),
    }
    secrets = {
        SAMPLE["db_secret_arn"]: json.dumps({"username": "openpacs", "password": "from-rds"}),
        SAMPLE["admin_secret_arn"]: "from-admin-secret",
        SAMPLE["dicom_tls_secret_arn"]: json.dumps(dicom_tls),
    }
    parameters = {SAMPLE["db_ca_parameter"]: (pki / "ca.pem").read_text()}
    return secrets, parameters


@pytest.fixture(scope="module")
def booted(script: str, tmp_path_factory: pytest.TempPathFactory) -> Machine:
    folder = tmp_path_factory.mktemp("instance")
    secrets, parameters = make_account(folder)
    with machine(folder / "root", secrets, parameters) as instance:
        result = instance.boot(script)
        assert result.returncode == 0, instance.boot_log + result.stderr
        prepared = instance.run_unit_script("openpacs-prepare")  # systemctl enable --now
        assert prepared.returncode == 0, prepared.stdout + prepared.stderr
        yield instance


SERVER_FILES = {
    "database.json", "admin-password", "dicom.pem", "dicom.key", "dicom-ca.pem",
    "server.pem", "server.key", "ca.pem", "oidc.env",
}  # fmt: skip


def test_a_private_ecr_image_is_pulled_with_the_credential_helper(booted: Machine) -> None:
    """The registry refuses anonymous pulls: the image arrives because docker asks the ECR
    credential helper at pull time (no token stored, none removed before the pull)."""
    pulls = [call for call in booted.calls if call.startswith("docker pull")]
    assert pulls == [f"docker pull --quiet {SAMPLE['image']}"]
    config = json.loads(booted.path("/root/.docker/config.json").read_text())
    assert config == {"credHelpers": {SAMPLE["image"].split("/")[0]: "ecr-login"}}
    assert any("amazon-ecr-credential-helper" in call for call in booted.calls if "dnf" in call)
    assert not any(call.startswith("docker login") for call in booted.calls)


def test_openpacs_gets_its_files_on_a_tmpfs(booted: Machine) -> None:
    run = booted.path("/run/openpacs")
    assert {path.name for path in run.iterdir()} == SERVER_FILES
    assert any(call.startswith("mount -t tmpfs") and "mode=0700" in call and "uid=10001" in call
               for call in booted.calls)  # fmt: skip
    assert (run / "dicom-ca.pem").read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert not (run / "ca.key").exists()  # the ALB-hop CA's key is discarded
    certificate = x509.load_pem_x509_certificate((run / "server.pem").read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert PRIVATE_IP in {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
    assert booted.path("/etc/openpacs/rds-ca.pem").read_text().startswith("-----BEGIN")
    for path in run.iterdir():  # certificates are public; keys and secrets are not
        assert path.suffix == ".pem" or path.stat().st_mode & 0o077 == 0, path.name


def test_a_reboot_makes_the_secrets_and_certificates_again(booted: Machine) -> None:
    """The tmpfs is empty after a reboot: openpacs-prepare, a unit openpacs requires, fills it
    at every boot (the old script made it only at first boot, so openpacs looped)."""
    result = booted.reboot()
    assert result.returncode == 0, result.stdout + result.stderr
    assert {path.name for path in booted.path("/run/openpacs").iterdir()} == SERVER_FILES
    units = "/etc/systemd/system"
    prepare = booted.read(f"{units}/openpacs-prepare.service")
    assert "WantedBy=multi-user.target" in prepare
    assert "ExecStart=/usr/local/sbin/openpacs-prepare" in prepare
    service = unit_settings(booted.read(f"{units}/openpacs.service"))
    for key in ("Requires", "After"):
        assert {"openpacs-prepare.service", "openpacs-db-upgrade.service"} <= set(
            service[key].split()
        )
    assert any("enable --now openpacs-prepare.service" in call for call in booted.calls)


def test_the_schema_is_upgraded_and_granted_once_before_openpacs_starts(
    booted: Machine, tmp_path: Path
) -> None:
    """An image upgrade's new servers would refuse the old schema: a one-shot unit runs
    `openpacs db upgrade` (serialised by its advisory lock) and `openpacs db grant` as the
    schema's owner, before openpacs, which connects as its own role (issue 19, items 4, 5)."""
    text = booted.read("/etc/systemd/system/openpacs-db-upgrade.service")
    settings = unit_settings(text)
    assert settings["Type"] == "oneshot"
    assert "openpacs-prepare.service" in settings["Requires"]
    owner = shlex.split(settings["Environment"])[0].split("=", 1)[1]
    commands = [
        shlex.split(line.split("=", 1)[1].replace("$OWNER", owner))  # systemd splits $VAR
        for line in text.replace("\\\n", " ").splitlines()
        if line.startswith("ExecStart=")
    ]
    tails = [command[command.index(SAMPLE["image"]) + 1 :] for command in commands]
    assert tails == [
        ["db", "upgrade", "--config", "/etc/openpacs/openpacs.toml"],
        ["db", "grant", "openpacs_server", "--rds-iam", "--config", "/etc/openpacs/openpacs.toml"],
    ]
    for tail in tails:  # the commands exist
        assert CliRunner().invoke(cli, [*tail[:2], "--help"]).exit_code == 0
    environ = dict(commands[0][i + 1].split("=", 1) for i, word in enumerate(commands[0])
                   if word == "--env")  # fmt: skip
    environ = {key: booted.localize(value) for key, value in environ.items()}
    config = tmp_path / "openpacs.toml"
    config.write_text(booted.localize(written_config(booted)), encoding="utf-8")
    step = load_settings(config, environ=environ).database
    assert step.rds_iam is False
    url = step.sqlalchemy_url()
    assert (url.username, url.password) == ("openpacs", "from-rds")  # the owner, from RDS


def test_openpacs_never_uses_a_password_to_reach_the_database(booted: Machine) -> None:
    """It logs in as its own role with IAM tokens: nothing to rotate, nothing to restart."""
    fetch = booted.read("/usr/local/sbin/openpacs-fetch-secrets")
    assert "systemctl" not in fetch
    config = written_config(booted)
    assert "rds_iam = true" in config
    assert "password" not in config.split("[database]", 1)[1].split("[storage]", 1)[0]
    service = booted.read("/etc/systemd/system/openpacs.service")
    assert "database.json" not in service


def unit_settings(text: str) -> dict[str, str]:
    joined = text.replace("\\\n", " ")
    return dict(line.split("=", 1) for line in joined.splitlines() if "=" in line)


def written_config(booted: Machine) -> str:
    return booted.read("/etc/openpacs/openpacs.toml")


def load_boot_settings(booted: Machine, folder: Path) -> Settings:
    config = folder / "openpacs.toml"
    config.write_text(booted.localize(written_config(booted)), encoding="utf-8")
    return load_settings(config, environ=container_environment(booted))


def container_environment(booted: Machine) -> dict[str, str]:
    """The --env options of the `docker run` that starts openpacs."""
    unit = booted.read("/etc/systemd/system/openpacs.service")
    command = unit_settings(unit)["ExecStart"]
    words = shlex.split(command)
    assert words[-1] == SAMPLE["image"]
    assert "--read-only" in words
    assert words[words.index("--user") + 1] == "10001:10001"
    return dict(words[i + 1].split("=", 1) for i, word in enumerate(words) if word == "--env")


def test_openpacs_loads_the_configuration_the_boot_script_writes(
    booted: Machine, tmp_path: Path
) -> None:
    settings = load_boot_settings(booted, tmp_path)

    assert settings.dicom.aet == "OPENPACS"
    assert settings.dicom.port == 0  # no plain DICOM on AWS
    assert settings.dicom.tls_port == 2762
    assert settings.dicom.tls_require_client_cert is True
    assert settings.dicom.accept_unknown_aets is False
    assert [(r.aet, r.host, r.port, r.tls) for r in settings.dicom.remotes] == [
        ("CT1", "10.20.0.15", 104, True)
    ]
    assert settings.dicom.workers == 2
    assert settings.http.host == "0.0.0.0"
    assert settings.http.port == 8042
    assert settings.http.tls_cert.endswith("/server.pem")
    assert settings.http.trusted_proxies == ("10.40.0.0/20", "10.40.16.0/20")
    assert (settings.database.pool_size, settings.database.max_overflow) == (5, 10)
    assert settings.database.rds_iam is True
    url = settings.database.sqlalchemy_url()
    assert (url.host, url.port, url.database) == (SAMPLE["db_host"], 5432, "openpacs")
    assert (url.username, url.password) == ("openpacs_server", None)
    assert url.query["sslmode"] == "verify-full"
    assert str(url.query["sslrootcert"]).endswith("/rds-ca.pem")
    assert settings.storage.s3_bucket == "openpacs-images-111122223333-eu-west-1"
    assert settings.storage.s3_prefix == "archive"
    assert (settings.storage.s3_sse, settings.storage.s3_kms_key_id) == (
        "aws:kms",
        SAMPLE["kms_key_arn"],
    )
    assert settings.auth.admin_password_file.endswith("/admin-password")


def test_the_ports_in_the_config_are_the_ones_the_load_balancers_use(booted: Machine) -> None:
    config = written_config(booted)
    ingress = MODULES / "ingress" / "variables.tf"
    text = ingress.read_text(encoding="utf-8")
    assert f"tls_port = {SAMPLE['dicom_tls_port']}" in config
    assert "default     = 2762" in text
    assert "default     = 8042" in text
    compute = locals_of(MODULES / "compute")
    assert (compute["dicom_tls_port"], compute["https_port"]) == (2762, 8042)
    assert container_environment(booted)["OPENPACS_HEALTH_URL"] == (
        f"https://127.0.0.1:{SAMPLE['https_port']}/health"
    )


def test_no_secret_is_in_the_script_the_environment_or_argv(script: str, booted: Machine) -> None:
    environment = container_environment(booted)
    assert not any("PASSWORD" in key and not key.endswith("_FILE") for key in environment)
    logged = "\n".join(booted.calls) + booted.boot_log
    for secret in ("from-rds", "from-admin-secret", "ecr-token", "PRIVATE KEY"):
        assert secret not in script
        assert secret not in logged
    assert "ssh" not in script.lower().replace("sshd", "")


def test_a_missing_secret_stops_the_boot_with_its_name(script: str, tmp_path: Path) -> None:
    secrets, parameters = make_account(tmp_path)
    del secrets[SAMPLE["admin_secret_arn"]]
    with machine(tmp_path / "root", secrets, parameters) as instance:
        assert instance.boot(script).returncode == 0  # first boot only installs
        result = instance.run_unit_script("openpacs-prepare")
        assert result.returncode != 0
        assert f"cannot read secret {SAMPLE['admin_secret_arn']}" in result.stderr


def test_a_config_without_its_secret_files_is_refused(booted: Machine, tmp_path: Path) -> None:
    """openpacs itself also refuses to start without them, naming the key."""
    config = tmp_path / "openpacs.toml"
    text = booted.localize(written_config(booted))
    config.write_text(text.replace("/admin-password", "/no-such-file"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"auth\.admin_password_file"):
        load_settings(config, environ={})


# --- single sign-on: the identity module's [auth.oidc] settings -----------------------------

OIDC_SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:oidc-settings-AbCdEf"
#: What the identity module writes (its local.oidc_settings, jsonencoded).
OIDC_SETTINGS = {
    "issuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEfGhI",
    "client_id": "4example0client0id0abcdefg",
    "redirect_uri": "https://pacs.hospital.example/api/oidc/callback",
    "scopes": "openid profile email",
    "username_claim": "cognito:username",
    "role_claim": "cognito:groups",
    "roles": ["admin=admin", "user=user", "uploader=uploader"],
}


def test_an_empty_oidc_environment_without_single_sign_on(booted: Machine) -> None:
    assert booted.read("/run/openpacs/oidc.env") == ""
    unit = booted.read("/etc/systemd/system/openpacs.service")
    assert "--env-file /run/openpacs/oidc.env" in unit


def test_the_identity_modules_settings_reach_openpacs_as_auth_oidc(tmp_path: Path) -> None:
    """The identity module's secret (JSON) becomes the container's OPENPACS_AUTH__OIDC__*
    environment (docker --env-file), which openpacs loads as a public client's [auth.oidc]."""
    identity = (MODULES / "identity" / "main.tf").read_text(encoding="utf-8")
    assert set(OIDC_SETTINGS) == set(locals_of(MODULES / "identity")["oidc_settings"]), identity
    secrets, parameters = make_account(tmp_path)
    secrets[OIDC_SECRET_ARN] = json.dumps(OIDC_SETTINGS)
    script = render(
        TEMPLATE.read_text(encoding="utf-8"), SAMPLE | {"oidc_secret_arn": OIDC_SECRET_ARN}
    )
    with machine(tmp_path / "root", secrets, parameters) as instance:
        assert instance.boot(script).returncode == 0, instance.boot_log
        prepared = instance.run_unit_script("openpacs-prepare")
        assert prepared.returncode == 0, prepared.stdout + prepared.stderr
        env_file = instance.path("/run/openpacs/oidc.env")
        assert env_file.stat().st_mode & 0o077 == 0
        lines = env_file.read_text(encoding="utf-8").splitlines()
        assert not (instance.path("/run/openpacs") / "oidc.json").exists()
        environ = container_environment(instance) | dict(line.split("=", 1) for line in lines)
        config = tmp_path / "openpacs.toml"
        config.write_text(instance.localize(written_config(instance)), encoding="utf-8")
        oidc = load_settings(config, environ=environ).auth.oidc
    assert oidc.issuer == OIDC_SETTINGS["issuer"]
    assert oidc.client_id == OIDC_SETTINGS["client_id"]
    assert oidc.client_secret_file == ""  # a public client
    assert (oidc.username_claim, oidc.role_claim) == ("cognito:username", "cognito:groups")
    assert oidc.roles == ("admin=admin", "user=user", "uploader=uploader")
    assert oidc.redirect_uri == OIDC_SETTINGS["redirect_uri"]


def test_an_unusable_oidc_setting_stops_the_boot(tmp_path: Path) -> None:
    secrets, parameters = make_account(tmp_path)
    secrets[OIDC_SECRET_ARN] = json.dumps({"issuer": "https://x.example\nOPENPACS_X=1"})
    script = render(
        TEMPLATE.read_text(encoding="utf-8"), SAMPLE | {"oidc_secret_arn": OIDC_SECRET_ARN}
    )
    with machine(tmp_path / "root", secrets, parameters) as instance:
        assert instance.boot(script).returncode == 0
        result = instance.run_unit_script("openpacs-prepare")
        assert result.returncode != 0
        assert "unusable [auth.oidc] setting issuer" in result.stderr
