"""Known remote AEs: the configured ones (read-only) merged with those kept in the database.

Every server reads the database on each look-up, so a remote added through one server is a
C-MOVE destination on all of them at once.
"""

from __future__ import annotations

from collections.abc import Sequence

from openpacs.archive.ports import RemoteStore
from openpacs.archive.records import RemoteNode
from openpacs.errors import AlreadyExists, NotFound, PermissionDenied


class Remotes:
    def __init__(self, configured: Sequence[RemoteNode], store: RemoteStore) -> None:
        self._configured = {r.aet: RemoteNode(r.aet, r.host, r.port, r.tls, "config")
                            for r in configured}  # fmt: skip
        self._store = store

    def list(self) -> list[RemoteNode]:
        stored = [r for r in self._store.list() if r.aet not in self._configured]
        return sorted([*self._configured.values(), *stored], key=lambda r: r.aet)

    def get(self, aet: str) -> RemoteNode | None:
        return self._configured.get(aet) or self._store.get(aet)

    def require(self, aet: str) -> RemoteNode:
        remote = self.get(aet)
        if remote is None:
            raise NotFound(f"no remote AE {aet!r}")
        return remote

    def add(self, remote: RemoteNode) -> None:
        if remote.aet in self._configured or not self._store.add(remote):
            raise AlreadyExists(f"remote AE {remote.aet!r} already exists")

    def update(self, remote: RemoteNode) -> None:
        self._writable(remote.aet)
        if not self._store.update(remote):
            raise NotFound(f"no remote AE {remote.aet!r}")

    def remove(self, aet: str) -> None:
        self._writable(aet)
        if not self._store.remove(aet):
            raise NotFound(f"no remote AE {aet!r}")

    def _writable(self, aet: str) -> None:
        if aet in self._configured:
            raise PermissionDenied(f"remote AE {aet!r} is set in the configuration file")
