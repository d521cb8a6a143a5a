"""pynetdicom's events as `Request`s, for the services pynetdicom still carries."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pynetdicom.events import Event

from openpacs.dimse.peer_policy import caller_of
from openpacs.dimse.request import Peer, Request

T = TypeVar("T")

_COMMAND_KEYWORDS = (
    "MessageID",
    "AffectedSOPClassUID",
    "AffectedSOPInstanceUID",
    "Priority",
    "MoveDestination",
    "MoveOriginatorApplicationEntityTitle",
    "MoveOriginatorMessageID",
)


def peer_of(event: Event) -> Peer:
    assoc = event.assoc
    caller = caller_of(assoc)
    return Peer(
        calling_aet=caller.aet,
        called_aet=str(assoc.acceptor.ae_title).strip(),
        host=caller.address,
        port=int(assoc.requestor.port),
        tls_subject=caller.tls_subject,
    )


def request_of(event: Event) -> Request:
    primitive = getattr(event, "request", None)
    command = {}
    for keyword in _COMMAND_KEYWORDS:
        value = getattr(primitive, keyword, None)
        if value is not None:
            command[keyword] = value
    path = getattr(primitive, "_dataset_path", None)
    return Request(
        peer=peer_of(event),
        command=command,
        load_identifier=lambda: event.identifier,
        dataset_path=Path(path) if path is not None else None,
        cancelled=lambda: bool(event.is_cancelled),
    )


def on_request(handler: Callable[..., T]) -> Callable[..., T]:
    """`handler(request, *args)` as a pynetdicom event handler `(event, *args)`."""

    def handle(event: Event, *args: Any) -> T:
        return handler(request_of(event), *args)

    handle.__name__ = handler.__name__
    return handle
