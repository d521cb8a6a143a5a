"""pynetdicom event handlers: an event in, one archive call, a status out.

Every operation logs one line with the calling AE, the peer, the status and the duration; no
patient data and no dataset contents are logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import evt
from pynetdicom.events import Event

from openpacs.archive.service import Archive
from openpacs.archive.suboperations import SubOperationCounts, SubOperations, operation_event
from openpacs.config import DimseOperation
from openpacs.dicom.levels import Level
from openpacs.dicom.query import query_from_identifier
from openpacs.dimse.find_response import find_response
from openpacs.dimse.move_senders import MoveSenders
from openpacs.dimse.peer_policy import NOT_AUTHORIZED, PeerPolicy, caller_of
from openpacs.dimse.retrieve import (
    AcceptedContexts,
    accepted_syntaxes,
    dataset_for,
    move_contexts,
    retrieve_query,
)
from openpacs.errors import InvalidQuery, OpenPacsError
from openpacs.index.records import AuditEvent, Origin

log = logging.getLogger("openpacs.dimse")

PENDING = 0xFF00
CANCELLED = 0xFE00
SUCCESS = 0x0000
_UNEXPECTED = 0xC000
_C_STORE_RSP = 0x8001
_STUDY_ROOT = "1.2.840.10008.5.1.4.1.2.2"
_SENT = Dataset()  # stands for a dataset already handed to pynetdicom, so it can be freed


@dataclass(frozen=True)
class Remote:
    aet: str
    host: str
    port: int
    tls: bool


@dataclass(frozen=True)
class DimseContext:
    """Everything the handlers need, bound once at start-up."""

    archive: Archive
    aet: str
    remotes: Mapping[str, Remote]
    move_association_args: Mapping[str, Any]
    """Extra `AE.associate` arguments for C-MOVE sub-associations (PDU size, handlers)."""
    tls_client_args: Any = None
    """`(ssl_context, server_hostname)` factory input for TLS remotes, or None."""
    move_associations: int = 1
    """Associations a C-MOVE may open to its destination to send sub-operations at once."""
    policy: PeerPolicy | None = None
    """What each calling AE may ask (`[[dicom.peers]]`); None: everything."""


def _peer(event: Event) -> str:
    requestor = event.assoc.requestor
    return f"calling={requestor.ae_title} peer={requestor.address}:{requestor.port}"


_AUDIT_ACTION = {
    "C-ECHO": "echo",
    "C-STORE": "store",
    "C-FIND": "query",
    "C-GET": "download",
    "C-MOVE": "send",
}
_OPERATIONS: dict[str, DimseOperation] = {
    "C-ECHO": "echo",
    "C-STORE": "store",
    "C-FIND": "find",
    "C-GET": "get",
    "C-MOVE": "move",
}


def _refusal(
    event: Event, context: DimseContext, operation: str, destination: str | None = None
) -> str | None:
    """Why the peer may not ask for `operation` (`context.policy`), logged and audited as
    denied with that reason; None when it may."""
    if context.policy is None:
        return None
    caller = caller_of(event.assoc)
    reason = context.policy.refusal(caller, _OPERATIONS[operation], destination)
    if reason is None:
        return None
    log.warning("%s refused %s reason=%s", operation, _peer(event), reason)
    uids = _audit_uids(event) if operation in ("C-FIND", "C-GET", "C-MOVE") else {}
    if operation == "C-STORE":
        uids = {"sop_uid": str(event.request.AffectedSOPInstanceUID)[:64]}
    requestor = event.assoc.requestor
    context.archive.audit.record(
        AuditEvent(
            channel="dimse",
            actor=caller.aet,
            peer=f"{requestor.address}:{requestor.port}",
            action=_AUDIT_ACTION[operation],
            outcome="denied",
            resource=f"destination={destination}" if destination else "",
            detail=reason,
            **uids,
        )
    )
    return reason


def _audit_uids(event: Event) -> dict[str, str]:
    """The identifying keys of a C-FIND/C-GET/C-MOVE identifier, for the audit trail."""
    try:
        identifier = event.identifier
    except Exception:  # an undecodable identifier: the operation itself reports why
        return {}
    uids = {}
    for keyword, field in _AUDIT_KEYS:
        value = identifier.get(keyword)
        if value not in (None, ""):
            uids[field] = str(value)[:512]
    return uids


_AUDIT_KEYS = (
    ("PatientID", "patient_id"),
    ("StudyInstanceUID", "study_uid"),
    ("SeriesInstanceUID", "series_uid"),
    ("SOPInstanceUID", "sop_uid"),
)


def _audit(
    event: Event,
    archive: Archive,
    operation: str,
    status: int,
    counts: SubOperationCounts | None = None,
    **fields: Any,
) -> None:
    requestor = event.assoc.requestor
    base = AuditEvent(
        channel="dimse",
        actor=str(requestor.ae_title).strip(),
        peer=f"{requestor.address}:{requestor.port}",
        action=_AUDIT_ACTION[operation],
        outcome="",
        **fields,
    )
    archive.audit.record(operation_event(base, status, counts))


def _log_operation(
    event: Event,
    operation: str,
    status: int,
    started: float,
    *,
    audit: tuple[Archive, dict[str, Any]] | None = None,
    counts: SubOperationCounts | None = None,
    **extra: Any,
) -> None:
    """One log line per operation and, with `audit` (the archive and the resource's UIDs),
    its audit event: the one audit call of each operation, on every way out of it. A
    retrieve's sub-operation `counts` make its final status and outcome."""
    if audit is not None:
        _audit(event, audit[0], operation, status, counts, **audit[1])
    if counts is not None:
        extra = {**extra, "completed": counts.completed, "failed": counts.failed}
        extra["warning"] = counts.warning
        status = counts.final_status if status == SUCCESS else status
    details = "".join(f" {k}={v}" for k, v in extra.items())
    log.info(
        "op=%s %s status=0x%04X duration_ms=%.1f%s",
        operation,
        _peer(event),
        status,
        (time.perf_counter() - started) * 1000,
        details,
    )


def _status(code: int, comment: str | None = None) -> Dataset:
    status = Dataset()
    status.Status = code
    if comment:
        status.ErrorComment = comment[:64]  # LO: at most 64 characters
    return status


def audit_rejected(event: Event, context: DimseContext) -> None:
    """An association refused (an unknown calling AE title), in the audit trail."""
    caller = caller_of(event.assoc)
    reason = "association rejected"
    if context.policy is not None:
        reason = context.policy.refusal(caller, "echo") or reason
    requestor = event.assoc.requestor
    context.archive.audit.record(
        AuditEvent(
            channel="dimse",
            actor=caller.aet,
            peer=f"{requestor.address}:{requestor.port}",
            action="associate",
            outcome="denied",
            detail=reason,
        )
    )


def handle_echo(event: Event, context: DimseContext) -> int:
    status = NOT_AUTHORIZED if _refusal(event, context, "C-ECHO") else SUCCESS
    _log_operation(event, "C-ECHO", status, time.perf_counter())
    return status


def handle_store(event: Event, context: DimseContext) -> Dataset:
    started = time.perf_counter()
    request = event.request
    uids = {"sop_uid": str(request.AffectedSOPInstanceUID)[:64]}
    refused = _refusal(event, context, "C-STORE")
    if refused is not None:  # pynetdicom removes the received file
        status = _status(NOT_AUTHORIZED, refused)
        _log_operation(event, "C-STORE", status.Status, started)
        return status
    try:
        outcome = context.archive.store_file(
            Path(event.dataset_path),
            sop_class_uid=str(request.AffectedSOPClassUID),
            sop_uid=str(request.AffectedSOPInstanceUID),
            consume=True,
            origin=Origin(
                str(event.assoc.requestor.ae_title).strip(),
                str(event.assoc.acceptor.ae_title).strip(),
            ),
        )
        uids["study_uid"] = outcome.study_uid
        status = _status(SUCCESS)
    except OpenPacsError as exc:
        log.warning("C-STORE refused %s reason=%s", _peer(event), exc.reason)
        status = _status(exc.dimse_status, exc.reason)
    except Exception:
        log.exception("C-STORE failed unexpectedly %s", _peer(event))
        status = _status(0xA700, "internal error")
    _log_operation(event, "C-STORE", status.Status, started, audit=(context.archive, uids))
    return status


def handle_find(event: Event, context: DimseContext) -> Iterator[tuple[int, Dataset | None]]:
    started = time.perf_counter()
    matches = 0
    refused = _refusal(event, context, "C-FIND")
    if refused is not None:
        _log_operation(event, "C-FIND", NOT_AUTHORIZED, started)
        yield _status(NOT_AUTHORIZED, refused), None
        return
    audit = (context.archive, _audit_uids(event))
    try:
        query = query_from_identifier(event.identifier)
        if query.level is Level.PATIENT and str(event.request.AffectedSOPClassUID).startswith(
            _STUDY_ROOT
        ):
            raise InvalidQuery("the Study Root model has no PATIENT level")
        results = context.archive.find(query)
    except OpenPacsError as exc:
        log.warning("C-FIND refused %s reason=%s", _peer(event), exc.reason)
        _log_operation(event, "C-FIND", exc.dimse_status, started, audit=audit)
        yield _status(exc.dimse_status, exc.reason), None
        return
    except Exception:
        log.exception("C-FIND failed unexpectedly %s", _peer(event))
        _log_operation(event, "C-FIND", _UNEXPECTED, started, audit=audit)
        yield _status(_UNEXPECTED, "internal error"), None
        return
    for match in results:
        if event.is_cancelled:
            _log_operation(event, "C-FIND", CANCELLED, started, audit=audit, matches=matches)
            yield CANCELLED, None
            return
        matches += 1
        yield PENDING, find_response(query, match, retrieve_aet=context.aet)
    audit[1]["resource"] = f"level={query.level.value}"
    audit[1]["detail"] = f"matches={matches}"
    _log_operation(
        event, "C-FIND", SUCCESS, started, audit=audit, level=query.level.value, matches=matches
    )


def handle_get(event: Event, context: DimseContext) -> Iterator[Any]:
    started = time.perf_counter()
    refused = _refusal(event, context, "C-GET")
    if refused is not None:
        _log_operation(event, "C-GET", NOT_AUTHORIZED, started)
        yield 1
        yield _status(NOT_AUTHORIZED, refused), None
        return
    audit = (context.archive, _audit_uids(event))
    try:
        instances = context.archive.instances_for(retrieve_query(event.identifier))
    except OpenPacsError as exc:
        log.warning("C-GET refused %s reason=%s", _peer(event), exc.reason)
        _log_operation(event, "C-GET", exc.dimse_status, started, audit=audit)
        yield 1
        yield _status(exc.dimse_status, exc.reason), None
        return
    except Exception:
        log.exception("C-GET failed unexpectedly %s", _peer(event))
        _log_operation(event, "C-GET", _UNEXPECTED, started, audit=audit)
        yield 1
        yield _status(_UNEXPECTED, "internal error"), None
        return
    yield len(instances)
    tally = SubOperations()
    listener = _StoreResponses(tally)
    event.assoc.bind(evt.EVT_DIMSE_RECV, listener.on_message)
    try:
        accepted = accepted_syntaxes(event.assoc.accepted_contexts)
        for instance in instances:
            if event.is_cancelled:
                _log_operation(
                    event, "C-GET", CANCELLED, started, audit=audit, counts=tally.counts()
                )
                yield CANCELLED, None
                return
            syntaxes = accepted.get(instance.sop_class_uid, set())
            dataset = dataset_for(context.archive, instance, syntaxes)
            tally.sent(instance.sop_uid)
            yield PENDING, dataset
    except Exception:
        # Sub-operations not yet sent fail with this status; the log line and the audit
        # event say what happened, and the peer gets a final response, not an abort.
        log.exception("C-GET failed unexpectedly %s", _peer(event))
        _log_operation(event, "C-GET", _UNEXPECTED, started, audit=audit, counts=tally.counts())
        yield _status(_UNEXPECTED, "internal error"), None
        return
    finally:
        event.assoc.unbind(evt.EVT_DIMSE_RECV, listener.on_message)
    audit[1]["detail"] = f"instances={len(instances)}"
    _log_operation(event, "C-GET", SUCCESS, started, audit=audit, counts=tally.counts())


def handle_move(event: Event, context: DimseContext) -> Iterator[Any]:
    started = time.perf_counter()
    destination = _text(event.move_destination)
    audit = (context.archive, {**_audit_uids(event), "resource": f"destination={destination}"})
    if _refusal(event, context, "C-MOVE", destination) is not None:
        # pynetdicom's C-MOVE SCP sends no other status before it has associated with the
        # destination, which a refused peer must not make us do: 0xA801, the reason audited.
        _log_operation(event, "C-MOVE", 0xA801, started, destination=destination)
        yield None, None
        return
    remote = context.remotes.get(destination)
    if remote is None:
        log.warning("C-MOVE unknown destination=%s %s", destination, _peer(event))
        _log_operation(event, "C-MOVE", 0xA801, started, audit=audit, destination=destination)
        yield None, None
        return
    error: OpenPacsError | None = None
    instances = []
    try:
        instances = context.archive.instances_for(retrieve_query(event.identifier))
    except OpenPacsError as exc:
        error = exc
    except Exception:
        log.exception("C-MOVE failed unexpectedly %s", _peer(event))
        error = OpenPacsError("internal error")
    tally = SubOperations()
    accepted = AcceptedContexts()
    senders = MoveSenders(
        context.move_associations, _text(event.assoc.requestor.ae_title), event.request.MessageID
    )
    arguments = dict(context.move_association_args)
    arguments["senders"] = senders
    arguments["contexts"] = move_contexts(instances)
    arguments["evt_handlers"] = [
        *arguments.get("evt_handlers", []),
        (evt.EVT_ACCEPTED, accepted.on_accepted),
        (evt.EVT_DIMSE_RECV, _StoreResponses(tally).on_message),
    ]
    if remote.tls:
        arguments["tls_args"] = (context.tls_client_args, remote.host)
    yield remote.host, remote.port, arguments
    if error is not None:
        log.warning("C-MOVE refused %s reason=%s", _peer(event), error.reason)
        _log_operation(event, "C-MOVE", error.dimse_status, started, audit=audit)
        yield 1
        yield _status(error.dimse_status, error.reason), None
        return
    yield len(instances)
    datasets: list[Dataset] = []
    window = 2 * context.move_associations
    try:
        for index in range(len(instances)):
            if event.is_cancelled:
                # Sub-operations already on their way still finish and are counted.
                for dataset in senders.withdraw():
                    tally.sent(str(dataset.SOPInstanceUID))
                    yield PENDING, dataset
                counts = tally.counts()
                _log_operation(event, "C-MOVE", CANCELLED, started, audit=audit, counts=counts)
                yield CANCELLED, None
                return
            for ahead in instances[len(datasets) : index + window]:
                syntaxes = accepted.for_sop_class(ahead.sop_class_uid)
                datasets.append(dataset_for(context.archive, ahead, syntaxes))
                senders.submit(datasets[-1])
            tally.sent(instances[index].sop_uid)
            yield PENDING, datasets[index]
            datasets[index] = _SENT
    except Exception:
        log.exception("C-MOVE failed unexpectedly %s", _peer(event))
        counts = tally.counts()
        _log_operation(event, "C-MOVE", _UNEXPECTED, started, audit=audit, counts=counts)
        yield _status(_UNEXPECTED, "internal error"), None
        return
    audit[1]["detail"] = f"instances={len(instances)}"
    _log_operation(
        event,
        "C-MOVE",
        SUCCESS,
        started,
        audit=audit,
        counts=tally.counts(),
        destination=destination,
    )


class _StoreResponses:
    """Feeds each C-STORE response of a retrieve's sub-operations to its tally (pynetdicom's
    EVT_DIMSE_RECV, on the association the sub-operations use)."""

    def __init__(self, tally: SubOperations) -> None:
        self._tally = tally

    def on_message(self, event: Event) -> None:
        command = event.message.command_set  # type: ignore[attr-defined]
        if command is not None and command.get("CommandField") == _C_STORE_RSP:
            self._tally.answered(str(command.AffectedSOPInstanceUID), int(command.Status))


def _text(value: str | bytes) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    return value.strip()
