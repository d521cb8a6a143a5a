"""The UI's login: `POST /api/session` sets the session cookie, `DELETE` logs out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Cookie, Request, Response
from pydantic import BaseModel, Field

from openpacs.web.audit import audited
from openpacs.web.auth.authenticator import SESSION_COOKIE
from openpacs.web.auth.oidc import PASSWORD_MARKER
from openpacs.web.deps import AuthenticatorDep, CurrentUser

router = APIRouter(prefix="/api/session", tags=["session"])


class Credentials(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class SessionInfo(BaseModel):
    username: str
    role: str
    sso: bool = False
    """Logged in through the OpenID provider: logging out ends its session too."""


@router.post("", name="login", response_model=SessionInfo)
@audited(None)
def login(
    credentials: Credentials,
    request: Request,
    response: Response,
    authenticator: AuthenticatorDep,
) -> SessionInfo:
    """Log in with a user name and password; the answer sets the `openpacs_session` cookie."""
    peer = request.client.host if request.client else ""
    user = authenticator.login(credentials.username, credentials.password, peer)
    secret = authenticator.open_session(user)
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=int(authenticator.session_seconds),
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return SessionInfo(username=user.username, role=user.role)


@router.get("", response_model=SessionInfo)
@audited(None)
def who_am_i(principal: CurrentUser, authenticator: AuthenticatorDep) -> SessionInfo:
    """The logged-in user (any way of authenticating)."""
    sso = principal.via == "oidc"
    if principal.via == "session":
        user = authenticator.accounts.user(principal.name)
        sso = user is not None and user.password_hash == PASSWORD_MARKER
    return SessionInfo(username=principal.name, role=principal.role, sso=sso)


@router.delete("", status_code=204)
@audited(None)
def logout(
    principal: CurrentUser,
    authenticator: AuthenticatorDep,
    response: Response,
    session: Annotated[str | None, Cookie(alias=SESSION_COOKIE)] = None,
) -> Response:
    """End the session of the cookie (a no-op for tokens and Basic)."""
    if session and principal.via == "session":
        authenticator.close_session(session)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    response.status_code = 204
    return response
