"""The token request of the authorization code exchange, as it reaches a provider: a small
HTTP server on 127.0.0.1 stands for the provider's discovery and token endpoints and records
what openpacs sends. A public client names itself in the body and sends no Authorization
header; a confidential client uses Basic, or client_secret_post when discovery offers only
that; a refusal is a clear NotAuthenticated with the provider's reason."""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from openpacs.config import OidcSettings
from openpacs.errors import ConfigError, NotAuthenticated
from openpacs.web.auth.oidc import LoginRequest, OidcProvider


class Provider(ThreadingHTTPServer):
    methods: list[str] | None = None
    refuse = False
    requests: list[tuple[dict[str, str], dict[str, list[str]]]]


class Handler(BaseHTTPRequestHandler):
    server: Provider

    def do_GET(self) -> None:
        base = f"http://127.0.0.1:{self.server.server_port}"
        document: dict[str, Any] = {
            "issuer": base,
            "authorization_endpoint": f"{base}/auth",
            "token_endpoint": f"{base}/token",
            "jwks_uri": f"{base}/jwks",
        }
        if self.server.methods is not None:
            document["token_endpoint_auth_methods_supported"] = self.server.methods
        self._answer(200, document)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        headers = {key.lower(): value for key, value in self.headers.items()}
        self.server.requests.append((headers, urllib.parse.parse_qs(body)))
        if self.server.refuse:
            self._answer(401, {"error": "invalid_client", "error_description": "no such client"})
        else:
            self._answer(200, {"id_token": "header.claims.signature", "token_type": "Bearer"})

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def provider() -> Iterator[Provider]:
    server = Provider(("127.0.0.1", 0), Handler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def client(server: Provider, secret_file: Path | None) -> OidcProvider:
    return OidcProvider(
        OidcSettings(
            issuer=f"http://127.0.0.1:{server.server_port}",
            client_id="open pacs",  # a space: quoted in Basic, form-encoded in the body
            client_secret_file=str(secret_file) if secret_file else "",
            roles=["admins=admin"],
        )
    )


def exchange(oidc: OidcProvider, server: Provider) -> tuple[dict[str, str], dict[str, list[str]]]:
    login = LoginRequest.new()
    assert oidc.exchange("the-code", login, "https://pacs.example/api/oidc/callback")
    ((headers, form),) = server.requests
    assert form["code"] == ["the-code"]
    assert form["code_verifier"] == [login.verifier]  # PKCE, whatever the client kind
    assert form["grant_type"] == ["authorization_code"]
    return headers, form


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "client-secret"
    path.write_text("s3cret:with/odd chars\n", encoding="utf-8")
    return path


def test_a_public_client_names_itself_in_the_body_without_authorization(
    provider: Provider,
) -> None:
    oidc = client(provider, None)
    assert oidc.client_auth() == "none"
    headers, form = exchange(oidc, provider)
    assert "authorization" not in headers
    assert form["client_id"] == ["open pacs"]
    assert "client_secret" not in form


def test_a_confidential_client_uses_basic_by_default(provider: Provider, secret: Path) -> None:
    for methods in (None, ["client_secret_basic", "client_secret_post"]):
        provider.methods, provider.requests = methods, []
        oidc = client(provider, secret)
        assert oidc.client_auth() == "client_secret_basic"
        headers, form = exchange(oidc, provider)
        scheme, value = headers["authorization"].split(" ", 1)
        assert scheme == "Basic"
        user, password = base64.b64decode(value).decode().split(":", 1)
        assert urllib.parse.unquote(user) == "open pacs"
        assert urllib.parse.unquote(password) == "s3cret:with/odd chars"
        assert "client_secret" not in form


def test_client_secret_post_when_the_provider_offers_only_that(
    provider: Provider, secret: Path
) -> None:
    provider.methods = ["client_secret_post", "private_key_jwt"]
    oidc = client(provider, secret)
    assert oidc.client_auth() == "client_secret_post"
    headers, form = exchange(oidc, provider)
    assert "authorization" not in headers
    assert form["client_id"] == ["open pacs"]
    assert form["client_secret"] == ["s3cret:with/odd chars"]


def test_a_refused_exchange_says_why(provider: Provider) -> None:
    provider.refuse = True
    with pytest.raises(NotAuthenticated, match="refused the login: no such client"):
        client(provider, None).exchange("code", LoginRequest.new(), "https://pacs.example/cb")


def test_an_empty_secret_file_is_a_configuration_error_not_a_public_client(
    provider: Provider, tmp_path: Path
) -> None:
    empty = tmp_path / "client-secret"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="client_secret_file: the file is empty"):
        client(provider, empty)
