"""An engine listener with a minimal C-ECHO and C-STORE handler, for the engine's own tests.

The services are not part of it: the handler answers C-ECHO and keeps C-STORE data sets in
memory, enough to drive association, P-DATA both ways, release and abort end to end.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet, Verification

from openpacs.config import DicomSettings
from openpacs.dimse import messages
from openpacs.dimse.association import Association, FileSlice, Message
from openpacs.dimse.listener import Listener
from openpacs.dimse.negotiation import Capabilities

HOST = "127.0.0.1"
SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
CAPS = Capabilities(
    "ENGINE",
    {
        Verification: SYNTAXES,
        CTImageStorage: SYNTAXES,
        StudyRootQueryRetrieveInformationModelGet: SYNTAXES,
    },
    max_pdu=16384,
    scp_roles=frozenset({CTImageStorage}),
)


class FileSink:
    """A data set spooled to a file as it arrives."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = path.open("wb")

    def write(self, fragment: memoryview) -> None:
        self.file.write(fragment)

    def close(self) -> Path:
        self.file.close()
        return self.path

    def discard(self) -> None:
        self.file.close()
        self.path.unlink(missing_ok=True)


@dataclass(frozen=True)
class Served:
    """What a C-GET sends back: a stored file's data set, straight from the file."""

    part: FileSlice
    sop_class: str
    sop_instance: str


class EchoStoreHandler:
    """C-ECHO answered with Success; C-STORE data sets kept in `stored` (spooled to files in
    `spool` when set), answered Success; C-GET answered with one C-STORE of `served`."""

    stored: ClassVar[dict[str, bytes]] = {}
    spool: ClassVar[Path | None] = None
    served: ClassVar[Served | None] = None

    def __init__(self, assoc: Association) -> None:
        self.tasks: set[asyncio.Task[None]] = set()
        self.store_response: asyncio.Future[Message] | None = None

    def data_sink(
        self, assoc: Association, context_id: int, command: messages.Command
    ) -> FileSink | None:
        if self.spool is None:
            return None
        return FileSink(self.spool / str(command["AffectedSOPInstanceUID"]))

    def message_received(self, assoc: Association, message: Message) -> None:
        command = message.command
        reply: dict[str, object] = {"MessageIDBeingRespondedTo": command.message_id, "Status": 0}
        if command.command_field == messages.C_ECHO_RQ:
            reply |= {"CommandField": messages.C_ECHO_RSP, "AffectedSOPClassUID": Verification}
        elif command.command_field == messages.C_STORE_RQ:
            uid = str(command["AffectedSOPInstanceUID"])
            data = message.dataset
            self.stored[uid] = data.read_bytes() if isinstance(data, Path) else data or b""
            reply |= {
                "CommandField": messages.C_STORE_RSP,
                "AffectedSOPClassUID": command["AffectedSOPClassUID"],
                "AffectedSOPInstanceUID": uid,
            }
        elif command.command_field == messages.C_STORE_RSP and self.store_response:
            self.store_response.set_result(message)
            return
        elif command.command_field == messages.C_GET_RQ:
            self._start(self._get(assoc, message))
            return
        else:
            assoc.abort()
            return
        self._start(assoc.send_message(message.context_id, reply))

    def _start(self, work: Coroutine[object, object, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _get(self, assoc: Association, request: Message) -> None:
        served = self.served
        assert served is not None
        store_context = next(
            c.id for c in assoc.contexts.values() if c.abstract_syntax == served.sop_class
        )
        self.store_response = asyncio.get_running_loop().create_future()
        store = {
            "AffectedSOPClassUID": served.sop_class,
            "CommandField": messages.C_STORE_RQ,
            "MessageID": 1,
            "Priority": 0,
            "AffectedSOPInstanceUID": served.sop_instance,
        }
        await assoc.send_message(store_context, store, served.part)
        response = await asyncio.wait_for(self.store_response, 10)
        ok = response.command["Status"] == 0
        final = {
            "AffectedSOPClassUID": request.command["AffectedSOPClassUID"],
            "CommandField": messages.C_GET_RSP,
            "MessageIDBeingRespondedTo": request.command.message_id,
            "Status": 0 if ok else 0xB000,
            "NumberOfRemainingSuboperations": 0,
            "NumberOfCompletedSuboperations": int(ok),
            "NumberOfFailedSuboperations": int(not ok),
            "NumberOfWarningSuboperations": 0,
        }
        await assoc.send_message(request.context_id, final)

    def association_ended(self, assoc: Association, how: str) -> None:
        pass


class Engine:
    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.events: list[tuple[str, str]] = []
        self.associations: list[Association] = []
        self._changed = threading.Condition()

    @property
    def port(self) -> int:
        return self.listener.port_of("dicom")

    def record(self, event: str, assoc: Association, detail: str) -> None:
        with self._changed:
            self.events.append((event, detail))
            if event == "accepted":
                self.associations.append(assoc)
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
def engine(
    caps: Capabilities = CAPS,
    *,
    port: int = 0,
    share_ports: bool = False,
    grace: float = 2.0,
    **dicom: object,
) -> Iterator[Engine]:
    """A running listener on `port` (0: any free one) with `[dicom]` settings `dicom`."""
    settings = DicomSettings(**({"aet": "ENGINE", "port": 104} | dicom))  # type: ignore[arg-type]
    box: list[Engine] = []
    listener = Listener(
        settings,
        caps,
        EchoStoreHandler,
        host=HOST,
        share_ports=share_ports,
        on_association=lambda e, a, d: box[0].record(e, a, d),
    )
    box.append(Engine(listener))
    ports = {"dicom": port} | ({"dicom-tls": 0} if settings.tls_port else {})
    listener.start(ports=ports)
    try:
        yield box[0]
    finally:
        listener.stop(grace_seconds=grace)


def pynetdicom_ae(max_pdu: int = 16384) -> AE:
    ae = AE(ae_title="PEER")
    ae.maximum_pdu_size = max_pdu
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    ae.add_requested_context(Verification)
    ae.add_requested_context(CTImageStorage, SYNTAXES)
    return ae
