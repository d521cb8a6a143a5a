"""The HTTP application: `create_app(archive, settings)` builds one, with nothing global, so
a test can run two openpacs nodes in one process.

Layers, outermost first: security headers on every response, CORS for configured origins,
authentication of every request but the health check, the login and the UI's static files,
the audit of requests that touch patient data, then the routers. OpenPacsError becomes
`{"detail": reason}` with its HTTP status.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.middleware.cors import CORSMiddleware

from openpacs import __version__
from openpacs.archive.service import Archive
from openpacs.config import Settings
from openpacs.errors import LoginThrottled, NotAuthenticated, OpenPacsError
from openpacs.web import dicomweb, ui
from openpacs.web.audit import AuditRequests, login_listener
from openpacs.web.auth.authenticator import Authenticator, LoginListener
from openpacs.web.auth.bootstrap import ensure_admin
from openpacs.web.auth.middleware import Authentication, challenges
from openpacs.web.auth.oidc import OidcProvider
from openpacs.web.rest import audit, imports, oidc, remotes, resources, session, users
from openpacs.web.security import SecurityHeaders

log = logging.getLogger("openpacs.web")

_CORS_HEADERS = ["Authorization", "Content-Type", "Accept", "X-Requested-With"]
# Every router of the API and DICOMweb; each route declares its audit action (web/audit.py).
ROUTERS = (
    session.router,
    oidc.router,
    audit.router,
    resources.router,
    remotes.router,
    imports.router,
    users.router,
    dicomweb.router,
)


def create_app(
    archive: Archive,
    settings: Settings,
    *,
    create_admin: bool = True,
    on_login: LoginListener | None = None,
) -> FastAPI:
    """The openpacs HTTP application over `archive`.

    `create_admin`: on a database without users, create the administrator of `[auth]`
    (see `openpacs.web.auth.bootstrap`). `on_login` replaces the audit of password checks.
    """
    if create_admin:
        ensure_admin(archive.accounts, settings.auth)
    app = FastAPI(
        title="openpacs",
        version=__version__,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.archive = archive
    app.state.settings = settings
    app.state.authenticator = Authenticator(
        archive.accounts,
        session_seconds=settings.auth.session_hours * 3600,
        on_login=on_login or login_listener(archive.audit),
        oidc=OidcProvider(settings.auth.oidc) if settings.auth.oidc.issuer else None,
    )
    _add_error_handlers(app)

    @app.get("/health", name="health", tags=["health"])
    def health() -> dict[str, str]:
        """Liveness: the only route that needs no authentication."""
        return {"status": "ok"}

    for router in ROUTERS:
        app.include_router(router)
    ui.mount(app)  # last: every API and DICOMweb route is matched before the static files

    app.add_middleware(AuditRequests, audit=archive.audit)
    app.add_middleware(Authentication, authenticator=app.state.authenticator)
    origins = list(settings.http.cors_origins)
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_credentials="*" not in origins,
            allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
            allow_headers=_CORS_HEADERS,
            expose_headers=["Content-Type", "Content-Length", "WWW-Authenticate", "Retry-After"],
            max_age=600,
        )
    app.add_middleware(SecurityHeaders)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(OpenPacsError)
    def openpacs_error(request: Request, exc: OpenPacsError) -> JSONResponse:
        headers: dict[str, str] = {}
        if isinstance(exc, NotAuthenticated):
            headers["WWW-Authenticate"] = challenges(request.headers)
        if isinstance(exc, LoginThrottled):
            headers["Retry-After"] = str(exc.retry_after)
        if exc.http_status >= 500:
            log.error("request failed path=%s reason=%s", request.url.path, exc.reason)
        return JSONResponse({"detail": exc.reason}, status_code=exc.http_status, headers=headers)

    @app.exception_handler(RequestValidationError)
    def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for error in exc.errors()[:5]:
            where = ".".join(str(part) for part in error.get("loc", ()))
            problems.append(f"{where}: {error.get('msg', 'invalid')}")
        return JSONResponse({"detail": "; ".join(problems) or "invalid request"}, status_code=400)

    @app.exception_handler(Exception)
    def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Sync handlers run outside the `except` that caught `exc`: pass it for its traceback.
        log.error("unexpected error path=%s", request.url.path, exc_info=exc)
        return JSONResponse({"detail": "internal error"}, status_code=500)
