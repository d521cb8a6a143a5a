"""Single sign-on in the browser: the portal's login page sends Chromium to a real OpenID
provider (oidc-provider under node), its login page signs the user in, the portal opens with
the role mapped from the provider's claim; logging out ends the provider's session too; a
user whose claim maps to no role is back on the login page with the reason."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import new_context, screenshot, store
from tests.e2e.images import ramp_ct_series
from tests.support.oidc_provider import (
    CLIENT_ID,
    CLIENT_SECRET,
    OidcIdp,
    running_oidc_provider,
)
from tests.support.process import free_port
from tests.support.web import WebNode, running_web_node


@pytest.fixture(scope="module")
def sso(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WebNode, OidcIdp]]:
    folder = tmp_path_factory.mktemp("e2e-sso")
    secret = folder / "client-secret"
    secret.write_text(CLIENT_SECRET, encoding="utf-8")
    port = free_port()
    oidc = {
        "issuer": f"http://127.0.0.1:{port}",
        "client_id": CLIENT_ID,
        "client_secret_file": str(secret),
        "scopes": "openid profile groups",
        "roles": ["pacs-admins=admin", "radiologists=user"],
    }
    accounts = {"alice": {"groups": ["radiologists"]}, "carol": {"groups": ["visitors"]}}
    with (
        running_web_node(folder / "node", auth={"oidc": oidc}) as web,
        running_oidc_provider(
            folder / "idp",
            port,
            redirect_uris=[f"{web.url}/api/oidc/callback"],
            post_logout_redirect_uris=[f"{web.url}/"],
            accounts=json.loads(json.dumps(accounts)),
        ) as idp,
    ):
        store(web, ramp_ct_series(3, patient_name="Single^Sign^On", patient_id="SSO-1"))
        yield web, idp


def _sign_in_at_the_provider(page: Page, username: str) -> None:
    page.get_by_test_id("sso-login").click()
    page.locator("input[name=login]").fill(username)
    page.locator("input[name=password]").fill("any password")
    page.locator("button[type=submit]").first.click()


def test_sign_in_and_out_through_the_provider(
    browser: Browser, sso: tuple[WebNode, OidcIdp]
) -> None:
    web, idp = sso
    context = new_context(browser)
    page = context.new_page()
    page.goto(web.url + "/")
    expect(page.get_by_test_id("sso-login")).to_have_text("Sign in with single sign-on")
    _sign_in_at_the_provider(page, "alice")
    expect(page.get_by_test_id("whoami")).to_have_text("alice (user)")
    expect(page.get_by_role("cell", name="SSO-1")).to_be_visible()
    path: Path = screenshot(page, "sso-signed-in")
    assert path.stat().st_size > 0
    # Logging out ends the provider's session: the next sign-in asks for the login again.
    page.get_by_test_id("logout").click()
    page.wait_for_url(f"{idp.issuer}/session/end**")
    page.locator("button[name=logout][value=yes]").click()
    page.wait_for_url(f"{web.url}/**")
    expect(page.get_by_test_id("sso-login")).to_be_visible()
    page.get_by_test_id("sso-login").click()
    expect(page.locator("input[name=login]")).to_be_visible()
    context.close()


def test_a_user_without_a_mapped_role_sees_why(
    browser: Browser, sso: tuple[WebNode, OidcIdp]
) -> None:
    web, _idp = sso
    context = new_context(browser)
    page = context.new_page()
    page.goto(web.url + "/")
    _sign_in_at_the_provider(page, "carol")
    expect(page.locator(".login-status")).to_contain_text(
        "Single sign-on failed: no openpacs role is mapped to the groups claim"
    )
    expect(page.get_by_test_id("whoami")).to_have_count(0)
    context.close()
