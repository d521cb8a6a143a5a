"""Single sign-on against a real OpenID provider (panva's oidc-provider, run by node): the
authorization code flow with PKCE driven over HTTP through the provider's login page, the
role mapped from a claim at each login, provider access tokens as bearer tokens, and what must
be refused: a wrong state, a replayed code, an unmapped role, a local user's name, expired
tokens, a wrong audience or issuer, a tampered signature, a rotated-away key."""

from __future__ import annotations

import base64
import json
import re
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.support.oidc_provider import CLIENT_ID, OidcIdp, new_key, running_oidc_provider
from tests.support.process import free_port
from tests.support.web import WebNode, running_web_node

ROLES = ["pacs-admins=admin", "pacs-readers=user", "pacs-intake=uploader"]
ACCOUNTS = {
    "alice": {"groups": ["pacs-admins"]},
    "bob": {"groups": ["staff", "pacs-readers"]},
    "carol": {"groups": ["staff"]},
    "dave": {"groups": ["pacs-admins"]},
}


@pytest.fixture(scope="module")
def sso(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WebNode, OidcIdp]]:
    folder = tmp_path_factory.mktemp("oidc")
    secret = folder / "client-secret"
    from tests.support.oidc_provider import CLIENT_SECRET

    secret.write_text(CLIENT_SECRET + "\n", encoding="utf-8")
    port = free_port()
    oidc = {
        "issuer": f"http://127.0.0.1:{port}",
        "client_id": CLIENT_ID,
        "client_secret_file": str(secret),
        "scopes": "openid profile groups",
        "roles": ROLES,
        "audience": "openpacs-api",
        "clock_skew_seconds": 5,
    }
    with (
        running_web_node(folder / "node", auth={"oidc": oidc}) as web,
        running_oidc_provider(
            folder / "idp",
            port,
            redirect_uris=[f"{web.url}/api/oidc/callback"],
            post_logout_redirect_uris=[f"{web.url}/"],
            accounts=json.loads(json.dumps(ACCOUNTS)),
            robot_claims={"preferred_username": "robot", "groups": ["pacs-readers"]},
        ) as idp,
    ):
        yield web, idp


def _form(html: str) -> tuple[str, dict[str, str]]:
    action = re.search(r'<form[^>]*action="([^"]+)"', html)
    assert action, html[:2000]
    fields = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', html))
    return action.group(1), fields


def _start(client: httpx.Client) -> httpx.Response:
    """GET /api/oidc/login: the redirect to the provider."""
    response = client.get("/api/oidc/login")
    assert response.status_code == 302, response.text
    return response


def _at_provider(client: httpx.Client, location: str, username: str) -> str:
    """Log in at the provider's page; returns where it sends the browser back (the callback)."""
    response = client.get(location)
    for _ in range(10):  # the provider's redirects and its login page; bounded
        if response.status_code in (302, 303):
            target = urllib.parse.urljoin(str(response.url), response.headers["location"])
            if "/api/oidc/callback" in target:
                return target
            response = client.get(target)
            continue
        assert response.status_code == 200, response.text[:2000]
        action, fields = _form(response.text)
        if 'name="login"' in response.text:
            fields.update({"login": username, "password": "any"})
        response = client.post(urllib.parse.urljoin(str(response.url), action), data=fields)
    raise AssertionError("the provider never sent the browser back")


def _login(web: WebNode, username: str) -> tuple[httpx.Client, httpx.Response]:
    client = web.client(auth=None, follow_redirects=False)
    callback = _at_provider(client, _start(client).headers["location"], username)
    return client, client.get(callback)


def _sso_error(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith("/#/login?"), location
    return urllib.parse.parse_qs(location.split("?", 1)[1])["sso_error"][0]


def _who(client: httpx.Client) -> httpx.Response:
    return client.get("/api/session", headers={"X-Requested-With": "XMLHttpRequest"})


def test_sso_is_announced_and_starts_with_pkce_state_and_nonce(
    sso: tuple[WebNode, OidcIdp],
) -> None:
    web, idp = sso
    with web.client(auth=None, follow_redirects=False) as client:
        assert client.get("/api/oidc").json() == {"enabled": True}
        response = _start(client)
    location = response.headers["location"]
    assert location.startswith(f"{idp.issuer}/auth?")
    query = urllib.parse.parse_qs(location.split("?", 1)[1])
    assert query["code_challenge_method"] == ["S256"]
    assert query["client_id"] == [CLIENT_ID]
    assert query["redirect_uri"] == [f"{web.url}/api/oidc/callback"]
    assert len(query["state"][0]) >= 20
    assert len(query["nonce"][0]) >= 20
    cookie = response.headers["set-cookie"]
    assert "openpacs_oidc=" in cookie
    assert "HttpOnly" in cookie
    assert "Path=/api/oidc" in cookie


def test_a_provider_login_opens_a_session_with_the_mapped_role(
    sso: tuple[WebNode, OidcIdp],
) -> None:
    web, _idp = sso
    client, response = _login(web, "alice")
    with closing(client):
        assert response.status_code == 303
        assert response.headers["location"] == "/"
        assert _who(client).json() == {"username": "alice", "role": "admin", "sso": True}
        assert client.get("/api/users").status_code == 200  # an admin's route
    client, _response = _login(web, "bob")
    with closing(client):
        assert _who(client).json() == {"username": "bob", "role": "user", "sso": True}
        assert client.get("/api/users").status_code == 403
        assert client.get("/dicom-web/studies").status_code in (200, 204)
    user = web.archive.accounts.user("bob")
    assert user is not None
    assert user.groups == ("pacs-readers", "staff")  # for visibility rules naming groups
    with web.client() as admin:  # a provider user has no password: Basic never matches
        response = httpx.get(f"{web.url}/api/session", auth=("bob", user.password_hash))
        assert response.status_code == 401
        assert admin.get("/api/session").json()["username"] == "admin"  # local admin still works


def test_the_role_follows_the_claim_at_each_login(sso: tuple[WebNode, OidcIdp]) -> None:
    web, idp = sso
    _login(web, "dave")[0].close()
    assert web.archive.accounts.user("dave").role == "admin"  # type: ignore[union-attr]
    idp.config["accounts"]["dave"] = {"groups": ["pacs-intake"]}
    idp.restart()  # with the new claims
    client, _response = _login(web, "dave")
    with closing(client):
        assert _who(client).json()["role"] == "uploader"


def test_a_claim_without_a_mapped_role_is_refused(sso: tuple[WebNode, OidcIdp]) -> None:
    web, _idp = sso
    client, response = _login(web, "carol")
    with closing(client):
        assert "no openpacs role" in _sso_error(response)
        assert _who(client).status_code == 401
    assert web.archive.accounts.user("carol") is None


def test_a_local_user_is_not_taken_over_by_a_provider_login(sso: tuple[WebNode, OidcIdp]) -> None:
    web, idp = sso
    idp.config["accounts"]["erin"] = {"groups": ["pacs-admins"]}
    idp.restart()
    password = web.add_user("erin", "user")
    client, response = _login(web, "erin")
    with closing(client):
        assert "local user" in _sso_error(response)
        assert _who(client).status_code == 401
    user = web.archive.accounts.user("erin")
    assert user is not None
    assert user.role == "user"
    assert httpx.get(f"{web.url}/api/session", auth=("erin", password)).status_code == 200


def test_a_wrong_state_a_missing_login_and_a_replayed_code_are_refused(
    sso: tuple[WebNode, OidcIdp],
) -> None:
    web, _idp = sso
    client = web.client(auth=None, follow_redirects=False)
    with closing(client):
        callback = _at_provider(client, _start(client).headers["location"], "alice")
        forged = re.sub(r"state=[^&]+", "state=forged", callback)
        assert "state" in _sso_error(client.get(forged))
        assert _who(client).status_code == 401
    with web.client(auth=None, follow_redirects=False) as other:  # another browser: no cookie
        assert "no login in progress" in _sso_error(other.get(callback))
    client = web.client(auth=None, follow_redirects=False)
    with closing(client):
        callback = _at_provider(client, _start(client).headers["location"], "alice")
        login_cookie = client.cookies["openpacs_oidc"]
        assert client.get(callback).headers["location"] == "/"
    with web.client(auth=None, follow_redirects=False) as replay:  # the same code once more
        response = replay.get(callback, headers={"Cookie": f"openpacs_oidc={login_cookie}"})
        assert "refused the login" in _sso_error(response)
        assert "openpacs_session=" not in response.headers.get("set-cookie", "")
    with web.client(auth=None, follow_redirects=False) as client:
        assert "refused the login" in _sso_error(client.get("/api/oidc/callback?error=denied"))


def test_logout_ends_the_provider_session_too(sso: tuple[WebNode, OidcIdp]) -> None:
    web, idp = sso
    client, _response = _login(web, "alice")
    with closing(client):
        headers = {"X-Requested-With": "XMLHttpRequest"}
        assert client.delete("/api/session", headers=headers).status_code == 204
        response = client.get("/api/oidc/logout")
        assert response.status_code == 303
        location = response.headers["location"]
        assert location.startswith(f"{idp.issuer}/session/end?")
        query = urllib.parse.parse_qs(location.split("?", 1)[1])
        assert query["post_logout_redirect_uri"] == [f"{web.url}/"]
        assert "id_token_hint" in query
        assert _who(client).status_code == 401


# -- provider access tokens as bearer tokens -------------------------------------------------


def _bearer(web: WebNode, token: str, path: str = "/dicom-web/studies") -> httpx.Response:
    return httpx.get(f"{web.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _claims(idp: OidcIdp, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": idp.issuer,
        "aud": idp.audience,
        "sub": "robot",
        "preferred_username": "robot",
        "groups": ["pacs-readers"],
        "iat": now,
        "exp": now + 300,
    }
    claims.update(changes)
    return claims


def test_a_provider_access_token_is_accepted_as_bearer(sso: tuple[WebNode, OidcIdp]) -> None:
    web, idp = sso
    token = idp.client_credentials()
    assert _bearer(web, token).status_code in (200, 204)
    assert _bearer(web, token, "/api/session").json() == {
        "username": "robot",
        "role": "user",
        "sso": True,
    }
    assert _bearer(web, token, "/api/users").status_code == 403


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"exp": -60, "iat": -400}, "expired"),
        ({"aud": "another-service"}, "aud"),
        ({"iss": "http://127.0.0.1:1/evil"}, "iss"),
        ({"groups": ["staff"]}, "no openpacs role"),
    ],
    ids=["expired", "wrong-aud", "wrong-iss", "unmapped-role"],
)
def test_bad_access_tokens_are_refused(
    sso: tuple[WebNode, OidcIdp], changes: dict[str, Any], reason: str
) -> None:
    web, idp = sso
    now = int(time.time())
    for key in ("exp", "iat"):
        if key in changes:
            changes[key] += now
    assert _bearer(web, idp.sign(_claims(idp))).status_code in (200, 204)  # the control
    response = _bearer(web, idp.sign(_claims(idp, **changes)))
    assert response.status_code in (401, 403), response.text
    assert reason in response.json()["detail"]


def test_a_tampered_or_foreign_signature_is_refused(sso: tuple[WebNode, OidcIdp]) -> None:
    web, idp = sso
    token = idp.client_credentials()
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["groups"] = ["pacs-admins"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    response = _bearer(web, f"{header}.{forged}.{signature}", "/api/users")
    assert response.status_code == 401
    assert "signature" in response.json()["detail"]
    foreign, _jwk = new_key(idp.kid)  # the provider's key id, another key
    response = _bearer(web, idp.sign(_claims(idp), key=foreign))
    assert response.status_code == 401
    unsigned = jwt.encode(_claims(idp), key="", algorithm="none")
    assert _bearer(web, unsigned).status_code == 401
    hmac = jwt.encode(_claims(idp), key="x" * 32, algorithm="HS256", headers={"kid": idp.kid})
    assert _bearer(web, hmac).status_code == 401


def test_keys_rotated_at_the_provider_are_fetched_again(sso: tuple[WebNode, OidcIdp]) -> None:
    web, idp = sso
    old = idp.client_credentials()
    assert _bearer(web, old).status_code in (200, 204)
    idp.rotate_keys()
    new = idp.client_credentials()
    assert jwt.get_unverified_header(new)["kid"] != jwt.get_unverified_header(old)["kid"]
    deadline = time.monotonic() + 30  # JWKS fetches are spaced a few seconds apart
    status = 0
    while time.monotonic() < deadline:
        status = _bearer(web, new).status_code
        if status in (200, 204):
            break
        time.sleep(0.5)
    assert status in (200, 204)
    response = _bearer(web, old)  # its key is no longer published
    assert response.status_code == 401


def test_without_a_provider_jwts_are_unknown_tokens(tmp_path: Path) -> None:
    with running_web_node(tmp_path) as web:
        with web.client(auth=None) as client:
            assert client.get("/api/oidc/login").status_code == 404
        token = jwt.encode({"sub": "x"}, key="y" * 32, algorithm="HS256")
        response = _bearer(web, token)
        assert response.status_code == 401
        assert response.json()["detail"] == "unknown, expired or revoked token"
