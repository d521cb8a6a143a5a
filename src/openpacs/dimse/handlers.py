"""DIMSE service handlers: a request in, one archive call, a status out.

Every operation logs one line with the calling AE, the peer, the status and the duration; no
patient data and no dataset contents are logged.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset

from openpacs.archive.records import AuditEvent, Origin
from openpacs.archive.service import Archive
from openpacs.archive.suboperations import SubOperationCounts, operation_event
from openpacs.config import DimseOperation
from openpacs.dicom.levels import Level
from openpacs.dicom.query import query_from_identifier
from openpacs.dimse.find_response import FindResponse, find_response
from openpacs.dimse.peer_policy import NOT_AUTHORIZED, PeerPolicy
from openpacs.dimse.request import Peer, Request
from openpacs.errors import InvalidQuery, OpenPacsError

log = logging.getLogger("openpacs.dimse")

PENDING = 0xFF00
CANCELLED = 0xFE00
SUCCESS = 0x0000
UNEXPECTED = 0xC000
_STUDY_ROOT = "1.2.840.10008.5.1.4.1.2.2"


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
    move_associations: int = 1
    """Associations a C-MOVE may open to its destination to send sub-operations at once."""
    policy: PeerPolicy | None = None
    """What each calling AE may ask (`[[dicom.peers]]`); None: everything."""
    dimse_timeout: float = 30.0
    """How long a retrieve waits for each sub-operation's C-STORE response."""
    acse_timeout: float = 30.0
    network_timeout: float = 60.0
    max_pdu: int = 1048576
    """The largest PDU we receive on associations we request (C-MOVE's)."""
    tls_client: ssl.SSLContext | None = None
    """The client context for remotes reached over TLS; None when no TLS is configured."""


def peer_text(request: Request) -> str:
    return f"calling={request.peer.calling_aet} peer={request.peer.address}"


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


def refusal(
    request: Request, context: DimseContext, operation: str, destination: str | None = None
) -> str | None:
    """Why the peer may not ask for `operation` (`context.policy`), logged and audited as
    denied with that reason; None when it may."""
    if context.policy is None:
        return None
    caller = request.peer.caller
    reason = context.policy.refusal(caller, _OPERATIONS[operation], destination)
    if reason is None:
        return None
    log.warning("%s refused %s reason=%s", operation, peer_text(request), reason)
    uids = audit_uids(request) if operation in ("C-FIND", "C-GET", "C-MOVE") else {}
    if operation == "C-STORE":
        uids = {"sop_uid": request.uid("AffectedSOPInstanceUID")}
    context.archive.audit.record(
        AuditEvent(
            channel="dimse",
            actor=caller.aet,
            peer=request.peer.address,
            action=_AUDIT_ACTION[operation],
            outcome="denied",
            resource=f"destination={destination}" if destination else "",
            detail=reason,
            **uids,
        )
    )
    return reason


def audit_uids(request: Request) -> dict[str, str]:
    """The identifying keys of a C-FIND/C-GET/C-MOVE identifier, for the audit trail."""
    try:
        identifier = request.identifier
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
    request: Request,
    archive: Archive,
    operation: str,
    status: int,
    counts: SubOperationCounts | None = None,
    **fields: Any,
) -> None:
    base = AuditEvent(
        channel="dimse",
        actor=request.peer.calling_aet,
        peer=request.peer.address,
        action=_AUDIT_ACTION[operation],
        outcome="",
        **fields,
    )
    archive.audit.record(operation_event(base, status, counts))


def log_operation(
    request: Request,
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
        _audit(request, audit[0], operation, status, counts, **audit[1])
    if counts is not None:
        extra = {**extra, "completed": counts.completed, "failed": counts.failed}
        extra["warning"] = counts.warning
        status = counts.final_status if status == SUCCESS else status
    details = "".join(f" {k}={v}" for k, v in extra.items())
    log.info(
        "op=%s %s status=0x%04X duration_ms=%.1f%s",
        operation,
        peer_text(request),
        status,
        (time.perf_counter() - started) * 1000,
        details,
    )


def status_dataset(code: int, comment: str | None = None) -> Dataset:
    status = Dataset()
    status.Status = code
    if comment:
        status.ErrorComment = comment[:64]  # LO: at most 64 characters
    return status


def audit_rejected(peer: Peer, context: DimseContext) -> None:
    """An association refused (an unknown calling AE title), in the audit trail."""
    reason = "association rejected"
    if context.policy is not None:
        reason = context.policy.refusal(peer.caller, "echo") or reason
    context.archive.audit.record(
        AuditEvent(
            channel="dimse",
            actor=peer.calling_aet,
            peer=peer.address,
            action="associate",
            outcome="denied",
            detail=reason,
        )
    )


def handle_echo(request: Request, context: DimseContext) -> int:
    status = NOT_AUTHORIZED if refusal(request, context, "C-ECHO") else SUCCESS
    log_operation(request, "C-ECHO", status, time.perf_counter())
    return status


def handle_store(request: Request, context: DimseContext) -> Dataset:
    """Store the spooled data set (`request.dataset_path`, consumed)."""
    started = time.perf_counter()
    uids = {"sop_uid": request.uid("AffectedSOPInstanceUID")}
    refused = refusal(request, context, "C-STORE")
    if refused is not None:  # the engine removes the received file
        status = status_dataset(NOT_AUTHORIZED, refused)
        log_operation(request, "C-STORE", status.Status, started)
        return status
    try:
        if request.dataset_path is None:
            raise OpenPacsError("the C-STORE request carries no data set")
        outcome = context.archive.store_file(
            request.dataset_path,
            sop_class_uid=request.uid("AffectedSOPClassUID"),
            sop_uid=request.uid("AffectedSOPInstanceUID"),
            consume=True,
            origin=Origin(request.peer.calling_aet, request.peer.called_aet),
            digest=request.digest,
        )
        uids["study_uid"] = outcome.study_uid
        status = status_dataset(SUCCESS)
    except OpenPacsError as exc:
        log.warning("C-STORE refused %s reason=%s", peer_text(request), exc.reason)
        status = status_dataset(exc.dimse_status, exc.reason)
    except Exception:
        log.exception("C-STORE failed unexpectedly %s", peer_text(request))
        status = status_dataset(0xA700, "internal error")
    log_operation(request, "C-STORE", status.Status, started, audit=(context.archive, uids))
    return status


def handle_find(
    request: Request, context: DimseContext
) -> Iterator[tuple[Any, FindResponse | None]]:
    """(status, identifier) pairs: a pending one per match, then the final one (a status
    code, or a status data set carrying an ErrorComment)."""
    started = time.perf_counter()
    matches = 0
    refused = refusal(request, context, "C-FIND")
    if refused is not None:
        log_operation(request, "C-FIND", NOT_AUTHORIZED, started)
        yield status_dataset(NOT_AUTHORIZED, refused), None
        return
    audit = (context.archive, audit_uids(request))
    try:
        query = query_from_identifier(request.identifier)
        if query.level is Level.PATIENT and request.uid("AffectedSOPClassUID").startswith(
            _STUDY_ROOT
        ):
            raise InvalidQuery("the Study Root model has no PATIENT level")
        results = context.archive.find(query)
    except OpenPacsError as exc:
        log.warning("C-FIND refused %s reason=%s", peer_text(request), exc.reason)
        log_operation(request, "C-FIND", exc.dimse_status, started, audit=audit)
        yield status_dataset(exc.dimse_status, exc.reason), None
        return
    except Exception:
        log.exception("C-FIND failed unexpectedly %s", peer_text(request))
        log_operation(request, "C-FIND", UNEXPECTED, started, audit=audit)
        yield status_dataset(UNEXPECTED, "internal error"), None
        return
    for match in results:
        if request.is_cancelled:
            log_operation(request, "C-FIND", CANCELLED, started, audit=audit, matches=matches)
            yield CANCELLED, None
            return
        matches += 1
        yield PENDING, find_response(query, match, retrieve_aet=context.aet)
    audit[1]["resource"] = f"level={query.level.value}"
    audit[1]["detail"] = f"matches={matches}"
    log_operation(
        request, "C-FIND", SUCCESS, started, audit=audit, level=query.level.value, matches=matches
    )
