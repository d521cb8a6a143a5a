"""The compose stack's openpacs configuration, run for real without Docker.

make-secrets.sh makes the secrets; `openpacs serve` runs with the stack's openpacs.toml and
environment, where only what Docker would provide is swapped for local equivalents: the
`postgres` service for a throw-away PostgreSQL server with the stack's certificate, its
pg_hba.conf (TLS only) and its database password; the `minio` endpoint for moto's S3 server
behind nginx serving HTTPS with the stack's MinIO certificate. openpacs verifies both against
the stack's CA, as in the stack. What the compose README promises is then checked the way an
operator would: HTTPS /health with the stack's CA, DCMTK over TLS (echo, store, find), the
first administrator's login.
"""

from __future__ import annotations

import http.client
import json
import re
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.test_deploy_container import COMPOSE, localized, prepare_stack
from tests.support.corpus import synthetic_ct_series, write_part10
from tests.support.dcmtk import run as run_dcmtk
from tests.support.dcmtk_peer import output
from tests.support.nginx import nginx
from tests.support.pg_cluster import Tls, password_cluster
from tests.support.process import ServerProcess, free_port, serving
from tests.support.s3 import client, moto_server

HOST = "127.0.0.1"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path, int]]:
    compose: dict[str, Any] = yaml.safe_load((COMPOSE / "compose.yaml").read_text("utf-8"))
    with running_stack(tmp_path_factory.mktemp("stack-run") / "compose", compose) as running:
        yield running


@contextmanager
def running_stack(
    folder: Path, compose: dict[str, Any], https_port: int | None = None
) -> Iterator[tuple[ServerProcess, Path, int]]:
    """openpacs serving the stack `compose` describes (compose.yaml, perhaps with an override
    merged in) from a copy of deploy/compose in `folder`: (server, secrets folder, HTTPS port)."""
    folder = prepare_stack(folder)
    config, environ = localized(compose, folder)
    port, tls_port = free_port(), free_port()
    https_port = https_port or free_port()
    secrets = folder / "secrets"
    tls = Tls(secrets / "postgres" / "server.pem", secrets / "postgres" / "server.key",
              COMPOSE / "pg_hba.conf")  # fmt: skip
    password = (secrets / "db_password").read_text(encoding="utf-8").strip()
    with (
        password_cluster(tls) as cluster,
        moto_server() as s3,
        nginx(folder / "minio-tls", s3, tls=(secrets / "minio" / "server.pem",
                                              secrets / "minio" / "server.key")) as s3_port,
    ):  # fmt: skip
        cluster.execute(
            f"CREATE ROLE openpacs LOGIN PASSWORD '{password}'",
            "CREATE DATABASE openpacs OWNER openpacs",
        )
        client(s3).create_bucket(Bucket="openpacs")
        text = config.read_text(encoding="utf-8")
        for docker, local in (
            # the service's name stays (verify-full checks it); only its address is local
            ("@postgres:5432/openpacs?", f"@postgres:{cluster.port}/openpacs?hostaddr={HOST}&"),
            ('"https://minio:9000"', json.dumps(f"https://localhost:{s3_port}")),
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


@pytest.mark.dcmtk
def test_a_study_is_stored_and_found_over_tls_through_tls_backends(
    stack: tuple[ServerProcess, Path, int], tmp_path: Path
) -> None:
    """C-STORE and C-FIND over DICOM TLS: the index is the TLS-only PostgreSQL, the images go
    to S3 over HTTPS; both verified against the stack's CA."""
    server, secrets, port = stack
    settings_text = (secrets.parent / "openpacs.local.toml").read_text(encoding="utf-8")
    tls_port = int(settings_text.split("tls_port = ", 1)[1].split()[0])
    series = synthetic_ct_series(2, rows=16, columns=16)
    files = [str(write_part10(ds, tmp_path / f"{i}.dcm")) for i, ds in enumerate(series)]
    tls = ["-aec", "OPENPACS", "+tla", "+cf", str(secrets / "ca.pem")]
    stored = run_dcmtk("storescu", *tls, "localhost", str(tls_port), *files, timeout=60)
    assert stored.returncode == 0, output(stored) + server.stderr()
    study = str(series[0].StudyInstanceUID)
    found = run_dcmtk("findscu", *tls, "-S", "-k", "QueryRetrieveLevel=STUDY", "-k",
                      f"StudyInstanceUID={study}", "-k", "NumberOfStudyRelatedInstances",
                      "localhost", str(tls_port), timeout=60)  # fmt: skip
    assert found.returncode == 0, output(found)
    assert "NumberOfStudyRelatedInstances" in output(found)
    assert re.search(r"IS \[2 ?\]\s+#.*NumberOfStudyRelatedInstances", output(found))
    # and back over HTTPS, with curl as the README does: the images come out of S3
    password = (secrets / "admin_password").read_text(encoding="utf-8").strip()
    url = f"https://localhost:{port}/dicom-web/studies/{study}/series/{series[0].SeriesInstanceUID}"
    fetched = subprocess.run(
        ["curl", "-fsS", "--cacert", str(secrets / "ca.pem"), "-u", f"admin:{password}",
         "-H", 'Accept: multipart/related; type="application/dicom"', "-o",
         str(tmp_path / "series.multipart"), url],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert fetched.returncode == 0, fetched.stderr
    body = (tmp_path / "series.multipart").read_bytes()
    assert body.count(b"DICM") == 2


def test_postgresql_refuses_a_connection_without_tls(
    stack: tuple[ServerProcess, Path, int],
) -> None:
    """The stack's pg_hba.conf admits TLS only: the same password over plain TCP is refused."""
    import psycopg

    _, secrets, _ = stack
    settings_text = (secrets.parent / "openpacs.local.toml").read_text(encoding="utf-8")
    port = int(settings_text.split("@postgres:", 1)[1].split("/", 1)[0])
    password = (secrets / "db_password").read_text(encoding="utf-8").strip()
    with pytest.raises(psycopg.OperationalError, match=r"rejects connection|no encryption"):
        psycopg.connect(host=HOST, port=port, user="openpacs", password=password,
                        dbname="openpacs", sslmode="disable", connect_timeout=10)  # fmt: skip
    verified = {"sslmode": "verify-full", "sslrootcert": str(secrets / "ca.pem")}
    with psycopg.connect(host="postgres", hostaddr=HOST, port=port, user="openpacs",
                         password=password, dbname="openpacs", connect_timeout=10,
                         **verified) as connection:  # fmt: skip
        assert connection.info.pgconn.ssl_in_use
