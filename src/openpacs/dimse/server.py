"""The DICOM listener: one pynetdicom AE serving Verification, Storage and Query/Retrieve.

Every DIMSE socket gets TCP_NODELAY (with Nagle's algorithm and delayed ACKs a peer stalls to a
few instances per second). TLS handshakes run in the association's own thread, not in the
accept loop, so a client that connects and says nothing cannot block other peers.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import ssl
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.events import Event
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)
from pynetdicom.transport import ThreadedAssociationServer

from openpacs.archive.service import Archive
from openpacs.config import DicomSettings
from openpacs.dimse import handlers, pynetdicom_retrieve, tuning
from openpacs.dimse.event_request import on_request, peer_of
from openpacs.dimse.handlers import DimseContext, Remote
from openpacs.dimse.move_senders import ArchiveAE
from openpacs.dimse.peer_policy import PeerPolicy
from openpacs.dimse.tls import client_context, server_context
from openpacs.errors import ConfigError

log = logging.getLogger("openpacs.dimse")

QUERY_RETRIEVE_MODELS = (
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)


def set_nodelay(event: Event) -> None:
    sock = event.assoc.dul.socket.socket if event.assoc.dul.socket else None
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def discard_partial_store(event: Event) -> None:
    """Close and remove the spool file of a C-STORE cut short by an abort or a lost
    connection: pynetdicom leaves it open on disk until the garbage collector finds it."""
    message = getattr(event.assoc.dimse, "message", None)
    spool = getattr(message, "_data_set_file", None)
    if spool is None or spool.closed:
        return
    spool.close()
    Path(spool.name).unlink(missing_ok=True)


def transfer_syntaxes() -> list[str]:
    """The syntaxes we accept, in the order pynetdicom prefers them when a peer proposes
    several in one presentation context: Explicit VR Little Endian first (it keeps private
    elements' VRs and never asks a sender to compress), Implicit VR and Big Endian last."""
    last = [ImplicitVRLittleEndian, ExplicitVRBigEndian]
    ordered = [ExplicitVRLittleEndian]
    ordered += [ts for ts in ALL_TRANSFER_SYNTAXES if ts not in ordered and ts not in last]
    return ordered + last


class _Listener(ThreadedAssociationServer):
    """pynetdicom's server, accepting with TCP_NODELAY and TLS handshakes done in the
    connection's own thread, before an association (and its slot) exists."""

    request_queue_size = 128  # socketserver's 5 drops connections when modalities burst

    def get_request(self) -> tuple[socket.socket, Any]:
        assert self.socket is not None
        client, address = self.socket.accept()
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ssl_context is not None:
            client = self.ssl_context.wrap_socket(
                client, server_side=True, do_handshake_on_connect=False
            )
        return client, address

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            try:
                request.settimeout(self.ae.acse_timeout)
                request.do_handshake()
                request.settimeout(self.ae.network_timeout)
            except (OSError, ValueError) as exc:
                log.warning(
                    "TLS handshake failed peer=%s:%s reason=%s",
                    *client_address[:2],
                    getattr(exc, "reason", None) or type(exc).__name__,
                )
                self.shutdown_request(request)
                return
        super().process_request_thread(request, client_address)

    def shutdown(self) -> None:
        """Stop accepting and close the listening socket; running associations go on."""
        socketserver.BaseServer.shutdown(self)
        self.server_close()


class _SharedPortListener(_Listener):
    """A listener whose port other worker processes bind too: the kernel spreads incoming
    connections over them (SO_REUSEPORT)."""

    def server_bind(self) -> None:
        assert self.socket is not None
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


@dataclass
class _Running:
    name: str
    server: _Listener
    thread: threading.Thread


class DicomServer:
    def __init__(
        self,
        archive: Archive,
        settings: DicomSettings,
        *,
        host: str = "",
        share_ports: bool = False,
    ) -> None:
        """`share_ports`: other processes listen on the same ports (SO_REUSEPORT)."""
        self._settings = settings
        self._host = host
        self._listener_class = _SharedPortListener if share_ports else _Listener
        self._running: list[_Running] = []
        self._association_log = _AssociationLog()
        self.ae = self._make_ae(settings)
        remotes = _KnownRemotes(archive)
        tls_client = None
        if any(r.tls for r in settings.remotes) or settings.tls_ca or settings.tls_cert:
            tls_client = client_context(
                ca=_path(settings.tls_ca),
                cert=_path(settings.tls_cert),
                key=_path(settings.tls_key),
                check_hostname=False,
            )
        self.context = DimseContext(
            archive=archive,
            aet=settings.aet,
            remotes=remotes,
            move_association_args={
                "max_pdu": settings.max_pdu,
                "evt_handlers": [(evt.EVT_CONN_OPEN, set_nodelay)],
            },
            tls_client_args=tls_client,
            move_associations=settings.move_associations,
            policy=PeerPolicy(settings),
            dimse_timeout=settings.dimse_timeout,
        )

    @staticmethod
    def _make_ae(settings: DicomSettings) -> AE:
        ae = ArchiveAE(ae_title=settings.aet)
        ae.maximum_associations = settings.max_associations
        ae.maximum_pdu_size = settings.max_pdu
        ae.network_timeout = settings.network_timeout
        ae.dimse_timeout = settings.dimse_timeout
        ae.acse_timeout = settings.acse_timeout
        ae.require_called_aet = False
        if not settings.accept_unknown_aets:
            if not settings.remotes and not settings.peers:
                raise ConfigError(
                    "dicom.accept_unknown_aets: false with no [[dicom.remotes]] or "
                    "[[dicom.peers]] refuses every peer; list the AEs that may associate"
                )
            ae.require_calling_aet = PeerPolicy(settings).association_aets
        syntaxes = transfer_syntaxes()
        ae.add_supported_context(Verification, syntaxes)
        for context in AllStoragePresentationContexts:
            # Role selection lets a C-GET requestor act as the Storage SCP (PS3.7 D.3.3.4).
            ae.add_supported_context(
                context.abstract_syntax, syntaxes, scu_role=True, scp_role=True
            )
        for sop_class in QUERY_RETRIEVE_MODELS:
            ae.add_supported_context(sop_class, syntaxes)
        return ae

    def _handlers(self) -> list[Any]:
        context = self.context
        return [
            (evt.EVT_C_ECHO, on_request(handlers.handle_echo), [context]),
            (evt.EVT_C_STORE, on_request(handlers.handle_store), [context]),
            (evt.EVT_C_FIND, on_request(handlers.handle_find), [context]),
            (evt.EVT_C_GET, pynetdicom_retrieve.handle_get, [context]),
            (evt.EVT_C_MOVE, pynetdicom_retrieve.handle_move, [context]),
            (evt.EVT_CONN_OPEN, set_nodelay),
            (evt.EVT_ACCEPTED, self._association_log, ["accepted"]),
            (evt.EVT_REJECTED, self._association_log, ["rejected"]),
            (evt.EVT_REJECTED, _audit_rejected, [context]),
            (evt.EVT_RELEASED, self._association_log, ["released"]),
            (evt.EVT_ABORTED, self._association_log, ["aborted"]),
            (evt.EVT_ABORTED, discard_partial_store),
            (evt.EVT_CONN_CLOSE, discard_partial_store),
        ]

    def start(self, *, ports: dict[str, int] | None = None) -> None:
        """Open the enabled listeners; `ports` overrides their port numbers by name
        ("dicom", "dicom-tls"), e.g. 0 for any free port."""
        settings = self._settings
        ports = ports or {}
        if settings.port:
            self._listen("dicom", ports.get("dicom", settings.port), None)
        if settings.tls_port:
            tls = server_context(
                _path(settings.tls_cert),  # type: ignore[arg-type]
                _path(settings.tls_key),  # type: ignore[arg-type]
                ca=_path(settings.tls_ca),
                require_client_cert=settings.tls_require_client_cert,
            )
            self._listen("dicom-tls", ports.get("dicom-tls", settings.tls_port), tls)

    def _listen(self, name: str, port: int, tls: ssl.SSLContext | None) -> None:
        key = "dicom.tls_port" if tls is not None else "dicom.port"
        try:
            server = self.ae.make_server(
                (self._host, port),
                ssl_context=tls,
                evt_handlers=self._handlers(),
                server_class=self._listener_class,
            )
        except OSError as exc:
            raise ConfigError(f"{key}: cannot listen on port {port}: {exc.strerror}") from None
        server.contexts = tuning.cheap_to_copy(server.contexts)
        thread = threading.Thread(target=server.serve_forever, name=f"{name}-accept", daemon=True)
        thread.start()
        self._running.append(_Running(name, server, thread))  # type: ignore[arg-type]
        log.info("listening service=%s port=%d aet=%s", name, self.port_of(name), self.ae.ae_title)

    def port_of(self, name: str) -> int:
        for running in self._running:
            if running.name == name:
                return int(running.server.server_address[1])
        raise KeyError(name)

    def stop(self, grace_seconds: float = 30.0) -> None:
        """Refuse new associations, let running ones finish for up to `grace_seconds`,
        then abort what is left."""
        for running in self._running:
            running.server.shutdown()
        deadline = time.monotonic() + grace_seconds
        active = self._active()
        while active and time.monotonic() < deadline:
            time.sleep(0.05)
            active = self._active()
        for assoc in active:
            log.warning("aborting association still running at shutdown")
            assoc.abort()
        for running in self._running:
            running.thread.join(timeout=5)
        self._running.clear()

    def _active(self) -> list[Any]:
        return [a for r in self._running for a in r.server.active_associations if a.is_alive()]


class _KnownRemotes(Mapping[str, Remote]):
    """C-MOVE destinations: the archive's remotes (configured and kept in the database), read
    at each look-up so a remote added on any server is known here at once."""

    def __init__(self, archive: Archive) -> None:
        self._archive = archive

    def __getitem__(self, aet: str) -> Remote:
        node = self._archive.remotes.get(aet)
        if node is None:
            raise KeyError(aet)
        return Remote(node.aet, node.host, node.port, node.tls)

    def __iter__(self) -> Iterator[str]:
        return iter([r.aet for r in self._archive.remotes.list()])

    def __len__(self) -> int:
        return len(self._archive.remotes.list())


class _AssociationLog:
    """One log line per association event; the closing line carries the duration."""

    def __init__(self) -> None:
        self._started: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()

    def __call__(self, event: Event, what: str) -> None:
        assoc = event.assoc
        peer = assoc.requestor
        duration = ""
        if what == "accepted":
            self._started[assoc] = time.monotonic()
        elif (started := self._started.pop(assoc, None)) is not None:
            duration = f" duration_ms={(time.monotonic() - started) * 1000:.0f}"
        log.info(
            "association %s calling=%s called=%s peer=%s:%s%s",
            what,
            peer.ae_title,
            assoc.acceptor.ae_title,
            peer.address,
            peer.port,
            duration,
        )


def _audit_rejected(event: Event, context: DimseContext) -> None:
    handlers.audit_rejected(peer_of(event), context)


def _path(value: str) -> Path | None:
    return Path(value) if value else None
