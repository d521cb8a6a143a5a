"""The compose stack's openpacs configuration, run for real without Docker.

make-secrets.sh makes the secrets; `openpacs serve` runs with the stack's openpacs.toml and
environment, where only what Docker would provide is swapped for local equivalents: the
`postgres` host for a throw-away database on the local PostgreSQL, the `minio` endpoint for
moto's S3 server. What the compose README promises is then checked the way an operator would:
HTTPS /health with the stack's CA, DCMTK over TLS, the first administrator's login.
"""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.test_deploy_container import COMPOSE, localized, prepare_stack
from tests.support.dcmtk import run as run_dcmtk
from tests.support.dcmtk_peer import output
from tests.support.postgres import temporary_database
from tests.support.process import ServerProcess, free_port, serving
from tests.support.s3 import client, moto_server

HOST = "127.0.0.1"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path, int]]:
    compose: dict[str, Any] = yaml.safe_load((COMPOSE / "compose.yaml").read_text("utf-8"))
    folder = prepare_stack(tmp_path_factory.mktemp("stack-run") / "compose")
    config, environ = localized(compose, folder)
    port, tls_port, https_port = free_port(), free_port(), free_port()
    with temporary_database() as database, moto_server() as s3:
        client(s3).create_bucket(Bucket="openpacs")
        text = config.read_text(encoding="utf-8")
        for docker, local in (
            ('"postgresql://openpacs@postgres:5432/openpacs"', json.dumps(database)),
            ('"http://minio:9000"', json.dumps(s3)),
            ("port = 4242", f"port = {port}"),
            ("tls_port = 2762", f"tls_port = {tls_port}"),
            ("port = 8042", f"port = {https_port}"),
            ('host = "0.0.0.0"', f'host = "{HOST}"'),
        ):
            assert docker in text, docker
            text = text.replace(docker, local)
        config.write_text(text, encoding="utf-8")
        # The stack's credentials come from its s3_credentials file (AWS_SHARED_CREDENTIALS_FILE),
        # never from keys the test process may hold in its environment.
        environ |= {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}
        environ["OPENPACS_DICOM__WORKERS"] = "1"  # one process: quicker to start on a busy box
        with serving(config, port=port, log_dir=folder, cwd=folder, env=environ) as server:
            server.wait_for_log("service=https")
            yield server, folder / "secrets", https_port
            server.terminate()
            assert server.wait_exit(60) == 0, server.diagnostics()


def https(secrets: Path, port: int, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """A request from a client that trusts the stack's CA, by the name it was made for."""
    context = ssl.create_default_context(cafile=str(secrets / "ca.pem"))
    connection = http.client.HTTPSConnection("localhost", port, timeout=15, context=context)
    headers = {"X-Requested-With": "XMLHttpRequest"}
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else None
    finally:
        connection.close()


def test_https_health_with_the_stacks_ca(stack: tuple[ServerProcess, Path, int]) -> None:
    _, secrets, port = stack
    assert https(secrets, port, "GET", "/health") == (200, {"status": "ok"})


def test_the_first_administrator_logs_in_with_the_secret_file(
    stack: tuple[ServerProcess, Path, int],
) -> None:
    _, secrets, port = stack
    password = (secrets / "admin_password").read_text(encoding="utf-8").strip()
    status, body = https(secrets, port, "POST", "/api/session",
                         {"username": "admin", "password": password})  # fmt: skip
    assert status == 200, body
    assert body["role"] == "admin"
    status, body = https(secrets, port, "POST", "/api/session",
                         {"username": "admin", "password": password + "x"})  # fmt: skip
    assert status == 401, body


@pytest.mark.dcmtk
def test_dcmtk_echo_over_tls_as_the_compose_readme_says(
    stack: tuple[ServerProcess, Path, int],
) -> None:
    server, secrets, _ = stack
    settings_text = (secrets.parent / "openpacs.local.toml").read_text(encoding="utf-8")
    tls_port = int(settings_text.split("tls_port = ", 1)[1].split()[0])
    result = run_dcmtk("echoscu", "-aec", "OPENPACS", "+tla", "+cf", str(secrets / "ca.pem"),
                       "localhost", str(tls_port), timeout=30)  # fmt: skip
    assert result.returncode == 0, output(result) + server.stderr()


def test_nothing_secret_reaches_the_log(stack: tuple[ServerProcess, Path, int]) -> None:
    server, secrets, _ = stack
    log = server.stderr()
    for name in ("db_password", "admin_password"):
        assert (secrets / name).read_text(encoding="utf-8").strip() not in log
    secret_key = (secrets / "s3_credentials").read_text().split("aws_secret_access_key = ")[1]
    assert secret_key.strip() not in log
