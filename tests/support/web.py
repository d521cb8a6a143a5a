"""Run a real openpacs HTTP node for tests: the DIMSE node of `tests.support.node` plus the
HTTP application (`openpacs.compose.build_http_server`, what `openpacs serve` runs) with
uvicorn on a free loopback port, and an admin user whose password the test knows.

    with running_web_node(tmp_path) as web:
        response = httpx.get(f"{web.url}/api/studies", auth=web.admin)
        with web.client() as client:          # httpx.Client, base_url + admin Basic auth
            client.get("/api/session")
        password = web.add_user("alice", "user")
        web.dicom.port                        # the node's DIMSE port (AE title web.dicom.aet)
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from openpacs.archive.records import Role
from openpacs.archive.service import Archive
from openpacs.compose import build_http_server
from openpacs.config import Settings
from openpacs.web.auth.passwords import hash_password
from openpacs.web.server import HttpServer
from tests.support.backends import Backend
from tests.support.node import HOST, Node, running_node

ADMIN = "admin"


@dataclass
class WebNode:
    url: str
    """Base URL without a trailing slash, e.g. http://127.0.0.1:43121."""
    username: str
    password: str
    dicom: Node
    http: HttpServer

    @property
    def admin(self) -> tuple[str, str]:
        """(user name, password) of the administrator: `auth=web.admin` for httpx."""
        return (self.username, self.password)

    @property
    def app(self) -> Any:
        """The FastAPI application (e.g. `web.app.openapi()`)."""
        return self.http.app

    @property
    def archive(self) -> Archive:
        return self.dicom.archive

    @property
    def settings(self) -> Settings:
        return self.dicom.settings

    def client(self, auth: Any = "admin", **kwargs: Any) -> httpx.Client:
        """An httpx client on the node; Basic auth as the admin unless `auth` says otherwise
        (None: anonymous)."""
        return httpx.Client(
            base_url=self.url,
            auth=self.admin if auth == "admin" else auth,
            timeout=kwargs.pop("timeout", 30.0),
            verify=kwargs.pop("verify", False),
            **kwargs,
        )

    def add_user(self, username: str, role: Role, password: str | None = None) -> str:
        """Create a user directly in the database; returns the password."""
        password = password or secrets.token_urlsafe(12)
        if not self.archive.accounts.add_user(username, role, hash_password(password)):
            raise ValueError(f"user {username} exists")
        return password


@contextmanager
def running_web_node(
    folder: Path, *, backend: Backend | None = None, **sections: dict[str, Any]
) -> Iterator[WebNode]:
    """A node serving DIMSE and HTTP on free loopback ports; `sections` are TOML sections
    (e.g. `http={"tls_cert": ..., "tls_key": ...}`, `dicom={"remotes": [...]}`)."""
    folder.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(16)
    password_file = folder / "admin-password"
    password_file.write_text(password + "\n", encoding="utf-8")
    auth = {"admin_user": ADMIN, "admin_password_file": str(password_file)}
    auth.update(sections.pop("auth", {}))
    http = {"host": HOST, **sections.pop("http", {})}
    with running_node(folder, backend=backend, auth=auth, http=http, **sections) as node:
        server = build_http_server(node.archive, node.settings, port=0, grace_seconds=5)
        server.start()
        try:
            yield WebNode(f"{server.scheme}://{HOST}:{server.port}", ADMIN, password, node, server)
        finally:
            server.stop()


def multipart_parts(content: bytes, content_type: str) -> list[tuple[str, bytes]]:
    """The parts of a multipart/related body as (header block, body), parsed here on purpose
    rather than by openpacs' own reader (RFC 2046 5.1.1)."""
    match = re.search(r'boundary="?([^";\s]+)"?', content_type)
    if match is None:
        raise ValueError(f"no boundary in {content_type!r}")
    delimiter = b"\r\n--" + match.group(1).encode()
    sections = (b"\r\n" + content).split(delimiter)
    if not sections[-1].startswith(b"--"):
        raise ValueError("no closing delimiter")
    parts = []
    for section in sections[1:-1]:
        head, separator, body = section.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not separator:
            raise ValueError("a part without a header block")
        parts.append((head.decode("latin-1"), body))
    return parts
