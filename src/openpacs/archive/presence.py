"""This server's presence among the servers sharing the database: a row in the servers table
with a lease it renews while it runs (a third of the lease apart), and the duties every server
does on that beat: take over the jobs of servers whose lease ran out, sweep the staging
leftovers of servers that are gone.

A server that stops cleanly removes its row; one that is killed leaves a lease that runs out.
A server is alive exactly while its lease runs, so no server ever takes a live server's job,
and a server cut off from the database long enough to lose its lease learns it from its own
next job update (`SqlJobs.update` names the owner) and stops that job.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from openpacs.archive.ports import ServerStore
from openpacs.archive.records import Server
from openpacs.errors import OpenPacsError

log = logging.getLogger("openpacs.presence")

_FORGET_AFTER_SECONDS = 7 * 24 * 3600  # rows of crashed servers are kept a week for notes


class Presence:
    def __init__(self, servers: ServerStore, lease_seconds: float) -> None:
        self._servers = servers
        self.lease_seconds = lease_seconds
        self.server = Server(
            uuid.uuid4().hex,
            socket.gethostname()[:255],
            os.getpid(),
            datetime.now(UTC).isoformat(),
            0.0,
        )
        self._duties: list[Callable[[], None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def server_id(self) -> str:
        return self.server.server_id

    @property
    def label(self) -> str:
        return self.server.label

    def start(self, duties: list[Callable[[], None]]) -> None:
        """Register (raises StoreUnavailable when the database cannot take it), do each duty
        once, then keep the lease and repeat the duties on every beat."""
        if self._thread is not None:
            return
        self._servers.register(self._with_lease())
        log.info("server registered id=%s host=%s", self.server_id, self.label)
        self._duties = list(duties)
        self._run_duties()
        self._thread = threading.Thread(target=self._beat, name="presence", daemon=True)
        self._thread.start()

    def servers(self) -> list[Server]:
        """Every server in the table, live or with a lease that ran out."""
        return self._servers.servers()

    def live(self) -> set[str]:
        """The ids of the servers whose lease runs now, this one included."""
        now = time.time()
        return {s.server_id for s in self._servers.servers() if s.lease_until > now}

    def stop(self) -> None:
        """Stop renewing and remove this server's row: what it held is no longer held."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=self.lease_seconds)
        self._thread = None
        try:
            self._servers.remove(self.server_id)
        except OpenPacsError as exc:  # its lease runs out on its own
            log.warning("could not remove the server row reason=%s", exc.reason)

    def _with_lease(self) -> Server:
        lease_until = time.time() + self.lease_seconds
        server = self.server
        return Server(server.server_id, server.host, server.pid, server.started_at, lease_until)

    def _beat(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            try:
                if not self._servers.renew(self.server_id, self._with_lease().lease_until):
                    log.warning("server row gone (lease lapsed); registering again")
                    self._servers.register(self._with_lease())
                self._servers.forget_expired(time.time() - _FORGET_AFTER_SECONDS)
            except OpenPacsError as exc:
                log.warning("could not renew the server lease reason=%s", exc.reason)
                continue
            self._run_duties()

    def _run_duties(self) -> None:
        for duty in self._duties:
            try:
                duty()
            except OpenPacsError as exc:
                log.warning("server duty failed reason=%s", exc.reason)
            except Exception:
                log.exception("server duty failed")
