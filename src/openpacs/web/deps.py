"""FastAPI dependencies shared by every router: the archive, the settings, the caller.

    @router.get("/thing")
    def thing(archive: ArchiveDep, user: Annotated[Principal, require("read")]) -> ...

or, when the route does not need the principal itself, `dependencies=[require("read")]`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from openpacs.archive.service import Archive
from openpacs.config import Settings
from openpacs.errors import NotAuthenticated, PermissionDenied
from openpacs.web.access import visibility_for
from openpacs.web.auth.authenticator import Authenticator
from openpacs.web.auth.principal import Permission, Principal

__all__ = [
    "ArchiveDep",
    "AuthenticatorDep",
    "CurrentUser",
    "Permission",
    "Principal",
    "SettingsDep",
    "require",
]


def _archive(request: Request) -> Archive:
    """The archive as the caller may see it: restricted to the studies the visibility rules
    give a restricted user (`web.access`), for every route alike."""
    archive: Archive = request.app.state.archive
    principal = request.scope.get("state", {}).get("principal")
    if isinstance(principal, Principal):
        settings: Settings = request.app.state.settings
        visibility = visibility_for(principal, settings.auth.visibility)
        if visibility is not None:
            return archive.scoped(visibility)
    return archive


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _authenticator(request: Request) -> Authenticator:
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator


def _principal(request: Request) -> Principal:
    """Set by the authentication middleware; absent only on public routes."""
    principal = request.scope.get("state", {}).get("principal")
    if not isinstance(principal, Principal):
        raise NotAuthenticated("authentication required")
    return principal


ArchiveDep = Annotated[Archive, Depends(_archive)]
SettingsDep = Annotated[Settings, Depends(_settings)]
AuthenticatorDep = Annotated[Authenticator, Depends(_authenticator)]
CurrentUser = Annotated[Principal, Depends(_principal)]


def require(permission: Permission) -> Any:
    """A dependency that yields the caller when their role allows `permission`, else 403."""

    def check(principal: CurrentUser) -> Principal:
        if not principal.can(permission):
            raise PermissionDenied(f"the {principal.role} role may not {permission}")
        return principal

    return Depends(check)
