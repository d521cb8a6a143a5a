"""How openpacs authenticates at the provider's token endpoint, against the real provider
(panva's oidc-provider): a public client (no secret: `none`, the client id in the body, PKCE), and a
confidential client at a provider whose discovery offers only `client_secret_post`.
(`client_secret_basic`, the default, is what tests/integration/test_oidc.py runs.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import closing

import httpx
import pytest

from openpacs.web.auth.oidc import OidcProvider
from tests.integration.test_oidc import ACCOUNTS, ROLES, _login, _who
from tests.support.oidc_provider import CLIENT_ID, CLIENT_SECRET, OidcIdp, running_oidc_provider
from tests.support.process import free_port
from tests.support.web import WebNode, running_web_node

# method -> (openpacs has a secret, the client's registration, the provider's methods)
CASES = {
    "none": (False, {"client_secret": None, "token_endpoint_auth_method": "none"}, None),
    "client_secret_post": (
        True,
        {"token_endpoint_auth_method": "client_secret_post"},
        ["client_secret_post", "none"],
    ),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def sso(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[WebNode, OidcIdp, str]]:
    method: str = request.param
    with_secret, registration, offered = CASES[method]
    folder = tmp_path_factory.mktemp(f"oidc-{method}")
    port = free_port()
    oidc = {
        "issuer": f"http://127.0.0.1:{port}",
        "client_id": CLIENT_ID,
        "scopes": "openid profile groups",
        "roles": ROLES,
    }
    if with_secret:
        secret = folder / "client-secret"
        secret.write_text(CLIENT_SECRET + "\n", encoding="utf-8")
        oidc["client_secret_file"] = str(secret)
    with (
        running_web_node(folder / "node", auth={"oidc": oidc}) as web,
        running_oidc_provider(
            folder / "idp",
            port,
            redirect_uris=[f"{web.url}/api/oidc/callback"],
            post_logout_redirect_uris=[f"{web.url}/"],
            accounts=json.loads(json.dumps(ACCOUNTS)),
            client=registration,
            client_auth_methods=offered,
        ) as idp,
    ):
        yield web, idp, method


def test_the_login_authenticates_as_the_client_is_registered(
    sso: tuple[WebNode, OidcIdp, str],
) -> None:
    web, _idp, method = sso
    assert OidcProvider(web.dicom.settings.auth.oidc).client_auth() == method
    client, response = _login(web, "alice")
    with closing(client):
        assert response.status_code == 303, response.text
        assert response.headers["location"] == "/"
        assert _who(client).json() == {"username": "alice", "role": "admin", "sso": True}


def test_what_the_provider_allows(sso: tuple[WebNode, OidcIdp, str]) -> None:
    """What makes the login above meaningful. A public client: a Basic header (a secret) is
    refused. The other: the discovery document offers client_secret_post and not basic
    (oidc-provider itself takes either secret method from a confidential client)."""
    _web, idp, method = sso
    if method == "none":
        response = httpx.post(
            f"{idp.issuer}/token",
            auth=(CLIENT_ID, CLIENT_SECRET),
            data={"grant_type": "authorization_code", "code": "x", "redirect_uri": "http://x/"},
            timeout=30,
        )
        assert response.status_code in (400, 401), response.text
        assert response.json()["error"] == "invalid_client"
    else:
        document = httpx.get(f"{idp.issuer}/.well-known/openid-configuration", timeout=30).json()
        offered = document["token_endpoint_auth_methods_supported"]
        assert "client_secret_post" in offered
        assert "client_secret_basic" not in offered
