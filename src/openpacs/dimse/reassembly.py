"""PDVs put back together into DIMSE messages (PS3.8 9.3.5, PS3.7 6.3.1).

A message is its command fragments, then, when the command announces one, its data set
fragments, all on one presentation context. Data set fragments go to the handler's
`DataSink` as they arrive (memoryviews of the read buffer), or into memory up to a cap.
Anything out of order is a `PduError`: the association aborts. A sink that fails (a full
disk) is discarded and the rest of its data set read and dropped: the message still arrives,
with `error` saying why and no data set, so the service answers it with a failure status.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Container
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from openpacs.dimse.messages import MAX_COMMAND, Command, MessageError, decode_command
from openpacs.dimse.pdu import REASON_INVALID_PARAMETER, PduError, Pdv

log = logging.getLogger(__name__)

MEMORY_CAP = 64 << 20  # largest data set kept in memory when the handler gives no sink


@dataclass(frozen=True)
class Message:
    context_id: int
    command: Command
    dataset: bytes | Path | None  # in memory, or the file a DataSink spooled it to
    error: str | None = None  # the data set was announced but could not be kept: why


class DataSink(Protocol):
    def write(self, fragment: memoryview) -> None:
        """Consume the fragment now: its memory is reused once this returns."""

    def close(self) -> Path | bytes: ...

    def discard(self) -> None: ...


SinkFor = Callable[[int, Command], DataSink | None]


class Reassembly:
    """The message arriving on one association."""

    def __init__(self, memory_cap: int = MEMORY_CAP) -> None:
        self._memory_cap = memory_cap
        self._command = bytearray()
        self._context = 0
        self._pending: Command | None = None  # complete command whose data set is arriving
        self._sink: DataSink | None = None
        self._data: bytearray | None = None
        self._error: str | None = None  # the sink failed: the data set is being dropped

    def add(self, pdv: Pdv, accepted: Container[int], sink_for: SinkFor) -> Message | None:
        """Take one PDV; the message it completes, if any."""
        if pdv.context_id not in accepted:
            raise _error(f"PDV on presentation context {pdv.context_id}, which is not accepted")
        if pdv.is_command:
            return self._command_fragment(pdv, sink_for)
        if self._pending is None or pdv.context_id != self._context:
            raise _error("data set fragment without its command")
        if self._sink is not None:
            try:
                self._sink.write(pdv.data)
            except Exception as error:
                self._sink_failed(error)
        elif self._data is not None:
            if len(self._data) + len(pdv.data) > self._memory_cap:
                raise _error("data set larger than the in-memory cap")
            self._data += pdv.data
        if not pdv.is_last:
            return None
        command, self._pending = self._pending, None
        dataset: bytes | Path | None = None
        if self._sink is not None:
            sink, self._sink = self._sink, None
            try:
                closed = sink.close()
                dataset = closed if isinstance(closed, Path) else bytes(closed)
            except Exception as error:
                self._sink = sink
                self._sink_failed(error)
        elif self._data is not None:
            dataset, self._data = bytes(self._data), None
        error, self._error = self._error, None
        return Message(self._context, command, dataset, error)

    def _sink_failed(self, error: Exception) -> None:
        log.warning("data set could not be kept, dropping the rest: %s", error)
        self._error = f"data set could not be kept: {error}"
        sink, self._sink = self._sink, None
        if sink is not None:
            try:
                sink.discard()
            except Exception:
                log.exception("discarding a failed data set")

    def _command_fragment(self, pdv: Pdv, sink_for: SinkFor) -> Message | None:
        if self._pending is not None:
            raise _error("command fragment while a data set was expected")
        if self._command and pdv.context_id != self._context:
            raise _error("command fragments on two presentation contexts")
        self._context = pdv.context_id
        self._command += pdv.data
        if len(self._command) > MAX_COMMAND:
            raise _error(f"command set larger than {MAX_COMMAND} bytes")
        if not pdv.is_last:
            return None
        try:
            command = decode_command(self._command)
        except MessageError as error:
            raise _error(f"command set: {error}") from None
        self._command = bytearray()
        if not command.has_dataset:
            return Message(self._context, command, None)
        self._pending = command
        self._sink = sink_for(self._context, command)
        if self._sink is None:
            self._data = bytearray()
        return None

    def discard(self) -> None:
        """The association ended mid-message: drop what was received."""
        if self._sink is not None:
            sink, self._sink = self._sink, None
            sink.discard()
        self._data = None
        self._pending = None


def _error(reason: str) -> PduError:
    return PduError(reason, REASON_INVALID_PARAMETER)
