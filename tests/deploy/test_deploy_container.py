"""The container image recipe and the compose stack, checked without a Docker engine.

The Dockerfile is read instruction by instruction; its HEALTHCHECK command is run for real
against a local /health; the compose file is read as YAML; make-secrets.sh runs for real
(with `openpacs certs` from this environment) and the configuration the stack gives openpacs
is loaded by openpacs' own `load_settings`, with every /run/secrets path pointing at the file
make-secrets.sh wrote.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from openpacs.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose"
SECRETISH = re.compile(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY|CREDENTIAL|PRIVATE", re.IGNORECASE)

# --- the Dockerfile -------------------------------------------------------------------------


def instructions(path: Path) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction: continuations joined, comments dropped."""
    logical: list[str] = []
    current = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("#") and not current:
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        if current.strip():
            logical.append(current.strip())
        current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in logical]


def stages(path: Path) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for keyword, args in instructions(path):
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, args))
    return result


@pytest.fixture(scope="module")
def dockerfile() -> list[list[tuple[str, str]]]:
    return stages(DEPLOY / "Dockerfile")


def only(stage: list[tuple[str, str]], keyword: str) -> list[str]:
    return [args for key, args in stage if key == keyword]


def test_the_wheel_is_built_in_a_builder_stage(dockerfile: list[list[tuple[str, str]]]) -> None:
    builder, final = dockerfile[0], dockerfile[-1]
    assert len(dockerfile) >= 2
    assert only(builder, "FROM")[0].endswith(" AS builder")
    assert any("pip wheel" in run for run in only(builder, "RUN"))
    assert any(copy.startswith("--from=builder ") for copy in only(final, "COPY"))
    # Both stages start from BASE_IMAGE: Debian's slim image, or the same release made with
    # mmdebstrap (deploy/image/make-base.sh), which CI builds on (tests/image).
    for stage in dockerfile:
        assert only(stage, "FROM")[0].split()[0] == "${BASE_IMAGE}"
    preamble = instructions(DEPLOY / "Dockerfile")
    arguments = [args for key, args in preamble if key == "ARG"]
    assert "BASE_IMAGE=debian:${DEBIAN_RELEASE}-slim" in arguments
    assert any(a.startswith("DEBIAN_RELEASE=") for a in arguments)


def test_the_final_stage_has_no_compiler_installer_or_cache(
    dockerfile: list[list[tuple[str, str]]],
) -> None:
    final = " ".join(only(dockerfile[-1], "RUN"))
    for word in ("gcc", "build-essential", "python3-venv", "python3-pip", "pip install",
                 "pip wheel"):  # fmt: skip
        assert word not in final
    installs = re.findall(r"apt-get install ([^&;]*)", final)
    assert all(set(i.split()) <= {"-y", "-qq", "--no-install-recommends", "python3",
                                  "ca-certificates"} for i in installs), installs  # fmt: skip
    assert "/root/.cache" in final
    assert "rm -rf /var/lib/apt/lists/*" in final


def test_the_process_runs_as_an_unprivileged_user(dockerfile: list[list[tuple[str, str]]]) -> None:
    final = dockerfile[-1]
    users = only(final, "USER")
    assert users, "no USER in the final stage"
    user = users[-1].split(":")[0]
    assert user not in ("0", "root")
    assert [key for key, _ in final].index("USER") < [key for key, _ in final].index("ENTRYPOINT")


def test_one_process_configured_by_file(dockerfile: list[list[tuple[str, str]]]) -> None:
    final = dockerfile[-1]
    command = json.loads(only(final, "ENTRYPOINT")[-1]) + json.loads(only(final, "CMD")[-1])
    assert command == ["openpacs", "serve", "--config", "/etc/openpacs/openpacs.toml"]
    for args in only(final, "ENV") + only(final, "ARG"):
        assert not SECRETISH.search(args), args


def test_oci_labels(dockerfile: list[list[tuple[str, str]]]) -> None:
    labels = " ".join(only(dockerfile[-1], "LABEL"))
    for name in ("title", "description", "licenses", "version", "revision", "source"):
        assert f"org.opencontainers.image.{name}=" in labels


def test_the_build_context_admits_only_what_the_copies_need(
    dockerfile: list[list[tuple[str, str]]],
) -> None:
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").split("\n")
    rules = [line.strip() for line in ignore if line.strip() and not line.startswith("#")]
    assert rules[0] == "*"
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    for stage in dockerfile:
        for copy in only(stage, "COPY"):
            if copy.startswith("--from="):
                continue
            *sources, _ = copy.split()
            for source in sources:
                assert source.rstrip("/") in allowed, source
                assert (ROOT / source).exists(), source


def test_the_images_default_configuration_loads(tmp_path: Path) -> None:
    settings = load_settings(DEPLOY / "openpacs.toml", environ={})
    assert settings.http.host == "0.0.0.0"
    assert settings.database.url.startswith("sqlite:////var/lib/openpacs/")
    assert str(settings.storage.folder_path).startswith("/var/lib/openpacs/")


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        code = self.status if self.path == "/health" else 404
        body = b'{"status": "ok"}'
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[http.server.HTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def healthcheck(dockerfile: list[list[tuple[str, str]]], url: str) -> int:
    """Run the image's HEALTHCHECK command (exec form) with this interpreter."""
    spec = only(dockerfile[-1], "HEALTHCHECK")[-1]
    assert "--interval=" in spec
    assert "--timeout=" in spec
    command = json.loads(spec.split(" CMD ", 1)[1])
    assert command[0] == "python"  # no curl in a slim image
    environ = {**os.environ, "OPENPACS_HEALTH_URL": url}
    run = subprocess.run([sys.executable, *command[1:]], env=environ, timeout=30, check=False,
                         capture_output=True)  # fmt: skip
    return run.returncode


def test_the_healthcheck_passes_on_200_and_fails_otherwise(
    dockerfile: list[list[tuple[str, str]]], health_server: http.server.HTTPServer
) -> None:
    server = health_server
    base = f"http://127.0.0.1:{server.server_address[1]}"
    default = [args for args in only(dockerfile[-1], "ENV") if "OPENPACS_HEALTH_URL=" in args]
    assert default
    assert "/health" in default[0]
    assert healthcheck(dockerfile, f"{base}/health") == 0
    _Health.status = 503
    try:
        assert healthcheck(dockerfile, f"{base}/health") != 0
    finally:
        _Health.status = 200
    assert healthcheck(dockerfile, f"{base}/elsewhere") != 0
    server.server_close()
    assert healthcheck(dockerfile, "http://127.0.0.1:9/health") != 0  # nothing listening


def test_the_healthcheck_speaks_https_to_its_own_self_signed_server(
    dockerfile: list[list[tuple[str, str]]], tmp_path: Path, compose_secrets: Path
) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(compose_secrets / "server.pem", compose_secrets / "server.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"https://127.0.0.1:{server.server_address[1]}/health"
        assert healthcheck(dockerfile, url) == 0
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- the compose stack ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((COMPOSE / "compose.yaml").read_text("utf-8"))
    return document


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(key): str(value) for key, value in env.items()}


def secret_names(service: dict[str, Any]) -> dict[str, str]:
    """Mount path under /run/secrets -> the top-level secret it comes from."""
    names: dict[str, str] = {}
    for entry in service.get("secrets", []):
        source = entry if isinstance(entry, str) else entry["source"]
        target = source if isinstance(entry, str) else entry.get("target", source)
        names[target if target.startswith("/") else f"/run/secrets/{target}"] = source
    return names


def test_the_stack_has_openpacs_postgresql_and_minio(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"openpacs", "postgres", "minio", "minio-init"} <= set(services)
    assert services["openpacs"]["build"]["dockerfile"] == "deploy/Dockerfile"
    assert (COMPOSE / services["openpacs"]["build"]["context"] / "deploy/Dockerfile").is_file()


def test_start_order_is_gated_on_health(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dependency, rule in service.get("depends_on", {}).items():
            assert rule["condition"] in ("service_healthy", "service_completed_successfully")
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], dependency
            assert dependency in services, (name, dependency)
    needs = services["openpacs"]["depends_on"]
    assert needs["postgres"]["condition"] == "service_healthy"
    assert needs["minio"]["condition"] == "service_healthy"
    assert needs["minio-init"]["condition"] == "service_completed_successfully"


def test_no_secret_is_an_environment_value(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        mounted = secret_names(service)
        for key, value in environment(service).items():
            if SECRETISH.search(key):
                assert key.endswith("_FILE"), (name, key)
                assert value in mounted, (name, key, value)
            if key.endswith("_FILE") and value.startswith("/run/secrets/"):
                assert value in mounted, (name, key)


def test_secrets_are_files_kept_out_of_git(compose: dict[str, Any]) -> None:
    secrets = compose["secrets"]
    assert secrets
    for name, secret in secrets.items():
        assert set(secret) == {"file"}, name
        assert secret["file"].startswith("./secrets/"), name
    assert "secrets/" in (COMPOSE / ".gitignore").read_text(encoding="utf-8").split()
    ignored = subprocess.run(["git", "check-ignore", "-q", str(COMPOSE / "secrets" / "x")],
                             cwd=ROOT, check=False)  # fmt: skip
    assert ignored.returncode == 0


def test_data_lives_in_named_volumes(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    for name, service in compose["services"].items():
        if "tools" in service.get("profiles", []):
            continue
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            assert source in declared, (name, volume)
    assert "openpacs-data" in declared
    assert any(v.startswith("postgres-data:") for v in compose["services"]["postgres"]["volumes"])


def test_openpacs_is_published_over_tls_and_locked_down(compose: dict[str, Any]) -> None:
    service = compose["services"]["openpacs"]
    ports = {port.rsplit(":", 1)[1]: port for port in service["ports"]}
    assert set(ports) == {"2762", "8042", "4242"}
    assert ports["4242"].startswith("127.0.0.1:")  # plain DICOM: this host only
    for other in ("postgres", "minio"):
        assert "ports" not in compose["services"][other]
    assert service["read_only"] is True
    assert service["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in service["security_opt"]
    assert environment(service)["OPENPACS_HEALTH_URL"].startswith("https://")


@pytest.fixture(scope="module")
def compose_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_stack(tmp_path_factory.mktemp("stack") / "compose")


def prepare_stack(folder: Path) -> Path:
    """deploy/compose copied to `folder`, then made ready by its own make-secrets.sh."""
    shutil.copytree(COMPOSE, folder, ignore=shutil.ignore_patterns("secrets"))
    openpacs = shutil.which("openpacs", path=str(Path(sys.executable).parent))
    assert openpacs, "the openpacs command is not installed beside this Python"
    environ = {**os.environ, "PATH": f"{Path(openpacs).parent}:{os.environ['PATH']}"}
    for _ in range(2):  # a second run keeps what the first made
        result = subprocess.run(["sh", str(folder / "make-secrets.sh"), "pacs.example.org"],
                                env=environ, capture_output=True, text=True, timeout=120,
                                check=False)  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        if _ == 0:
            first = _files(folder / "secrets")
    again = _files(folder / "secrets")
    for name in set(first) - {"server.pem", "server.key"}:
        assert again[name] == first[name], name
    return folder


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def compose_secrets(compose_copy: Path) -> Path:
    return compose_copy / "secrets"


def test_make_secrets_writes_every_secret_the_stack_mounts(
    compose: dict[str, Any], compose_secrets: Path
) -> None:
    for name, secret in compose["secrets"].items():
        path = compose_secrets.parent / secret["file"]
        assert path.is_file(), name
        assert path.stat().st_size > 0, name
    assert compose_secrets.stat().st_mode & 0o777 == 0o700
    assert (compose_secrets / "ca.key").stat().st_mode & 0o777 == 0o600
    password = (compose_secrets / "db_password").read_text().strip()
    assert len(password) >= 24
    assert password.isalnum()
    text = subprocess.run(["openssl", "x509", "-in", str(compose_secrets / "server.pem"),
                           "-noout", "-ext", "subjectAltName"], capture_output=True, text=True,
                          check=True, timeout=30).stdout  # fmt: skip
    assert "DNS:pacs.example.org" in text
    assert "DNS:localhost" in text


def test_openpacs_loads_the_configuration_the_stack_gives_it(
    compose: dict[str, Any], compose_copy: Path
) -> None:
    local_config, environ = localized(compose, compose_copy)

    settings = load_settings(local_config, environ=environ)

    assert settings.dicom.tls_port == 2762
    assert settings.http.tls_cert
    assert settings.http.host == "0.0.0.0"
    url = settings.database.sqlalchemy_url()
    assert (url.host, url.username, url.database) == ("postgres", "openpacs", "openpacs")
    assert url.password == (compose_copy / "secrets" / "db_password").read_text().strip()
    postgres = environment(compose["services"]["postgres"])
    assert (postgres["POSTGRES_USER"], postgres["POSTGRES_DB"]) == ("openpacs", "openpacs")
    assert settings.storage.s3_bucket == environment(compose["services"]["minio-init"])["BUCKET"]
    assert settings.storage.s3_endpoint == "https://minio:9000"
    assert url.query["sslmode"] == "verify-full"
    assert Path(str(url.query["sslrootcert"])) == compose_copy / "secrets" / "ca.pem"
    assert environ["AWS_CA_BUNDLE"] == str(compose_copy / "secrets" / "ca.pem")
    assert settings.auth.admin_password_file


def test_postgresql_and_minio_speak_tls_only_with_the_stacks_ca(
    compose: dict[str, Any], compose_secrets: Path
) -> None:
    """Issue 19, item 14: inside the stack too, openpacs reaches PostgreSQL and MinIO over
    TLS, verifying certificates from the stack's own CA by the services' names."""
    postgres = compose["services"]["postgres"]
    command = " ".join(postgres["command"])
    for option in ("ssl=on", "ssl_min_protocol_version=TLSv1.2",
                   "ssl_cert_file=/run/secrets/postgres_tls_cert",
                   "hba_file=/etc/postgresql/pg_hba.conf"):  # fmt: skip
        assert f"-c {option}" in command, option
    hba = [line.split() for line in (COMPOSE / "pg_hba.conf").read_text().splitlines()
           if line.strip() and not line.startswith("#")]  # fmt: skip
    assert hba == [
        ["local", "all", "all", "scram-sha-256"],
        ["hostssl", "all", "all", "all", "scram-sha-256"],
        ["host", "all", "all", "all", "reject"],
    ]
    minio = compose["services"]["minio"]
    assert minio["command"] == ["server", "/data", "--certs-dir", "/certs"]
    targets = {m["target"] for m in minio["secrets"] if isinstance(m, dict)}
    assert {"/certs/public.crt", "/certs/private.key", "/certs/CAs/ca.pem"} <= targets
    assert environment(minio)["MC_HOST_local"].startswith("https://")
    assert "https://minio:9000" in (COMPOSE / "minio-init.sh").read_text()
    for service, name in (("postgres", "postgres"), ("minio", "minio")):
        pem = compose_secrets / service / "server.pem"
        text = subprocess.run(["openssl", "verify", "-CAfile", str(compose_secrets / "ca.pem"),
                               str(pem)], capture_output=True, text=True, timeout=30,
                              check=False)  # fmt: skip
        assert text.returncode == 0, text.stdout + text.stderr
        names = subprocess.run(["openssl", "x509", "-in", str(pem), "-noout", "-ext",
                                "subjectAltName"], capture_output=True, text=True, check=True,
                               timeout=30).stdout  # fmt: skip
        assert f"DNS:{name}" in names


def localized(compose: dict[str, Any], stack: Path) -> tuple[Path, dict[str, str]]:
    """openpacs' configuration file and environment in the stack, with each /run/secrets path
    replaced by the file compose mounts there."""
    service = compose["services"]["openpacs"]
    mounts = {path: stack / compose["secrets"][name]["file"]
              for path, name in secret_names(service).items()}  # fmt: skip
    (config,) = service["configs"]
    assert config["target"] == "/etc/openpacs/openpacs.toml"
    text = (stack / compose["configs"][config["source"]]["file"]).read_text("utf-8")
    environ = environment(service)
    for path, local in mounts.items():
        text = text.replace(f'"{path}"', json.dumps(str(local))).replace(path, str(local))
        environ = {key: str(local) if value == path else value for key, value in environ.items()}
    assert "/run/secrets/" not in text, "the configuration names a secret the stack never mounts"
    local_config = stack / "openpacs.local.toml"
    local_config.write_text(text, encoding="utf-8")
    return local_config, environ
