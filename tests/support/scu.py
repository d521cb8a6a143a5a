"""pynetdicom as a real DICOM peer over loopback sockets: the client side of the tests, and a
storage SCP to receive C-MOVE sub-operations."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, build_role, evt
from pynetdicom.association import Association
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

HOST = "127.0.0.1"
TIMEOUT = 30

MODELS = {
    "patient": (
        PatientRootQueryRetrieveInformationModelFind,
        PatientRootQueryRetrieveInformationModelGet,
        PatientRootQueryRetrieveInformationModelMove,
    ),
    "study": (
        StudyRootQueryRetrieveInformationModelFind,
        StudyRootQueryRetrieveInformationModelGet,
        StudyRootQueryRetrieveInformationModelMove,
    ),
}


def set_nodelay(event: Any) -> None:
    """EVT_CONN_OPEN handler: TCP_NODELAY on our side too.

    Without it Nagle's algorithm holds a C-STORE's data set PDU until the peer acknowledges
    the command PDU, and a delayed ACK costs ~40 ms per message on loopback.
    """
    transport = event.assoc.dul.socket
    if transport is not None and transport.socket is not None:
        transport.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def close_socket(event: Any) -> None:
    """EVT_CONN_CLOSE handler: make sure the socket is closed.

    pynetdicom shuts a socket down before closing it and skips the close when the shutdown
    fails, as it does once the peer has gone (a refused TLS handshake, an abort): the socket
    would then leak until the garbage collector warns about it.
    """
    transport = event.assoc.dul.socket
    if transport is not None and transport.socket is not None:
        transport.socket.close()


NODELAY = (evt.EVT_CONN_OPEN, set_nodelay)
CLOSE = (evt.EVT_CONN_CLOSE, close_socket)


def settle_reactor(assoc: Association) -> None:
    """Pause the association's reactor for the next `send_c_*()` (pynetdicom issue #875).

    pynetdicom pauses its reactor thread by clearing a checkpoint, then polling a flag that
    the reactor also raises for an instant while it passes an open checkpoint. If the GIL
    keeps the reactor from running just then (a node and its clients share one process
    here), the reactor later takes the first response off the queue and drops it as an
    "unexpected service message": a C-FIND loses a match, a C-STORE waits out its timeout.
    Once the flag has stayed raised for a few milliseconds the reactor is parked at the
    checkpoint, and pynetdicom's own check has nothing left to race with.
    """
    assoc._reactor_checkpoint.clear()
    deadline = time.monotonic() + TIMEOUT
    paused_since: float | None = None
    while assoc.is_established and time.monotonic() < deadline:
        now = time.monotonic()
        if not assoc._is_paused:
            paused_since = None
        elif paused_since is None:
            paused_since = now
        elif now - paused_since >= 0.005:
            return
        time.sleep(0.0005)


def make_ae(aet: str = "TESTSCU") -> AE:
    ae = AE(ae_title=aet)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = TIMEOUT
    return ae


@contextmanager
def association(
    port: int,
    contexts: Sequence[Any],
    *,
    aet: str = "TESTSCU",
    called: str = "OPENPACS",
    tls_args: Any = None,
    roles: Sequence[Any] = (),
    evt_handlers: Sequence[Any] = (),
) -> Iterator[Association]:
    """An established association requesting `contexts` (SOP classes or (class, syntaxes))."""
    ae = make_ae(aet)
    for context in contexts:
        if isinstance(context, tuple):
            ae.add_requested_context(*context)
        else:
            ae.add_requested_context(context)
    assoc = ae.associate(
        HOST,
        port,
        ae_title=called,
        tls_args=tls_args,
        ext_neg=list(roles) or None,
        evt_handlers=[NODELAY, CLOSE, *evt_handlers],
    )
    if not assoc.is_established:
        raise ConnectionError(f"association with 127.0.0.1:{port} was not established")
    try:
        yield assoc
    finally:
        if assoc.is_established:
            assoc.release()


def echo(port: int, **kwargs: Any) -> int:
    with association(port, [Verification], **kwargs) as assoc:
        settle_reactor(assoc)
        return int(assoc.send_c_echo().Status)


def store(port: int, items: Iterable[Path | Dataset], **kwargs: Any) -> list[Dataset]:
    """C-STORE each file or dataset in its own transfer syntax; the response statuses.

    One presentation context per (SOP class, transfer syntax), since an acceptor picks a
    single syntax per context; more than 120 pairs are spread over several associations.
    """
    loaded = [dcmread(item) if isinstance(item, Path) else item for item in items]
    pairs = sorted({(str(d.SOPClassUID), str(d.file_meta.TransferSyntaxUID)) for d in loaded})
    statuses: dict[int, Dataset] = {}
    for start in range(0, len(pairs), 120):
        batch = set(pairs[start : start + 120])
        requested = [(sop, [ts]) for sop, ts in sorted(batch)]
        with association(port, requested, **kwargs) as assoc:
            for position, dataset in enumerate(loaded):
                pair = (str(dataset.SOPClassUID), str(dataset.file_meta.TransferSyntaxUID))
                if pair in batch:
                    settle_reactor(assoc)
                    statuses[position] = assoc.send_c_store(dataset)
    return [statuses[position] for position in range(len(loaded))]


def find(
    port: int, identifier: Dataset, *, model: str = "study", **kwargs: Any
) -> tuple[list[Dataset], Dataset]:
    """C-FIND: the matches, and the final status dataset."""
    with association(port, [MODELS[model][0]], **kwargs) as assoc:
        return find_on(assoc, identifier, model=model)


def find_on(
    assoc: Association, identifier: Dataset, *, model: str = "study", msg_id: int = 1
) -> tuple[list[Dataset], Dataset]:
    """C-FIND over an established association: the matches, and the final status dataset."""
    sop_class = MODELS[model][0]
    matches: list[Dataset] = []
    final = Dataset()
    settle_reactor(assoc)
    for status, found in assoc.send_c_find(identifier, sop_class, msg_id=msg_id):
        if status and status.Status in (0xFF00, 0xFF01):
            matches.append(found)
        else:
            final = status
    return matches, final


def get_on(
    assoc: Association, identifier: Dataset, *, model: str = "study", msg_id: int = 1
) -> list[tuple[Dataset, Dataset | None]]:
    """C-GET over an established association (bound to a `Received` for its C-STOREs):
    every (status, identifier) response, the final one last. A final warning or failure
    carries the Failed SOP Instance UID List in its identifier."""
    settle_reactor(assoc)
    return list(assoc.send_c_get(identifier, MODELS[model][1], msg_id=msg_id))


def move_on(
    assoc: Association,
    identifier: Dataset,
    destination: str,
    *,
    model: str = "study",
    msg_id: int = 1,
) -> list[tuple[Dataset, Dataset | None]]:
    """C-MOVE over an established association: every (status, identifier) response."""
    sop_class = MODELS[model][2]
    settle_reactor(assoc)
    return list(assoc.send_c_move(identifier, destination, sop_class, msg_id=msg_id))


@dataclass
class Received:
    datasets: list[Dataset] = field(default_factory=list)
    transfer_syntaxes: list[str] = field(default_factory=list)
    peer_ports: list[int] = field(default_factory=list)
    """The sender's port of each dataset's association."""
    originators: list[tuple[str, int | None]] = field(default_factory=list)
    """Each C-STORE's Move Originator AE title and Message ID (empty, None: not a C-MOVE's)."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    delay: float = 0.0
    """Seconds each C-STORE takes to answer (a slow receiver)."""

    def handle(self, event: Any) -> int:
        if self.delay:
            time.sleep(self.delay)
        dataset = event.dataset
        dataset.file_meta = event.file_meta
        with self.lock:
            self.datasets.append(dataset)
            self.transfer_syntaxes.append(str(event.context.transfer_syntax))
            self.peer_ports.append(int(event.assoc.requestor.port))
            request = event.request
            self.originators.append(
                (
                    str(request.MoveOriginatorApplicationEntityTitle or "").strip(),
                    request.MoveOriginatorMessageID,
                )
            )
        return 0x0000


def get(
    port: int,
    identifier: Dataset,
    storage: Sequence[tuple[str, Sequence[str]]],
    *,
    model: str = "study",
    **kwargs: Any,
) -> tuple[list[Dataset], Received]:
    """C-GET with the given (SOP class, transfer syntaxes) storage contexts accepted.

    Returns every C-GET response status and what was received.
    """
    sop_class = MODELS[model][1]
    received = Received()
    ae = make_ae(kwargs.pop("aet", "TESTSCU"))
    ae.add_requested_context(sop_class)
    roles = []
    for abstract, syntaxes in storage:
        ae.add_requested_context(abstract, list(syntaxes))
        roles.append(build_role(abstract, scp_role=True))
    assoc = ae.associate(
        HOST,
        port,
        ae_title="OPENPACS",
        ext_neg=roles,
        evt_handlers=[NODELAY, CLOSE, (evt.EVT_C_STORE, received.handle)],
        **kwargs,
    )
    if not assoc.is_established:
        raise ConnectionError("C-GET association was not established")
    try:
        settle_reactor(assoc)
        responses = [status for status, _ in assoc.send_c_get(identifier, sop_class)]
    finally:
        assoc.release()
    return responses, received


def move(
    port: int, identifier: Dataset, destination: str, *, model: str = "study", **kwargs: Any
) -> list[Dataset]:
    sop_class = MODELS[model][2]
    with association(port, [sop_class], **kwargs) as assoc:
        settle_reactor(assoc)
        return [status for status, _ in assoc.send_c_move(identifier, destination, sop_class)]


@contextmanager
def storage_scp(
    aet: str = "MOVESCP",
    *,
    transfer_syntaxes: Sequence[str] = ALL_TRANSFER_SYNTAXES,
    max_associations: int = 10,
    delay: float = 0.0,
    ssl_context: ssl.SSLContext | None = None,
) -> Iterator[tuple[int, Received]]:
    """A pynetdicom Storage SCP on a free loopback port; yields (port, received). With
    `delay` each C-STORE takes that many seconds to answer; with `ssl_context`, over TLS.

    Like every storage SCP in the field (storescp, Orthanc) it also answers Verification."""
    received = Received(delay=delay)
    ae = make_ae(aet)
    ae.maximum_associations = max_associations
    ae.add_supported_context(Verification)
    for context in AllStoragePresentationContexts:
        ae.add_supported_context(context.abstract_syntax, list(transfer_syntaxes))
    server = ae.start_server(
        (HOST, 0),
        block=False,
        evt_handlers=[NODELAY, CLOSE, (evt.EVT_C_STORE, received.handle)],
        ssl_context=ssl_context,
    )
    try:
        yield server.server_address[1], received
    finally:
        server.shutdown()


def identifier(level: str, **keys: Any) -> Dataset:
    dataset = Dataset()
    dataset.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(dataset, keyword, value)
    return dataset
