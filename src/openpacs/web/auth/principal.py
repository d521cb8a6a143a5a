"""Who is calling, and what each role may do (admin: everything; user: read and download;
uploader: store only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from openpacs.archive.records import Role

Permission = Literal["read", "store", "delete", "admin"]
Via = Literal["session", "token", "basic", "oidc"]
"""oidc: an access token of the OpenID provider, as a bearer token."""

PERMISSIONS: dict[Role, frozenset[Permission]] = {
    "admin": frozenset({"read", "store", "delete", "admin"}),
    "user": frozenset({"read"}),
    "uploader": frozenset({"store"}),
}


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    via: Via
    peer: str = ""
    groups: frozenset[str] = frozenset()
    """Provider groups (single sign-on users), for study visibility rules."""

    def can(self, permission: Permission) -> bool:
        return permission in PERMISSIONS[self.role]
