"""The DICOM listeners: one asyncio event loop on one thread serving every association.

Plain and TLS ports come from `[dicom]`; TLS handshakes run on the loop like any other I/O,
so a peer that connects and says nothing holds up no one (and is dropped after
`acse_timeout`). Past `max_associations` accepted associations, a new one is refused with
A-ASSOCIATE-RJ "local limit exceeded" (transient). `start` and `stop` may be called from any
thread.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from pathlib import Path

from openpacs.config import DicomSettings
from openpacs.dimse.association import Association, MessageHandler, OnAssociation
from openpacs.dimse.negotiation import Capabilities
from openpacs.errors import ConfigError
from openpacs.tls import server_context

log = logging.getLogger("openpacs.dimse")

_START_TIMEOUT = 10.0
_CLOSE_WAIT = 2.0  # after aborting at stop, how long the peers get to close


class Listener:
    """Serves associations on the configured ports until `stop`."""

    def __init__(
        self,
        settings: DicomSettings,
        caps: Capabilities,
        handler_factory: Callable[[Association], MessageHandler],
        *,
        host: str = "",
        share_ports: bool = False,
        on_association: OnAssociation | None = None,
    ) -> None:
        self._settings = settings
        self._caps = caps
        self._handler_factory = handler_factory
        self._host = host
        self._share_ports = share_ports
        self._on_association = on_association
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: dict[str, asyncio.Server] = {}
        self._associations: set[Association] = set()
        self._accepted: set[Association] = set()
        self._connections: set[Association] = set()  # until their transport is closed

    # ---- from any thread ----------------------------------------------------------------

    def start(self, *, ports: dict[str, int] | None = None) -> None:
        """Open the enabled listeners ("dicom", "dicom-tls"; `ports` overrides their numbers,
        0 for any free port) on a new loop thread; returns once they listen."""
        tls = self._tls_context() if self._settings.tls_port else None
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.loop = loop

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="dimse-loop", daemon=True)
        self._thread.start()
        ready.wait(_START_TIMEOUT)
        future = asyncio.run_coroutine_threadsafe(self._open(ports or {}, tls), loop)
        try:
            future.result(_START_TIMEOUT)
        except BaseException:
            self._halt()
            raise

    def port_of(self, name: str) -> int:
        server = self._servers[name]
        return int(server.sockets[0].getsockname()[1])

    def stop(self, grace_seconds: float = 30.0) -> None:
        """Refuse new associations; let running ones end within `grace_seconds`; abort the
        rest; stop the loop."""
        if self.loop is None or self._thread is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._close(grace_seconds), self.loop)
        future.result(grace_seconds + _CLOSE_WAIT + _START_TIMEOUT)
        self._halt()

    # ---- on the loop --------------------------------------------------------------------

    async def _open(self, ports: dict[str, int], tls: ssl.SSLContext | None) -> None:
        settings = self._settings
        if settings.port:
            await self._listen("dicom", ports.get("dicom", settings.port), None)
        if tls is not None:
            await self._listen("dicom-tls", ports.get("dicom-tls", settings.tls_port), tls)

    async def _listen(self, name: str, port: int, tls: ssl.SSLContext | None) -> None:
        key = "dicom.tls_port" if tls is not None else "dicom.port"
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET  # "": every IPv4 address
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if self._share_ports:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((self._host, port))
        except OSError as exc:
            sock.close()
            raise ConfigError(f"{key}: cannot listen on port {port}: {exc.strerror}") from None
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            self._protocol,
            sock=sock,
            ssl=tls,
            backlog=128,  # modalities open associations in bursts
            ssl_handshake_timeout=self._settings.acse_timeout if tls else None,
        )
        self._servers[name] = server
        log.info(
            "listening service=%s port=%d aet=%s", name, self.port_of(name), self._caps.ae_title
        )

    def _protocol(self) -> Association:
        assoc = Association(
            self._caps,
            self._handler_factory,
            acse_timeout=self._settings.acse_timeout,
            network_timeout=self._settings.network_timeout,
            on_association=self._hook,
            over_limit=lambda: len(self._accepted) >= self._settings.max_associations,
        )
        self._associations.add(assoc)
        self._connections.add(assoc)
        assoc.closed.add_done_callback(lambda _: self._forget(assoc))
        assoc.disconnected.add_done_callback(lambda _: self._connections.discard(assoc))
        return assoc

    def _hook(self, event: str, assoc: Association, detail: str) -> None:
        if event == "accepted":
            self._accepted.add(assoc)
        if self._on_association is not None:
            self._on_association(event, assoc, detail)

    def _forget(self, assoc: Association) -> None:
        self._accepted.discard(assoc)
        self._associations.discard(assoc)

    async def _close(self, grace: float) -> None:
        for server in self._servers.values():
            server.close()
        waiting = [a.closed for a in self._associations]
        if waiting:
            await asyncio.wait(waiting, timeout=grace)
        left = list(self._associations)
        for assoc in left:
            log.warning("aborting association still running at shutdown peer=%s", assoc.peer_host)
            assoc.abort()
        connected = list(self._connections)
        if connected:
            await asyncio.wait([a.disconnected for a in connected], timeout=_CLOSE_WAIT)
        for assoc in list(self._connections):
            assoc.drop()
        await asyncio.sleep(0)  # let the dropped transports report their loss
        for server in self._servers.values():
            await asyncio.wait_for(server.wait_closed(), _CLOSE_WAIT)
        self._servers.clear()

    def _halt(self) -> None:
        loop, thread = self.loop, self._thread
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(_START_TIMEOUT)
        self.loop, self._thread = None, None

    def _tls_context(self) -> ssl.SSLContext:
        settings = self._settings
        return server_context(
            Path(settings.tls_cert),
            Path(settings.tls_key),
            ca=Path(settings.tls_ca) if settings.tls_ca else None,
            require_client_cert=settings.tls_require_client_cert,
        )
