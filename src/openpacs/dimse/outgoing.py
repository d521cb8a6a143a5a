"""The sending half of an association: a DIMSE message written as P-DATA-TF PDUs.

Each PDU carries one PDV of at most the peer's maximum length. Small pieces go out together
in one `writelines`; a large fragment is written as its 12-byte header and then the fragment
itself, never joined. A data set stored in a file (`FileSlice`) is read with `os.preadv`
into one buffer per association just behind a header slot, so each PDU is a single write of
one buffer, without re-encoding. Between PDUs the writer waits while the transport is above
its high-water mark (back-pressure).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from openpacs.dimse.messages import fragments, pdv_header

LARGE = 65536  # a fragment this long is written on its own rather than joined
FILE_STEP_CAP = 4 << 20  # PDU data read from a file at once when the peer sets no limit


class AssociationClosed(Exception):
    """The association can no longer send: released, aborted or lost."""


@dataclass(frozen=True)
class FileSlice:
    """A data set stored in a file: `length` bytes at `offset`, sent without re-encoding."""

    file: Path | int
    offset: int
    length: int


Dataset = bytes | bytearray | memoryview | FileSlice


class Outgoing:
    """Writes messages to the transport; `may_send` raises `AssociationClosed` when the
    state no longer allows P-DATA."""

    def __init__(self, loop: asyncio.AbstractEventLoop, may_send: Callable[[], None]) -> None:
        self.transport: asyncio.Transport | None = None
        self.last_write = loop.time()
        self._loop = loop
        self._may_send = may_send
        self._writable = asyncio.Event()
        self._writable.set()
        self._file_buffer: bytearray | None = None

    def pause(self) -> None:
        self._writable.clear()

    def resume(self) -> None:
        self._writable.set()

    async def message(
        self, context_id: int, command: bytes, dataset: Dataset | None, max_pdu: int
    ) -> None:
        """Write the encoded command, then the data set, in PDUs of at most `max_pdu`."""
        self._may_send()
        parts: list[bytes | memoryview] = []
        for header, chunk in fragments(context_id, command, max_pdu, is_command=True):
            parts += (header, chunk)
        if isinstance(dataset, FileSlice):
            self._write(parts)
            await self._file(context_id, dataset, max_pdu)
            return
        if dataset is not None:
            for header, chunk in fragments(context_id, dataset, max_pdu, is_command=False):
                if len(chunk) >= LARGE:
                    self._write(parts)
                    parts = []
                    self._write([header])
                    self._write([chunk])
                    await self._drained(final=False)
                else:
                    parts += (header, chunk)
        self._write(parts)
        await self._drained(final=True)

    async def _file(self, context_id: int, part: FileSlice, max_pdu: int) -> None:
        step = (max_pdu - 6) if max_pdu else min(part.length, FILE_STEP_CAP)
        step = max(1, min(step, FILE_STEP_CAP))
        fd = part.file if isinstance(part.file, int) else os.open(part.file, os.O_RDONLY)
        try:
            sent = 0
            while True:
                size = min(step, part.length - sent)
                buffer = self._file_buffer
                if buffer is None or len(buffer) < size + 12:
                    buffer = self._file_buffer = bytearray(step + 12)
                view = memoryview(buffer)
                got = os.preadv(fd, [view[12 : 12 + size]], part.offset + sent) if size else 0
                if got != size:
                    raise OSError(f"file ended {size - got} bytes before its data set did")
                sent += size
                last = sent >= part.length
                view[:12] = pdv_header(context_id, size, is_command=False, last=last)
                self._may_send()
                self._write([view[: 12 + size]])
                if self.transport is not None and self.transport.get_write_buffer_size():
                    self._file_buffer = None  # the transport holds on to it: use a new one
                await self._drained(final=last)
                if last:
                    return
        finally:
            if not isinstance(part.file, int):
                os.close(fd)

    def _write(self, parts: list[bytes | memoryview]) -> None:
        if not parts:
            return
        if self.transport is None:
            raise AssociationClosed("connection lost")
        if len(parts) == 1:
            self.transport.write(parts[0])
        else:
            self.transport.writelines(parts)
        self.last_write = self._loop.time()

    async def _drained(self, *, final: bool) -> None:
        """Wait while the transport is above its high-water mark.

        `final`: the message is all written, so a connection closed meanwhile is no error.
        """
        if not self._writable.is_set():
            await self._writable.wait()
        if not final:
            self._may_send()
