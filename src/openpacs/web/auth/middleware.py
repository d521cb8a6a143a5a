"""Authentication of every request, before any route runs.

Done as ASGI middleware rather than per-route dependencies so that no route can be added
without it: only the health check, the logins (`PUBLIC`) and the UI's static files (GET and
HEAD outside `/api` and `/dicom-web`) are reachable anonymously; a test requests every route
of the OpenAPI description anonymously and expects 401. A 401 carries the challenges of
RFC 9110 11.6.1; a browser's script requests (the UI's, with `X-Requested-With:
XMLHttpRequest`, and any other page's: Fetch Metadata `Sec-Fetch-Mode` other than `navigate`,
as OHIF's on the same origin behind a proxy) get only the Bearer one, so the browser never pops
up its Basic dialog over a page (nor answers it with credentials cached for the site).
Requests authenticated by the session cookie that change state must carry
`X-Requested-With` too: a cross-site form cannot set it (CSRF guard).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from anyio import to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from openpacs.errors import LoginThrottled, OpenPacsError
from openpacs.web.auth.authenticator import SESSION_COOKIE, Authenticator

PUBLIC = frozenset(
    {("GET", "/health"), ("HEAD", "/health"), ("POST", "/api/session")}
    | {("GET", f"/api/oidc{path}") for path in ("", "/login", "/callback", "/logout")}
)
"""The health check, the password login and single sign-on (`web/rest/oidc.py`)."""
PROTECTED_PREFIXES = ("/api", "/dicom-web")
BASIC_CHALLENGE = 'Basic realm="openpacs", charset="UTF-8"'
BEARER_CHALLENGE = 'Bearer realm="openpacs"'
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
AJAX = "xmlhttprequest"


def challenges(headers: Mapping[str, str]) -> str:
    """The WWW-Authenticate value of a 401: Basic is offered to everything but a page's
    scripts and subresources, for which a browser would open its login dialog."""
    if _from_a_page(headers):
        return BEARER_CHALLENGE
    return f"{BASIC_CHALLENGE}, {BEARER_CHALLENGE}"


def _from_a_page(headers: Mapping[str, str]) -> bool:
    if headers.get("x-requested-with", "").lower() == AJAX:
        return True
    mode = headers.get("sec-fetch-mode", "").lower()  # W3C Fetch Metadata Request Headers
    return mode not in ("", "navigate")


def _cookie(header: str) -> str | None:
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == SESSION_COOKIE and value:
            return value
    return None


class Authentication:
    def __init__(self, app: ASGIApp, authenticator: Authenticator) -> None:
        self.app = app
        self.authenticator = authenticator

    @staticmethod
    def _public(scope: Scope) -> bool:
        method, path = scope["method"], scope["path"]
        if (method, path) in PUBLIC:
            return True
        protected = any(path == p or path.startswith(p + "/") for p in PROTECTED_PREFIXES)
        return method in ("GET", "HEAD") and path != "/health" and not protected

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            await self.app(scope, receive, send)
            return
        if self._public(scope):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        client = scope.get("client")
        peer = client[0] if client else ""
        try:
            principal = await to_thread.run_sync(
                self.authenticator.authenticate,
                headers.get("authorization"),
                _cookie(headers.get("cookie", "")),
                peer,
            )
        except OpenPacsError as exc:
            if isinstance(exc, LoginThrottled):  # 429: no challenge, the password was not checked
                extra = {"retry-after": str(exc.retry_after)}
            else:
                extra = {"www-authenticate": challenges(headers)}
            await _reply(send, exc.http_status, exc.reason, extra)
            return
        if (
            principal.via == "session"
            and scope["method"] not in _SAFE_METHODS
            and headers.get("x-requested-with", "").lower() != AJAX
        ):
            await _reply(send, 403, "X-Requested-With: XMLHttpRequest required", {})
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


async def _reply(send: Send, status: int, detail: str, headers: dict[str, str]) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
