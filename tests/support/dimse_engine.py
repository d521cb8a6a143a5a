"""An engine listener with a minimal C-ECHO and C-STORE handler, for the engine's own tests.

The services are not part of it: the handler answers C-ECHO and keeps C-STORE data sets in
memory, enough to drive association, P-DATA both ways, release and abort end to end.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.sop_class import Verification

from openpacs.config import DicomSettings
from openpacs.dimse import messages
from openpacs.dimse.association import Association, Message
from openpacs.dimse.listener import Listener
from openpacs.dimse.negotiation import Capabilities

HOST = "127.0.0.1"
SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
CAPS = Capabilities("ENGINE", {Verification: SYNTAXES, CTImageStorage: SYNTAXES}, max_pdu=16384)


class EchoStoreHandler:
    """C-ECHO answered with Success; C-STORE data sets kept in `stored`, answered Success."""

    stored: dict[str, bytes] = {}

    def __init__(self, assoc: Association) -> None:
        self.tasks: set[asyncio.Task[None]] = set()

    def data_sink(self, assoc: Association, context_id: int, command: messages.Command) -> None:
        return None

    def message_received(self, assoc: Association, message: Message) -> None:
        command = message.command
        reply: dict[str, object] = {"MessageIDBeingRespondedTo": command.message_id, "Status": 0}
        if command.command_field == messages.C_ECHO_RQ:
            reply |= {"CommandField": messages.C_ECHO_RSP, "AffectedSOPClassUID": Verification}
        elif command.command_field == messages.C_STORE_RQ:
            assert isinstance(message.dataset, bytes)
            uid = str(command["AffectedSOPInstanceUID"])
            self.stored[uid] = message.dataset
            reply |= {
                "CommandField": messages.C_STORE_RSP,
                "AffectedSOPClassUID": command["AffectedSOPClassUID"],
                "AffectedSOPInstanceUID": uid,
            }
        else:
            assoc.abort()
            return
        task = asyncio.get_running_loop().create_task(assoc.send_message(message.context_id, reply))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def association_ended(self, assoc: Association, how: str) -> None:
        pass


class Engine:
    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.events: list[tuple[str, str]] = []
        self._changed = threading.Condition()

    @property
    def port(self) -> int:
        return self.listener.port_of("dicom")

    def record(self, event: str, assoc: Association, detail: str) -> None:
        with self._changed:
            self.events.append((event, detail))
            self._changed.notify_all()

    def wait_for(self, event: str, timeout: float = 10.0, *, since: int = 0) -> str:
        """The detail of the first `event` recorded from index `since`, waiting up to
        `timeout`."""
        with self._changed:
            found = self._changed.wait_for(  # bounded by timeout
                lambda: any(e == event for e, _ in self.events[since:]), timeout=timeout
            )
            assert found, f"no {event!r} within {timeout}s: {self.events}"
            return next(d for e, d in self.events[since:] if e == event)


@contextmanager
def engine(caps: Capabilities = CAPS, **dicom: object) -> Iterator[Engine]:
    settings = DicomSettings(**({"aet": "ENGINE", "port": 104} | dicom))  # type: ignore[arg-type]
    box: list[Engine] = []
    listener = Listener(
        settings,
        caps,
        EchoStoreHandler,
        host=HOST,
        on_association=lambda e, a, d: box[0].record(e, a, d),
    )
    box.append(Engine(listener))
    ports = {"dicom": 0} | ({"dicom-tls": 0} if settings.tls_port else {})
    listener.start(ports=ports)
    try:
        yield box[0]
    finally:
        listener.stop(grace_seconds=2)


def pynetdicom_ae(max_pdu: int = 16384) -> AE:
    ae = AE(ae_title="PEER")
    ae.maximum_pdu_size = max_pdu
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    ae.add_requested_context(Verification)
    ae.add_requested_context(CTImageStorage, SYNTAXES)
    return ae
