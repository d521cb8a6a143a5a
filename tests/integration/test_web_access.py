"""Every route but /health and the login refuses anonymous and wrong credentials with 401
(429 once wrong passwords are throttled; routes are taken from the application, so a new one
cannot escape); roles hold; tokens revoke. Throttling: test_login_throttle."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import scu
from tests.support.corpus import synthetic_ct_series
from tests.support.web import WebNode, running_web_node

PUBLIC = {("GET", "/health"), ("POST", "/api/session")} | {
    ("GET", f"/api/oidc{path}") for path in ("", "/login", "/callback", "/logout")
}
UID = "1.2.3.4"


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebNode]:
    with running_web_node(tmp_path_factory.mktemp("access")) as node:
        yield node


def _routes(web: WebNode) -> list[tuple[str, str]]:
    """(method, concrete path) of every route the application serves."""
    app = web.app
    routes = [
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    ]
    routes += [("GET", app.openapi_url), ("GET", app.docs_url)]
    concrete = []
    for method, path in routes:
        path = re.sub(r"\{job_id\}", "0" * 32, path)
        path = re.sub(r"\{token_id\}", "0" * 16, path)
        concrete.append((method, re.sub(r"\{[^}]+\}", UID, path)))
    return concrete


def test_the_route_list_covers_the_api(web: WebNode) -> None:
    routes = set(_routes(web))
    assert ("GET", "/api/studies") in routes
    assert ("DELETE", f"/api/series/{UID}") in routes
    assert ("GET", "/api/openapi.json") in routes
    assert len(routes) > 30


def _check_every_route(web: WebNode, auth: object) -> None:
    headers = {"Authorization": "Bearer opt_not-a-token"} if auth == "bearer" else {}
    basic = auth if isinstance(auth, tuple) else None
    refused = []
    for method, path in _routes(web):
        if (method, path) in PUBLIC:
            continue
        response = httpx.request(
            method, f"{web.url}{path}", auth=basic, headers=headers, json={}, timeout=30
        )
        challenged = response.status_code == 401 and "www-authenticate" in response.headers
        # Past a few wrong passwords from this address: refused unchecked (test_login_throttle).
        throttled = basic and response.status_code == 429 and "retry-after" in response.headers
        if not (challenged or throttled):
            refused.append((method, path, response.status_code))
    assert refused == []


@pytest.mark.parametrize("auth", [None, "bearer"], ids=["anonymous", "unknown-token"])
def test_every_route_but_health_and_login_needs_credentials(web: WebNode, auth: object) -> None:
    _check_every_route(web, auth)


def test_every_route_refuses_a_wrong_password(tmp_path: Path) -> None:
    """On a node of its own: the failures throttle this peer, which other tests share."""
    with running_web_node(tmp_path) as web:
        _check_every_route(web, ("admin", "wrong-password"))


def test_roles_limit_what_users_may_do(web: WebNode) -> None:
    series = synthetic_ct_series(1, rows=8, columns=8, patient_id="ROLES")
    assert [s.Status for s in scu.store(web.dicom.port, series)] == [0]
    study = str(series[0].StudyInstanceUID)
    reader = ("reader", web.add_user("reader", "user"))
    uploader = ("uploader", web.add_user("uploader", "uploader"))
    with web.client(auth=reader) as client:
        assert client.get("/api/studies").status_code == 200
        assert client.get(f"/api/studies/{study}/archive").status_code == 200
        assert client.delete(f"/api/studies/{study}").status_code == 403
        assert client.get("/api/users").status_code == 403
        assert (
            client.post("/api/remotes", json={"aet": "X", "host": "h", "port": 1}).status_code
            == 403
        )
    with web.client(auth=uploader) as client:
        for path in ("/api/studies", f"/api/studies/{study}", "/api/statistics", "/api/audit"):
            response = client.get(path)
            assert response.status_code == 403, path
            assert (
                response.json()["detail"]
                == f"the uploader role may not {'admin' if 'audit' in path else 'read'}"
            )
        assert client.get(f"/api/instances/{series[0].SOPInstanceUID}/file").status_code == 403
    assert web.archive.totals().studies >= 1


def test_tokens_authenticate_until_revoked(web: WebNode) -> None:
    password = web.add_user("scripter", "user")
    with web.client(auth=("scripter", password)) as client:
        created = client.post("/api/tokens", json={"name": "nightly"})
        assert created.status_code == 201
        token, token_id = created.json()["token"], created.json()["token_id"]
        assert [t["name"] for t in client.get("/api/tokens").json()] == ["nightly"]
    bearer = {"Authorization": f"Bearer {token}"}
    me = httpx.get(f"{web.url}/api/session", headers=bearer)
    assert me.json() == {"username": "scripter", "role": "user", "sso": False}
    revoke = httpx.delete(f"{web.url}/api/tokens/{token_id}", headers=bearer)
    assert revoke.status_code == 204
    after = httpx.get(f"{web.url}/api/session", headers=bearer)
    assert after.status_code == 401
    assert "token" in after.json()["detail"]


def test_expired_tokens_are_refused(web: WebNode) -> None:
    secret, _token = web.app.state.authenticator.create_token("admin", "old", -1.0)
    response = httpx.get(f"{web.url}/api/session", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 401
