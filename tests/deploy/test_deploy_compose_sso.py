"""The compose stack's single sign-on example (compose.sso.yaml), run for real without Docker.

The override is merged into compose.yaml as `docker compose -f compose.yaml -f
compose.sso.yaml` would merge it, and the stack runs as tests/deploy/test_deploy_compose_run.py
runs it; the `idp` service is the example's own provider (deploy/compose/idp: provider.mjs
and provider.json) run by node with the oidc-provider the image's lock file names. Only the
addresses change: the issuer and openpacs' callback get the test's ports. Then, as a user
would: the provider's discovery, openpacs announcing single sign-on, and logins through the
provider's page with the test's HTTP client, trusting the stack's CA.
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.deploy.test_deploy_compose_run import HOST, running_stack
from tests.deploy.test_deploy_container import COMPOSE
from tests.integration.test_oidc import _at_provider
from tests.support.oidc_provider import installed_module
from tests.support.process import ServerProcess, free_port

OVERRIDE = COMPOSE / "compose.sso.yaml"
IDP = COMPOSE / "idp"
_START_TIMEOUT = 30.0


def merged() -> dict[str, Any]:
    """compose.yaml with compose.sso.yaml merged in (maps merged, services added)."""
    stack: dict[str, Any] = yaml.safe_load((COMPOSE / "compose.yaml").read_text("utf-8"))
    override: dict[str, Any] = yaml.safe_load(OVERRIDE.read_text("utf-8"))
    for name, service in override["services"].items():
        target = stack["services"].setdefault(name, {})
        for key, value in service.items():
            if isinstance(value, dict) and isinstance(target.get(key), dict):
                target[key] = {**target[key], **value}
            else:
                target[key] = value
    for section in ("configs", "secrets", "volumes"):
        stack.setdefault(section, {}).update(override.get(section, {}))
    return stack


@contextmanager
def running_idp(folder: Path, config: dict[str, Any]) -> Iterator[subprocess.Popen[bytes]]:
    """deploy/compose/idp's provider.mjs under node, with oidc-provider from the tests' install
    (the same packages: see test_the_idp_image_installs_what_the_tests_run)."""
    shutil.copytree(IDP, folder)
    (folder / "node_modules").symlink_to(installed_module().parents[2])
    (folder / "provider.json").write_text(json.dumps(config), encoding="utf-8")
    log = (folder / "provider.log").open("wb")
    process = subprocess.Popen(
        ["node", str(folder / "provider.mjs"), str(folder / "provider.json")],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=folder,
    )  # fmt: skip
    log.close()
    url = f"http://{HOST}:{config['port']}/.well-known/openid-configuration"
    try:
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            assert process.poll() is None, (folder / "provider.log").read_text()
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (folder / "provider.log").read_text()
            time.sleep(0.2)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def sso(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServerProcess, Path, int, str]]:
    folder = tmp_path_factory.mktemp("stack-sso")
    compose = merged()
    idp_port, https_port = free_port(), free_port()
    issuer = f"http://{HOST}:{idp_port}"
    portal = f"https://localhost:{https_port}"
    # What the example names by its compose addresses, at the test's own.
    environ = compose["services"]["openpacs"]["environment"]
    assert environ["OPENPACS_AUTH__OIDC__ISSUER"] == "http://idp.localhost:9090"
    assert (
        environ["OPENPACS_AUTH__OIDC__REDIRECT_URI"] == "https://localhost:8443/api/oidc/callback"
    )
    environ["OPENPACS_AUTH__OIDC__ISSUER"] = issuer
    environ["OPENPACS_AUTH__OIDC__REDIRECT_URI"] = f"{portal}/api/oidc/callback"
    config = json.loads((IDP / "provider.json").read_text(encoding="utf-8"))
    assert config["issuer"] == "http://idp.localhost:9090"
    (client,) = config["clients"]
    assert client["redirect_uris"] == ["https://localhost:8443/api/oidc/callback"]
    config |= {"issuer": issuer, "host": HOST, "port": idp_port}
    client["redirect_uris"] = [f"{portal}/api/oidc/callback"]
    client["post_logout_redirect_uris"] = [f"{portal}/"]
    with (
        running_idp(folder / "idp", config),
        running_stack(folder / "compose", compose, https_port) as (server, secrets, port),
    ):
        yield server, secrets, port, issuer


def browser(secrets: Path, port: int) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(secrets / "ca.pem"))
    return httpx.Client(
        base_url=f"https://localhost:{port}", verify=context, follow_redirects=False, timeout=30
    )


def login(secrets: Path, port: int, username: str) -> tuple[httpx.Client, httpx.Response]:
    client = browser(secrets, port)
    start = client.get("/api/oidc/login")
    assert start.status_code == 302, start.text
    callback = _at_provider(client, start.headers["location"], username)
    return client, client.get(callback)


def session(client: httpx.Client) -> httpx.Response:
    return client.get("/api/session", headers={"X-Requested-With": "XMLHttpRequest"})


def test_the_override_adds_the_provider_and_points_openpacs_at_it() -> None:
    compose = merged()
    idp = compose["services"]["idp"]
    assert idp["ports"] == ["127.0.0.1:9090:9090"]  # this host's browsers only
    assert idp["networks"]["default"]["aliases"] == ["idp.localhost"]
    assert idp["read_only"] is True
    assert idp["cap_drop"] == ["ALL"]
    openpacs = compose["services"]["openpacs"]
    assert openpacs["depends_on"]["idp"] == {"condition": "service_healthy"}
    assert "postgres" in openpacs["depends_on"]  # merged, not replaced
    environ = openpacs["environment"]
    assert "OPENPACS_DATABASE__PASSWORD_FILE" in environ
    assert "OPENPACS_AUTH__OIDC__CLIENT_SECRET_FILE" not in environ  # a public client
    (client,) = json.loads((IDP / "provider.json").read_text(encoding="utf-8"))["clients"]
    assert client["client_id"] == environ["OPENPACS_AUTH__OIDC__CLIENT_ID"]
    assert client["token_endpoint_auth_method"] == "none"
    assert compose["configs"]["idp_config"] == {"file": "./idp/provider.json"}


def test_the_idp_image_installs_what_the_tests_run() -> None:
    """The image's `npm ci` installs the packages the tests' provider runs (same lock)."""
    ours = json.loads((IDP / "package-lock.json").read_text(encoding="utf-8"))["packages"]
    tests = Path(__file__).resolve().parents[1] / "support" / "oidc" / "package-lock.json"
    theirs = json.loads(tests.read_text(encoding="utf-8"))["packages"]
    ours.pop(""), theirs.pop("")
    assert ours == theirs
    dockerfile = (IDP / "Dockerfile").read_text(encoding="utf-8")
    assert "npm ci" in dockerfile
    assert "USER node" in dockerfile


def test_discovery_names_the_issuer_openpacs_is_configured_with(
    sso: tuple[ServerProcess, Path, int, str],
) -> None:
    _server, secrets, port, issuer = sso
    document = httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=30).json()
    assert document["issuer"] == issuer
    assert "S256" in document["code_challenge_methods_supported"]
    assert "none" in document["token_endpoint_auth_methods_supported"]
    with browser(secrets, port) as client:
        assert client.get("/api/oidc").json() == {"enabled": True}
        start = client.get("/api/oidc/login")
    location = start.headers["location"]
    assert location.startswith(document["authorization_endpoint"] + "?")
    query = urllib.parse.parse_qs(location.split("?", 1)[1])
    assert query["redirect_uri"] == [f"https://localhost:{port}/api/oidc/callback"]
    assert query["code_challenge_method"] == ["S256"]


@pytest.mark.parametrize(("username", "role"), [("alice", "admin"), ("bob", "user")])
def test_a_login_through_the_provider_opens_a_session(
    sso: tuple[ServerProcess, Path, int, str], username: str, role: str
) -> None:
    _server, secrets, port, _issuer = sso
    client, response = login(secrets, port, username)
    with closing(client):
        assert response.status_code == 303, response.text
        assert response.headers["location"] == "/"
        assert session(client).json() == {"username": username, "role": role, "sso": True}


def test_an_account_without_a_mapped_group_is_refused(
    sso: tuple[ServerProcess, Path, int, str],
) -> None:
    _server, secrets, port, _issuer = sso
    client, response = login(secrets, port, "carol")
    with closing(client):
        assert response.status_code == 303
        assert "sso_error" in response.headers["location"]
        assert session(client).status_code == 401


def test_the_first_administrator_still_logs_in_locally(
    sso: tuple[ServerProcess, Path, int, str],
) -> None:
    _server, secrets, port, _issuer = sso
    password = (secrets / "admin_password").read_text(encoding="utf-8").strip()
    with browser(secrets, port) as client:
        response = client.post(
            "/api/session",
            json={"username": "admin", "password": password},
            headers={"X-Requested-With": "XMLHttpRequest"},
        )
    assert response.status_code == 200, response.text
    assert response.json()["role"] == "admin"
