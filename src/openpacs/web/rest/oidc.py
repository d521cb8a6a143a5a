"""Single sign-on with the OpenID provider of `[auth.oidc]`: authorization code flow with PKCE.

`GET /api/oidc/login` sends the browser to the provider with a fresh state, nonce and PKCE
verifier, remembered in a short-lived HttpOnly cookie (SameSite=Lax: the provider's redirect
back is a cross-site navigation, which a Strict cookie would not follow); the callback checks
the state, exchanges the code with the verifier and the client secret, verifies the ID token
(signature, iss, aud, exp, nonce), maps the role and opens an ordinary session. `GET
/api/oidc/logout` ends the session at the provider too. All four are reachable anonymously.
"""

from __future__ import annotations

import logging
import secrets
import urllib.parse
from typing import Annotated

from fastapi import APIRouter, Cookie, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel

from openpacs.errors import NotAuthenticated, NotFound, OpenPacsError
from openpacs.web.audit import audited
from openpacs.web.auth.authenticator import SESSION_COOKIE
from openpacs.web.auth.oidc import LoginRequest, OidcProvider
from openpacs.web.deps import AuthenticatorDep

log = logging.getLogger("openpacs.auth")

router = APIRouter(prefix="/api/oidc", tags=["session"])

LOGIN_COOKIE = "openpacs_oidc"
HINT_COOKIE = "openpacs_oidc_hint"
_COOKIE_PATH = "/api/oidc"
_LOGIN_SECONDS = 600
CALLBACK = "/api/oidc/callback"


class SsoInfo(BaseModel):
    enabled: bool


def _provider(authenticator: object) -> OidcProvider:
    provider = getattr(authenticator, "oidc", None)
    if not isinstance(provider, OidcProvider):
        raise NotFound("single sign-on is not configured")
    return provider


def _redirect_uri(provider: OidcProvider, request: Request) -> str:
    return provider.settings.redirect_uri or str(request.base_url).rstrip("/") + CALLBACK


def _home(provider: OidcProvider, request: Request) -> str:
    """The portal's address, where the provider sends the browser back after logout."""
    if provider.settings.redirect_uri.endswith(CALLBACK):
        return provider.settings.redirect_uri[: -len(CALLBACK)] + "/"
    return str(request.base_url)


def _to_login_page(reason: str) -> RedirectResponse:
    """Back to the portal's login page, which shows the reason."""
    return RedirectResponse("/#/login?" + urllib.parse.urlencode({"sso_error": reason}), 303)


@router.get("", name="oidc_info", response_model=SsoInfo)
@audited(None)
def sso_info(authenticator: AuthenticatorDep) -> SsoInfo:
    """Whether single sign-on is configured (the login page offers it then)."""
    return SsoInfo(enabled=authenticator.oidc is not None)


@router.get("/login", name="oidc_login", response_class=RedirectResponse, status_code=302)
@audited(None)
def sso_login(request: Request, authenticator: AuthenticatorDep) -> RedirectResponse:
    """Start a login at the provider."""
    provider = _provider(authenticator)
    login = LoginRequest.new()
    response = RedirectResponse(
        provider.authorization_url(login, _redirect_uri(provider, request)), 302
    )
    response.set_cookie(
        LOGIN_COOKIE,
        login.encode(),
        max_age=_LOGIN_SECONDS,
        path=_COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


@router.get("/callback", name="oidc_callback", response_class=RedirectResponse, status_code=303)
@audited(None)
def sso_callback(
    request: Request,
    authenticator: AuthenticatorDep,
    code: str = "",
    state: str = "",
    error: str = "",
    login_cookie: Annotated[str | None, Cookie(alias=LOGIN_COOKIE)] = None,
) -> RedirectResponse:
    """The provider's answer: check it, open a session, go to the portal."""
    provider = _provider(authenticator)
    peer = request.client.host if request.client else ""
    login = LoginRequest.decode(login_cookie or "")
    try:
        if error:
            raise NotAuthenticated(f"the provider refused the login: {error[:100]}")
        if login is None:
            raise NotAuthenticated("no login in progress in this browser; start again")
        if not state or not secrets.compare_digest(state, login.state):
            raise NotAuthenticated("the login's state does not match; start again")
        if not code:
            raise NotAuthenticated("the provider sent no authorization code")
        tokens = provider.exchange(code, login, _redirect_uri(provider, request))
        identity = provider.verify_id_token(tokens["id_token"], login.nonce)
        user = authenticator.provider_login(identity, peer)
    except OpenPacsError as exc:
        log.warning("single sign-on failed peer=%s reason=%s", peer, exc.reason)
        authenticator.notify_sso_failure(peer, exc.reason)
        response = _to_login_page(exc.reason)
        response.delete_cookie(LOGIN_COOKIE, path=_COOKIE_PATH)
        return response
    secret = authenticator.open_session(user)
    response = RedirectResponse("/", 303)
    secure = request.url.scheme == "https"
    response.delete_cookie(LOGIN_COOKIE, path=_COOKIE_PATH)
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=int(authenticator.session_seconds),
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure,
    )
    response.set_cookie(  # the id_token_hint of the provider logout
        HINT_COOKIE,
        tokens["id_token"],
        max_age=int(authenticator.session_seconds),
        path=_COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=secure,
    )
    return response


@router.get("/logout", name="oidc_logout", response_class=RedirectResponse, status_code=303)
@audited(None)
def sso_logout(
    request: Request,
    authenticator: AuthenticatorDep,
    hint: Annotated[str | None, Cookie(alias=HINT_COOKIE)] = None,
) -> RedirectResponse:
    """End the provider's session too (the portal has closed ours with DELETE /api/session)."""
    provider = _provider(authenticator)
    home = _home(provider, request)
    response = RedirectResponse(provider.logout_url(hint, home) or home, 303)
    response.delete_cookie(HINT_COOKIE, path=_COOKIE_PATH)
    return response
