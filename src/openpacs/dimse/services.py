"""The DIMSE services of one association on the asyncio engine: C-ECHO, C-STORE, C-FIND,
C-GET and C-MOVE as an SCP.

One operation runs at a time (asynchronous operations window 1): a request that arrives while
another runs waits its turn. A C-CANCEL-RQ reaches the running (or a waiting) operation by its
MessageIDBeingRespondedTo; a C-STORE-RSP reaches the running C-GET, whose sub-operations go
out on this association. Blocking work (storing, index queries, reading and transcoding
files, identifier codec) runs in the executor, never on the event loop; the handlers of
`openpacs.dimse.handlers` decide every status, log line and audit event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pydicom.dataset import Dataset

from openpacs.archive.suboperations import SubOperationCounts, SubOperations
from openpacs.dimse import messages as m
from openpacs.dimse.association import AssociationClosed
from openpacs.dimse.datasets import decode, encode
from openpacs.dimse.handlers import (
    CANCELLED,
    PENDING,
    SUCCESS,
    UNEXPECTED,
    DimseContext,
    audit_uids,
    handle_echo,
    handle_find,
    handle_store,
    log_operation,
    peer_text,
    refusal,
    status_dataset,
)
from openpacs.dimse.move import move_instances
from openpacs.dimse.peer_policy import NOT_AUTHORIZED
from openpacs.dimse.request import Peer, Request
from openpacs.dimse.retrieve import retrieve_query
from openpacs.dimse.sending import payload_for, store_request, store_syntaxes
from openpacs.dimse.spool import StagingFile, part10_header
from openpacs.errors import OpenPacsError
from openpacs.tls import common_name

log = logging.getLogger("openpacs.dimse")

T = TypeVar("T")

UNRECOGNIZED_OPERATION = 0x0211
SOP_CLASS_NOT_SUPPORTED = 0x0122
_REQUESTS = frozenset({m.C_STORE_RQ, m.C_ECHO_RQ, m.C_FIND_RQ, m.C_GET_RQ, m.C_MOVE_RQ})
OUT_OF_RESOURCES = 0xA700
_FIND_BATCH = 64  # responses built per trip to the executor


class AssociationLike(Protocol):
    """What the services use of the engine's `Association`."""

    calling_aet: str
    called_aet: str
    peer_host: str
    peer_port: int
    peer_certificate: dict[str, Any] | None
    contexts: Mapping[int, Any]

    async def send_message(
        self, context_id: int, command: Mapping[str, object], dataset: Any = None
    ) -> None: ...

    def abort(self, source: int = 0, reason: int = 0) -> None: ...


@dataclass
class _Operation:
    message_id: int
    cancelled: bool = False
    store_responses: asyncio.Queue[m.Command] | None = None


def peer_of(assoc: AssociationLike) -> Peer:
    certificate = assoc.peer_certificate
    return Peer(
        calling_aet=assoc.calling_aet.strip(),
        called_aet=assoc.called_aet.strip(),
        host=assoc.peer_host,
        port=assoc.peer_port,
        tls_subject=common_name(certificate) if certificate else None,
    )


@dataclass
class Services:
    """The engine's MessageHandler for one association."""

    context: DimseContext
    assoc: AssociationLike
    executor: Executor | None = None
    _queue: deque[Any] = field(default_factory=deque)
    _task: asyncio.Task[None] | None = None
    _running: _Operation | None = None
    _cancelled_ids: set[int] = field(default_factory=set)
    _spooled: dict[Path, StagingFile] = field(default_factory=dict)
    _message_id: int = 0

    def __post_init__(self) -> None:
        self.peer = peer_of(self.assoc)

    # -- MessageHandler ------------------------------------------------------------------

    def data_sink(self, assoc: Any, context_id: int, command: m.Command) -> StagingFile | None:
        if command.command_field != m.C_STORE_RQ:
            return None
        accepted = assoc.contexts.get(context_id)
        if accepted is None:
            return None
        header = part10_header(
            _uid(command, "AffectedSOPClassUID"),
            _uid(command, "AffectedSOPInstanceUID"),
            accepted.transfer_syntax,
            self.peer.calling_aet,
        )
        sink = StagingFile(self.context.archive.staging_dir(), header)
        self._spooled[sink.path] = sink
        return sink

    def message_received(self, assoc: Any, message: Any) -> None:
        command: m.Command = message.command
        field_ = command.command_field
        if field_ == m.C_CANCEL_RQ:
            target = command.get("MessageIDBeingRespondedTo")
            running = self._running
            if running is not None and running.message_id == target:
                running.cancelled = True
            elif isinstance(target, int):
                self._cancelled_ids.add(target)
            return
        if field_ == m.C_STORE_RSP:
            running = self._running
            if running is not None and running.store_responses is not None:
                running.store_responses.put_nowait(command)
            else:
                log.warning("unexpected C-STORE-RSP %s", peer_text(Request(self.peer, command)))
            return
        self._queue.append(message)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._serve())

    def association_ended(self, assoc: Any, how: str) -> None:
        if self._running is not None:
            self._running.cancelled = True
        if self._task is not None and how != "released":
            self._task.cancel()
        while self._queue:
            self._discard(self._queue.popleft())

    # -- the queue -------------------------------------------------------------------------

    async def _serve(self) -> None:
        while self._queue:
            message = self._queue.popleft()
            try:
                await self._dispatch(message)
            except asyncio.CancelledError:
                self._discard(message)
                raise
            except AssociationClosed:  # the peer went away: nobody left to answer
                self._discard(message)
                return
            except Exception:
                log.exception("DIMSE operation failed unexpectedly %s", self._peer_text())
                self._discard(message)
                self.assoc.abort()
                return

    async def _dispatch(self, message: Any) -> None:
        command: m.Command = message.command
        field_ = command.command_field
        accepted = self.assoc.contexts.get(message.context_id)
        if field_ in _REQUESTS and accepted is not None and not accepted.scu_role:
            # PS3.7 D.3.3.4: a requestor that declined the SCU role on a context (keeping
            # only the SCP role, as a C-GET's storage contexts do) may not invoke on it.
            log.warning(
                "refused 0x%04X on context %d: the requestor is not SCU there %s",
                field_,
                message.context_id,
                self._peer_text(),
            )
            self._discard(message)
            await self._respond(
                message, field_ | 0x8000, SOP_CLASS_NOT_SUPPORTED, comment="not SCU on this context"
            )
            return
        if field_ == m.C_STORE_RQ:
            await self._store(message)
        elif field_ == m.C_ECHO_RQ:
            status = handle_echo(Request(self.peer, command), self.context)
            await self._respond(message, m.C_ECHO_RSP, status)
        elif field_ == m.C_FIND_RQ:
            await self._find(message)
        elif field_ in (m.C_GET_RQ, m.C_MOVE_RQ):
            await self._retrieve(message)
        elif field_ & 0x8000 == 0:
            log.warning("unrecognized operation 0x%04X %s", field_, self._peer_text())
            await self._respond(message, field_ | 0x8000, UNRECOGNIZED_OPERATION)
        else:
            log.warning("unexpected response 0x%04X %s", field_, self._peer_text())

    def _discard(self, message: Any) -> None:
        dataset = getattr(message, "dataset", None)
        if isinstance(dataset, Path):
            sink = self._spooled.pop(dataset, None)
            if sink is not None:
                sink.discard()
            else:
                dataset.unlink(missing_ok=True)

    # -- C-STORE ---------------------------------------------------------------------------

    async def _store(self, message: Any) -> None:
        command: m.Command = message.command
        error = getattr(message, "error", None)
        if error is not None:  # the data set could not be spooled (a full disk)
            self._discard(message)
            log.warning("C-STORE not received %s reason=%s", self._peer_text(), error)
            await self._respond(
                message,
                m.C_STORE_RSP,
                OUT_OF_RESOURCES,
                comment=error,
                AffectedSOPInstanceUID=_uid(command, "AffectedSOPInstanceUID"),
            )
            return
        path, sink = await self._spooled_file(message)
        digest = (sink.size, sink.sha256) if sink is not None else None
        request = Request(self.peer, command, dataset_path=path, digest=digest)
        status = await self._run(_finish_and_store, sink, request, self.context)
        if path is not None:
            path.unlink(missing_ok=True)  # refused before the archive took it
        await self._respond(
            message,
            m.C_STORE_RSP,
            int(status.Status),
            comment=status.get("ErrorComment"),
            AffectedSOPInstanceUID=_uid(command, "AffectedSOPInstanceUID"),
        )

    async def _spooled_file(self, message: Any) -> tuple[Path | None, StagingFile | None]:
        dataset = message.dataset
        if isinstance(dataset, Path):
            return dataset, self._spooled.pop(dataset, None)
        accepted = self.assoc.contexts.get(message.context_id)
        if dataset is None or accepted is None:
            return None, None
        header = part10_header(
            _uid(message.command, "AffectedSOPClassUID"),
            _uid(message.command, "AffectedSOPInstanceUID"),
            accepted.transfer_syntax,
            self.peer.calling_aet,
        )
        folder = self.context.archive.staging_dir()
        return await self._run(_write_file, folder, header, bytes(dataset)), None

    # -- C-FIND ----------------------------------------------------------------------------

    async def _find(self, message: Any) -> None:
        operation = self._start(message)
        syntax = self._syntax(message)
        request = self._request(message, operation)
        responses = handle_find(request, self.context)

        def batch() -> list[tuple[Any, bytes | None]]:
            return [
                (status, identifier.encoded(syntax) if identifier is not None else None)
                for status, identifier in islice(responses, _FIND_BATCH)
            ]

        try:
            while items := await self._run(batch):
                for status, data in items:
                    if data is not None:
                        await self._respond(message, m.C_FIND_RSP, PENDING, dataset=data)
                        continue
                    code, comment = _status_of(status)
                    await self._respond(message, m.C_FIND_RSP, code, comment=comment)
                    return
            await self._respond(message, m.C_FIND_RSP, SUCCESS)
        finally:
            with contextlib.suppress(ValueError):  # still running in the pool: it ends there
                responses.close()
            self._running = None

    # -- C-GET and C-MOVE ------------------------------------------------------------------

    async def _retrieve(self, message: Any) -> None:
        command: m.Command = message.command
        get = command.command_field == m.C_GET_RQ
        operation = self._start(message, sub_operations=get)
        name = "C-GET" if get else "C-MOVE"
        rsp = m.C_GET_RSP if get else m.C_MOVE_RSP
        started = time.perf_counter()
        request = self._request(message, operation)
        destination = None if get else _text(command.get("MoveDestination", ""))
        try:
            refused = await self._run(refusal, request, self.context, name, destination)
            if refused is not None:
                log_operation(request, name, NOT_AUTHORIZED, started)
                status = NOT_AUTHORIZED if get else 0xA801
                await self._respond(message, rsp, status, comment=refused)
                return
            audit = (self.context.archive, audit_uids(request))
            if destination is not None:
                audit[1]["resource"] = f"destination={destination}"
            if not get and self.context.remotes.get(destination or "") is None:
                log.warning("C-MOVE unknown destination=%s %s", destination, self._peer_text())
                log_operation(request, name, 0xA801, started, audit=audit, destination=destination)
                await self._respond(message, rsp, 0xA801, comment="unknown destination")
                return
            try:
                instances = await self._run(_instances_for, self.context, request)
            except OpenPacsError as exc:
                log.warning("%s refused %s reason=%s", name, self._peer_text(), exc.reason)
                log_operation(request, name, exc.dimse_status, started, audit=audit)
                await self._respond(message, rsp, exc.dimse_status, comment=exc.reason)
                return
            except Exception:
                log.exception("%s failed unexpectedly %s", name, self._peer_text())
                log_operation(request, name, UNEXPECTED, started, audit=audit)
                await self._respond(message, rsp, UNEXPECTED, comment="internal error")
                return
            tally = SubOperations()
            try:
                if get:
                    await self._get(message, operation, instances, tally)
                else:
                    await self._move(message, operation, instances, tally, destination or "")
            except OpenPacsError as exc:
                log.warning("%s failed %s reason=%s", name, self._peer_text(), exc.reason)
                log_operation(request, name, exc.dimse_status, started, audit=audit)
                await self._respond(message, rsp, exc.dimse_status, comment=exc.reason)
                return
            counts = tally.counts()
            final = CANCELLED if operation.cancelled else SUCCESS
            extra = {"destination": destination} if destination else {}
            if final == SUCCESS:
                audit[1]["detail"] = f"instances={len(instances)}"
            log_operation(request, name, final, started, audit=audit, counts=counts, **extra)
            await self._final(message, rsp, final, counts, len(instances))
        finally:
            self._running = None

    async def _get(
        self,
        message: Any,
        operation: _Operation,
        instances: list[Any],
        tally: SubOperations,
    ) -> None:
        assert operation.store_responses is not None
        timeout = self.context.dimse_timeout
        for done, instance in enumerate(instances):
            if operation.cancelled:
                return
            syntaxes = store_syntaxes(self.assoc.contexts.values(), instance, as_scp=True)
            tally.sent(instance.sop_uid)
            payload = await self._run(payload_for, self.context.archive, instance, syntaxes)
            if payload is not None:
                context_id, data = payload
                await self.assoc.send_message(
                    context_id, store_request(instance, self._next_id()), data
                )
                try:
                    response = await asyncio.wait_for(operation.store_responses.get(), timeout)
                except TimeoutError:
                    log.warning("C-GET sub-operation unanswered %s", self._peer_text())
                    self.assoc.abort()
                    raise
                tally.answered(
                    _text(response.get("AffectedSOPInstanceUID", instance.sop_uid)),
                    int(response.get("Status", UNEXPECTED)),  # type: ignore[arg-type]
                )
            counts = tally.counts()
            await self._pending(message, m.C_GET_RSP, counts, len(instances) - done - 1)

    async def _move(
        self,
        message: Any,
        operation: _Operation,
        instances: list[Any],
        tally: SubOperations,
        destination: str,
    ) -> None:
        if not instances:
            return
        progress: asyncio.Queue[int] = asyncio.Queue()
        job = asyncio.ensure_future(
            move_instances(
                self.context,
                self.context.remotes[destination],
                instances,
                tally,
                originator=(self.peer.calling_aet, operation.message_id),
                cancelled=lambda: operation.cancelled,
                progress=progress.put_nowait,
                run=self._run,
            )
        )
        try:
            while not job.done() or not progress.empty():
                getter = asyncio.ensure_future(progress.get())
                await asyncio.wait({getter, job}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    continue
                await self._pending(message, m.C_MOVE_RSP, tally.counts(), getter.result())
        finally:
            if not job.done():  # the C-MOVE's own association ended: stop sending
                operation.cancelled = True
                job.cancel()
        await job

    async def _pending(
        self, message: Any, rsp: int, counts: SubOperationCounts, remaining: int
    ) -> None:
        await self._respond(message, rsp, PENDING, **_counts(counts, remaining))

    async def _final(
        self, message: Any, rsp: int, status: int, counts: SubOperationCounts, total: int
    ) -> None:
        code = counts.final_status if status == SUCCESS else status
        fields = _counts(counts, None)
        if status == CANCELLED:
            fields["NumberOfRemainingSuboperations"] = max(
                0, total - counts.completed - counts.failed - counts.warning
            )
        data = None
        if counts.failed_uids:
            failed = Dataset()
            failed.FailedSOPInstanceUIDList = list(counts.failed_uids)
            data = encode(failed, self._syntax(message))
        await self._respond(message, rsp, code, dataset=data, **fields)

    # -- helpers ---------------------------------------------------------------------------

    def _start(self, message: Any, *, sub_operations: bool = False) -> _Operation:
        message_id = message.command.message_id
        operation = _Operation(message_id, cancelled=message_id in self._cancelled_ids)
        self._cancelled_ids.discard(message_id)
        if sub_operations:
            operation.store_responses = asyncio.Queue()
        self._running = operation
        return operation

    def _request(self, message: Any, operation: _Operation) -> Request:
        syntax = self._syntax(message)
        data = message.dataset
        if isinstance(data, Path):
            data = data.read_bytes()

        def identifier() -> Dataset:
            if data is None:
                raise ValueError("the request carries no identifier")
            return decode(data, syntax)

        return Request(
            self.peer,
            message.command,
            load_identifier=identifier,
            cancelled=lambda: operation.cancelled,
        )

    def _syntax(self, message: Any) -> str:
        accepted = self.assoc.contexts.get(message.context_id)
        return accepted.transfer_syntax if accepted is not None else "1.2.840.10008.1.2"

    def _next_id(self) -> int:
        self._message_id = self._message_id % 0xFFFF + 1
        return self._message_id

    def _peer_text(self) -> str:
        return f"calling={self.peer.calling_aet} peer={self.peer.address}"

    async def _respond(
        self,
        message: Any,
        command_field: int,
        status: int,
        *,
        comment: str | None = None,
        dataset: bytes | None = None,
        **fields: object,
    ) -> None:
        command: m.Command = message.command
        response: dict[str, object] = {
            "CommandField": command_field,
            "MessageIDBeingRespondedTo": command.message_id,
            "CommandDataSetType": m.HAS_DATASET if dataset is not None else m.NO_DATASET,
            "Status": status,
            **fields,
        }
        sop_class = command.get("AffectedSOPClassUID")
        if sop_class:
            response["AffectedSOPClassUID"] = _text(sop_class)
        if comment and status not in (SUCCESS, PENDING):
            response["ErrorComment"] = comment[:64]
        await self.assoc.send_message(message.context_id, response, dataset)

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, partial(function, *args))


def _counts(counts: SubOperationCounts, remaining: int | None) -> dict[str, object]:
    fields: dict[str, object] = {
        "NumberOfCompletedSuboperations": counts.completed,
        "NumberOfFailedSuboperations": counts.failed,
        "NumberOfWarningSuboperations": counts.warning,
    }
    if remaining is not None:
        fields["NumberOfRemainingSuboperations"] = remaining
    return fields


def _status_of(status: Any) -> tuple[int, str | None]:
    if isinstance(status, Dataset):
        return int(status.Status), status.get("ErrorComment")
    return int(status), None


def _text(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    return str(value).strip("\0 ")


def _uid(command: Mapping[str, object], keyword: str) -> str:
    return _text(command.get(keyword, ""))[:64]


def _instances_for(context: DimseContext, request: Request) -> list[Any]:
    return context.archive.instances_for(retrieve_query(request.identifier))


def _finish_and_store(sink: StagingFile | None, request: Request, context: DimseContext) -> Any:
    """Store a received data set, its staging file first completed (in the pool)."""
    if sink is not None:
        try:
            sink.finish()
        except OSError as exc:
            sink.discard()
            log.warning("C-STORE not received %s reason=%s", peer_text(request), exc)
            return status_dataset(OUT_OF_RESOURCES, f"cannot write the data set: {exc.strerror}")
    return handle_store(request, context)


def _write_file(folder: Path | None, header: bytes, data: bytes) -> Path:
    descriptor, name = tempfile.mkstemp(suffix=".dcm", dir=folder)
    with os.fdopen(descriptor, "wb") as file:
        file.write(header)
        file.write(data)
    return Path(name)
