"""Users (admins manage them) and API tokens (each user manages their own)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from openpacs.archive.records import Role, User
from openpacs.errors import AlreadyExists, InvalidQuery, NotFound
from openpacs.web.audit import audited
from openpacs.web.auth.passwords import MIN_PASSWORD_LENGTH, hash_password
from openpacs.web.deps import ArchiveDep, AuthenticatorDep, CurrentUser, require

router = APIRouter(prefix="/api", tags=["users"])
ADMIN = [require("admin")]
NAME = r"^[A-Za-z0-9._@-]{1,64}$"
Username = Annotated[str, Path(pattern=NAME)]


class NewUser(BaseModel):
    username: str = Field(pattern=NAME)
    password: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=1024)
    role: Role = "user"


class UserChange(BaseModel):
    password: str | None = Field(default=None, min_length=MIN_PASSWORD_LENGTH, max_length=1024)
    role: Role | None = None


class NewToken(BaseModel):
    name: str = Field(default="", max_length=128)
    expires_days: float | None = Field(default=None, gt=0, le=3650)


def _user(user: User) -> dict[str, Any]:
    return {"username": user.username, "role": user.role, "created_at": user.created_at}


@router.get("/users", dependencies=ADMIN)
@audited(None)
def list_users(archive: ArchiveDep) -> list[dict[str, Any]]:
    return [_user(u) for u in archive.accounts.users()]


@router.post("/users", dependencies=ADMIN, status_code=201)
@audited("admin")
def add_user(archive: ArchiveDep, new: NewUser) -> dict[str, Any]:
    if not archive.accounts.add_user(new.username, new.role, hash_password(new.password)):
        raise AlreadyExists(f"user {new.username!r} already exists")
    user = archive.accounts.user(new.username)
    assert user is not None
    return _user(user)


@router.put("/users/{username}", dependencies=ADMIN)
@audited("admin")
def change_user(
    archive: ArchiveDep, username: Username, change: UserChange, me: CurrentUser
) -> dict[str, Any]:
    """Change a role or password (a new password ends the user's sessions)."""
    if username == me.name and change.role not in (None, "admin"):
        raise InvalidQuery("an administrator cannot take their own admin role")
    hashed = hash_password(change.password) if change.password else None
    if not archive.accounts.update_user(username, role=change.role, password_hash=hashed):
        raise NotFound(f"no user {username!r}")
    user = archive.accounts.user(username)
    assert user is not None
    return _user(user)


@router.delete("/users/{username}", dependencies=ADMIN, status_code=204)
@audited("admin")
def remove_user(archive: ArchiveDep, username: Username, me: CurrentUser) -> None:
    if username == me.name:
        raise InvalidQuery("an administrator cannot remove themselves")
    if not archive.accounts.remove_user(username):
        raise NotFound(f"no user {username!r}")


@router.get("/tokens")
@audited(None)
def list_tokens(archive: ArchiveDep, me: CurrentUser) -> list[dict[str, Any]]:
    """The caller's API tokens (never the secrets)."""
    return [asdict(t) for t in archive.accounts.tokens(me.name)]


@router.post("/tokens", status_code=201)
@audited("admin")
def create_token(authenticator: AuthenticatorDep, me: CurrentUser, new: NewToken) -> dict[str, Any]:
    """A new API token for the caller; `token` is shown only in this answer. Use it as
    `Authorization: Bearer <token>`."""
    expires = new.expires_days * 86400 if new.expires_days else None
    secret, token = authenticator.create_token(me.name, new.name, expires)
    return {"token": secret, **asdict(token)}


@router.delete("/tokens/{token_id}", status_code=204)
@audited("admin")
def revoke_token(
    archive: ArchiveDep,
    me: CurrentUser,
    token_id: Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")],
) -> None:
    """Revoke one of the caller's tokens (an admin may revoke anyone's)."""
    owner = None if me.can("admin") else me.name
    if not archive.accounts.revoke_token(token_id, owner):
        raise NotFound(f"no token {token_id}")
