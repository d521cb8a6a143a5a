"""C-GET and C-MOVE as pynetdicom's generator handlers, while pynetdicom carries them.

pynetdicom sends the sub-operations: a C-GET's on the requestor's association, a C-MOVE's on
the association it opens to the destination with the arguments the handler yields first.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import evt
from pynetdicom.events import Event

from openpacs.archive.suboperations import SubOperations
from openpacs.dimse.event_request import request_of
from openpacs.dimse.handlers import (
    CANCELLED,
    PENDING,
    SUCCESS,
    UNEXPECTED,
    DimseContext,
    audit_uids,
    log_operation,
    peer_text,
    refusal,
    status_dataset,
    text_of,
)
from openpacs.dimse.move_senders import MoveSenders
from openpacs.dimse.peer_policy import NOT_AUTHORIZED
from openpacs.dimse.retrieve import (
    AcceptedContexts,
    accepted_syntaxes,
    dataset_for,
    move_contexts,
    retrieve_query,
)
from openpacs.errors import OpenPacsError

log = logging.getLogger("openpacs.dimse")

_C_STORE_RSP = 0x8001
_SENT = Dataset()  # stands for a dataset already handed to pynetdicom, so it can be freed


def handle_get(event: Event, context: DimseContext) -> Iterator[Any]:
    started = time.perf_counter()
    request = request_of(event)
    refused = refusal(request, context, "C-GET")
    if refused is not None:
        log_operation(request, "C-GET", NOT_AUTHORIZED, started)
        yield 1
        yield status_dataset(NOT_AUTHORIZED, refused), None
        return
    audit = (context.archive, audit_uids(request))
    try:
        instances = context.archive.instances_for(retrieve_query(event.identifier))
    except OpenPacsError as exc:
        log.warning("C-GET refused %s reason=%s", peer_text(request), exc.reason)
        log_operation(request, "C-GET", exc.dimse_status, started, audit=audit)
        yield 1
        yield status_dataset(exc.dimse_status, exc.reason), None
        return
    except Exception:
        log.exception("C-GET failed unexpectedly %s", peer_text(request))
        log_operation(request, "C-GET", UNEXPECTED, started, audit=audit)
        yield 1
        yield status_dataset(UNEXPECTED, "internal error"), None
        return
    yield len(instances)
    tally = SubOperations()
    listener = _StoreResponses(tally)
    event.assoc.bind(evt.EVT_DIMSE_RECV, listener.on_message)
    try:
        accepted = accepted_syntaxes(event.assoc.accepted_contexts)
        for instance in instances:
            if event.is_cancelled:
                log_operation(
                    request, "C-GET", CANCELLED, started, audit=audit, counts=tally.counts()
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
        log.exception("C-GET failed unexpectedly %s", peer_text(request))
        log_operation(request, "C-GET", UNEXPECTED, started, audit=audit, counts=tally.counts())
        yield status_dataset(UNEXPECTED, "internal error"), None
        return
    finally:
        event.assoc.unbind(evt.EVT_DIMSE_RECV, listener.on_message)
    audit[1]["detail"] = f"instances={len(instances)}"
    log_operation(request, "C-GET", SUCCESS, started, audit=audit, counts=tally.counts())


def handle_move(event: Event, context: DimseContext) -> Iterator[Any]:
    started = time.perf_counter()
    request = request_of(event)
    destination = text_of(event.move_destination)
    audit = (context.archive, {**audit_uids(request), "resource": f"destination={destination}"})
    if refusal(request, context, "C-MOVE", destination) is not None:
        # pynetdicom's C-MOVE SCP sends no other status before it has associated with the
        # destination, which a refused peer must not make us do: 0xA801, the reason audited.
        log_operation(request, "C-MOVE", 0xA801, started, destination=destination)
        yield None, None
        return
    remote = context.remotes.get(destination)
    if remote is None:
        log.warning("C-MOVE unknown destination=%s %s", destination, peer_text(request))
        log_operation(request, "C-MOVE", 0xA801, started, audit=audit, destination=destination)
        yield None, None
        return
    error: OpenPacsError | None = None
    instances = []
    try:
        instances = context.archive.instances_for(retrieve_query(event.identifier))
    except OpenPacsError as exc:
        error = exc
    except Exception:
        log.exception("C-MOVE failed unexpectedly %s", peer_text(request))
        error = OpenPacsError("internal error")
    tally = SubOperations()
    accepted = AcceptedContexts()
    senders = MoveSenders(
        context.move_associations, text_of(event.assoc.requestor.ae_title), event.request.MessageID
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
        log.warning("C-MOVE refused %s reason=%s", peer_text(request), error.reason)
        log_operation(request, "C-MOVE", error.dimse_status, started, audit=audit)
        yield 1
        yield status_dataset(error.dimse_status, error.reason), None
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
                log_operation(request, "C-MOVE", CANCELLED, started, audit=audit, counts=counts)
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
        log.exception("C-MOVE failed unexpectedly %s", peer_text(request))
        counts = tally.counts()
        log_operation(request, "C-MOVE", UNEXPECTED, started, audit=audit, counts=counts)
        yield status_dataset(UNEXPECTED, "internal error"), None
        return
    audit[1]["detail"] = f"instances={len(instances)}"
    log_operation(
        request,
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
