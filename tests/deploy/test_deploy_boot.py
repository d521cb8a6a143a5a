"""The servers' boot script (compute module user data): rendered as Terraform's templatefile
would render it, it is valid bash, fits EC2's user-data limit, keeps secrets off the command
line and the environment, and writes an openpacs.toml that openpacs' own `load_settings`
accepts together with the environment the container is started with.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from openpacs.cli.main import cli
from openpacs.config import Settings, load_settings
from openpacs.errors import ConfigError
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
    "db_secret_arn": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:rds!db-1234-AbCdEf",
    "admin_secret_arn": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:admin-AbCdEf",
    "admin_user": "admin",
    "bucket": "openpacs-images-111122223333-eu-west-1",
    "prefix": "archive",
    "kms_key_arn": "arn:aws:kms:eu-west-1:111122223333:key/0000aaaa-bbbb-cccc-dddd-eeeeffff0000",
    "ae_title": "OPENPACS",
    "log_group": "/openpacs/openpacs/server",
    "dicom_tls_port": "2762",
    "https_port": "8042",
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


def test_the_rendered_script_is_valid_bash_within_the_user_data_limit(script: str) -> None:
    assert script.startswith("#!/bin/bash\n")
    assert "set -euo pipefail" in script
    result = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True,
                            timeout=30, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert len(script.encode()) <= USER_DATA_LIMIT


def test_secrets_are_read_into_a_tmpfs_never_passed_around(script: str) -> None:
    assert re.search(r"mount -t tmpfs -o [^ ]*mode=0700[^ ]*uid=10001", script)
    assert "secretsmanager get-secret-value" in script
    # the container learns file names only
    assert "--env OPENPACS_DATABASE__PASSWORD_FILE=/run/openpacs/database.json" in script
    assert "--env OPENPACS_DATABASE__PASSWORD=" not in script
    assert "--password-stdin" in script  # the registry token never reaches argv
    assert 'rm -f "$secrets_dir/ca.key"' in script
    assert "ssh" not in script.lower().replace("sshd", "")


def container_environment(script: str) -> dict[str, str]:
    """The --env options of the `docker run` that starts openpacs."""
    unit = script.split("/etc/systemd/system/openpacs.service <<UNIT", 1)[1].split("\nUNIT", 1)[0]
    command = unit.split("ExecStart=", 1)[1].split("\nExecStop", 1)[0].replace("\\\n", " ")
    words = shlex.split(command)
    assert words[-1] == "$image"
    assert "--read-only" in words
    assert words[words.index("--user") + 1] == "10001:10001"
    return dict(words[i + 1].split("=", 1) for i, word in enumerate(words) if word == "--env")


def written_config(script: str) -> str:
    marker = "cat > \"$conf_dir/openpacs.toml\" <<'TOML'\n"
    assert marker in script
    return script.split(marker, 1)[1].split("\nTOML\n", 1)[0]


def make_server_files(tmp_path: Path) -> tuple[Path, Path]:
    """The files the boot script leaves for openpacs, in stand-ins for /run and /etc."""
    run, etc = tmp_path / "run-openpacs", tmp_path / "etc-openpacs"
    run.mkdir()
    etc.mkdir()
    runner = CliRunner()
    for args in (["ca", str(run)], ["server", str(run), "--host", "10.40.32.10"]):
        result = runner.invoke(cli, ["certs", *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    (run / "ca.pem").rename(etc / "rds-ca.pem")  # any CA bundle will do for parsing
    (run / "database.json").write_text(
        json.dumps({"username": "openpacs", "password": "from-rds-secret"}), encoding="utf-8"
    )
    (run / "admin-password").write_text("from-admin-secret\n", encoding="utf-8")
    return run, etc


def load_boot_settings(script: str, tmp_path: Path) -> Settings:
    run, etc = make_server_files(tmp_path)

    def local(text: str) -> str:
        return text.replace("/run/openpacs", str(run)).replace("/etc/openpacs", str(etc))

    config = tmp_path / "openpacs.toml"
    config.write_text(local(written_config(script)), encoding="utf-8")
    environ = {key: local(value) for key, value in container_environment(script).items()}
    return load_settings(config, environ=environ)


def test_openpacs_loads_the_configuration_the_boot_script_writes(
    script: str, tmp_path: Path
) -> None:
    settings = load_boot_settings(script, tmp_path)

    assert settings.dicom.aet == "OPENPACS"
    assert settings.dicom.port == 0  # no plain DICOM on AWS
    assert settings.dicom.tls_port == 2762
    assert settings.http.host == "0.0.0.0"
    assert settings.http.port == 8042
    assert settings.http.tls_cert.endswith("/server.pem")
    url = settings.database.sqlalchemy_url()
    assert (url.host, url.port, url.database) == (SAMPLE["db_host"], 5432, "openpacs")
    assert (url.username, url.password) == ("openpacs", "from-rds-secret")
    assert url.query["sslmode"] == "verify-full"
    assert str(url.query["sslrootcert"]).endswith("/rds-ca.pem")
    assert settings.storage.s3_bucket == SAMPLE["bucket"]
    assert settings.storage.s3_prefix == "archive"
    assert (settings.storage.s3_sse, settings.storage.s3_kms_key_id) == (
        "aws:kms",
        SAMPLE["kms_key_arn"],
    )
    assert settings.auth.admin_password_file.endswith("/admin-password")


def test_the_ports_in_the_config_are_the_ones_the_load_balancers_use(script: str) -> None:
    config = written_config(script)
    ingress = MODULES / "ingress" / "variables.tf"
    text = ingress.read_text(encoding="utf-8")
    assert f"tls_port = {SAMPLE['dicom_tls_port']}" in config
    assert "default     = 2762" in text
    assert "default     = 8042" in text
    compute = locals_of(MODULES / "compute")
    assert (compute["dicom_tls_port"], compute["https_port"]) == (2762, 8042)
    assert f"OPENPACS_HEALTH_URL=https://127.0.0.1:{SAMPLE['https_port']}/health" in script


def test_a_config_without_its_secret_files_is_refused(script: str, tmp_path: Path) -> None:
    """The boot script checks the secrets arrived before it starts openpacs; openpacs itself
    also refuses to start without them, naming the key."""
    settings_dir = tmp_path / "ok"
    settings_dir.mkdir()
    run, etc = make_server_files(settings_dir)
    (run / "admin-password").unlink()
    config = tmp_path / "openpacs.toml"
    config.write_text(
        written_config(script)
        .replace("/run/openpacs", str(run))
        .replace("/etc/openpacs", str(etc)),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"auth\.admin_password_file"):
        load_settings(config, environ={})
    assert 'test -s "$secrets_dir/admin-password"' in script
    assert 'test -s "$secrets_dir/database.json"' in script
