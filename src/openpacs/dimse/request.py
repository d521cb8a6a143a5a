"""One DIMSE request as the handlers see it, whichever engine carried it.

A handler needs who asked (the peer), what was asked (the command set, keyword -> value), the
identifier (decoded only when a handler asks for it, since an undecodable one is the handler's
to report), the spooled data set of a C-STORE and whether the peer has cancelled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from openpacs.dimse.peer_policy import Caller


@dataclass(frozen=True)
class Peer:
    """Both ends of the association a request arrived on."""

    calling_aet: str
    called_aet: str
    host: str
    port: int
    tls_subject: str | None = None
    """Common name of the TLS client certificate; None: plain connection or no certificate."""

    @property
    def caller(self) -> Caller:
        return Caller(self.calling_aet, self.host, self.tls_subject)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def _never() -> bool:
    return False


def _no_identifier() -> Dataset:
    raise ValueError("the request carries no identifier")


@dataclass
class Request:
    peer: Peer
    command: Mapping[str, Any]
    """The command set by keyword (AffectedSOPClassUID, MessageID, MoveDestination...)."""
    load_identifier: Callable[[], Dataset] = _no_identifier
    dataset_path: Path | None = None
    """C-STORE: the received data set, spooled as a Part 10 file."""
    digest: tuple[int, str] | None = None
    """Size and SHA-256 of that file, when computed as it was written."""
    cancelled: Callable[[], bool] = _never
    _identifier: Dataset | None = field(default=None, repr=False)

    @property
    def identifier(self) -> Dataset:
        """The decoded identifier; raises whatever decoding raises."""
        if self._identifier is None:
            self._identifier = self.load_identifier()
        return self._identifier

    @property
    def is_cancelled(self) -> bool:
        return self.cancelled()

    def uid(self, keyword: str) -> str:
        """A UID of the command set as text (at most 64 characters)."""
        value = self.command.get(keyword, "")
        if isinstance(value, bytes):
            value = value.decode("ascii", errors="replace")
        return str(value).strip("\0 ")[:64]
