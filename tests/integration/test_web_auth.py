"""Authentication of the HTTP front door against a real server on a loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.backends import Backend
from tests.support.web import WebNode, running_web_node

XHR = {"X-Requested-With": "XMLHttpRequest"}


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebNode]:
    with running_web_node(tmp_path_factory.mktemp("web")) as node:
        yield node


def test_health_needs_no_credentials_and_carries_security_headers(web: WebNode) -> None:
    response = httpx.get(f"{web.url}/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "strict-transport-security" not in response.headers  # plain HTTP


def test_anonymous_gets_both_challenges_and_the_ui_only_bearer(web: WebNode) -> None:
    response = httpx.get(f"{web.url}/api/session")
    assert response.status_code == 401
    assert response.json() == {"detail": "authentication required"}
    challenge = response.headers["www-authenticate"]
    assert 'Basic realm="openpacs"' in challenge
    assert 'Bearer realm="openpacs"' in challenge
    ui = httpx.get(f"{web.url}/api/session", headers=XHR)
    assert ui.status_code == 401
    assert ui.headers["www-authenticate"] == 'Bearer realm="openpacs"'


@pytest.mark.parametrize("mode", ["cors", "no-cors", "same-origin"])
def test_a_page_script_is_offered_no_basic_login(web: WebNode, mode: str) -> None:
    """Fetch Metadata: a browser marks a script's or a subresource's request with its mode; a
    Basic challenge there opens the browser's login dialog over the page (OHIF on the same
    origin behind a proxy, with an expired token). A navigation is still offered Basic."""
    for auth in (None, ("admin", "not-the-password")):
        response = httpx.get(
            f"{web.url}/dicom-web/studies", auth=auth, headers={"Sec-Fetch-Mode": mode}
        )
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer realm="openpacs"'
    opened = httpx.get(f"{web.url}/dicom-web/studies", headers={"Sec-Fetch-Mode": "navigate"})
    assert 'Basic realm="openpacs"' in opened.headers["www-authenticate"]


def test_basic_authentication(web: WebNode) -> None:
    response = httpx.get(f"{web.url}/api/session", auth=web.admin)
    assert response.status_code == 200
    assert response.json() == {"username": "admin", "role": "admin", "sso": False}
    wrong = httpx.get(f"{web.url}/api/session", auth=("admin", "not-the-password"))
    assert wrong.status_code == 401
    assert "Basic" in wrong.headers["www-authenticate"]


def test_session_login_cookie_csrf_guard_and_logout(web: WebNode) -> None:
    with web.client(auth=None) as client:
        login = client.post(
            "/api/session", json={"username": "admin", "password": web.password}, headers=XHR
        )
        assert login.status_code == 200
        assert login.json() == {"username": "admin", "role": "admin", "sso": False}
        cookie = login.headers["set-cookie"].lower()
        assert "openpacs_session=" in cookie
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        assert client.get("/api/session").json()["username"] == "admin"
        # A state-changing request on the cookie alone, as a cross-site form would send it.
        assert client.delete("/api/session").status_code == 403
        assert client.delete("/api/session", headers=XHR).status_code == 204
        assert client.get("/api/session").status_code == 401


def test_login_with_a_wrong_password_is_refused(web: WebNode) -> None:
    web.add_user("mallory-target", "user", "right-password-1")
    response = httpx.post(
        f"{web.url}/api/session", json={"username": "mallory-target", "password": "wrong"}
    )
    assert response.status_code == 401
    assert response.json() == {"detail": "wrong user name or password"}


def test_sessions_live_in_the_database(tmp_path: Path, backend: Backend) -> None:
    """A cookie from one server works on a second server sharing the database, and a logout
    on the second ends it on the first."""
    with running_web_node(tmp_path / "a", backend=backend) as first:
        with first.client(auth=None) as client:
            login = client.post(
                "/api/session", json={"username": "admin", "password": first.password}
            )
            cookie = login.cookies["openpacs_session"]
        second_settings = {"database": {"url": first.settings.database.url}}
        with running_web_node(tmp_path / "b", **second_settings) as second:
            response = httpx.get(f"{second.url}/api/session", cookies={"openpacs_session": cookie})
            assert response.status_code == 200
            assert response.json()["username"] == "admin"
            logout = httpx.delete(
                f"{second.url}/api/session",
                cookies={"openpacs_session": cookie},
                headers=XHR,
            )
            assert logout.status_code == 204
        gone = httpx.get(f"{first.url}/api/session", cookies={"openpacs_session": cookie})
        assert gone.status_code == 401
