"""A C-STORE data set spooled, as it arrives, into a Part 10 file in the staging folder.

The file meta (the accepted transfer syntax, the command's SOP class and instance UIDs, our
implementation UID) comes first, then each P-DATA fragment as it comes; size and SHA-256 of
the whole file are computed on the way, so storing it is a rename and an index insert.

The event loop receives the fragments, so it does no more file work than it must: a data set
is kept in memory until 256 KiB have come (most data sets never get there), and what is left
is written by `finish`, which the server runs in its pool before the file is stored.
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
import uuid
from pathlib import Path

from pydicom.uid import PYDICOM_IMPLEMENTATION_UID

from openpacs.dimse.negotiation import IMPLEMENTATION_VERSION

IMPLEMENTATION_CLASS_UID = PYDICOM_IMPLEMENTATION_UID  # as the files openpacs writes elsewhere
_PIECE = 256 * 1024


def _element(element: int, vr: bytes, value: bytes, pad: bytes) -> bytes:
    if len(value) % 2:
        value += pad
    return struct.pack("<HH2sH", 2, element, vr, len(value)) + value


def part10_header(
    sop_class_uid: str, sop_uid: str, transfer_syntax: str, source_aet: str = ""
) -> bytes:
    """Preamble, "DICM" and the file meta group of a Part 10 file (PS3.10 7.1), the bytes
    pydicom's `write_file_meta_info` writes for the same elements."""
    elements = [
        struct.pack("<HH2sxxL", 2, 0x0001, b"OB", 2) + b"\0\1",
        _element(0x0002, b"UI", sop_class_uid.encode("ascii"), b"\0"),
        _element(0x0003, b"UI", sop_uid.encode("ascii"), b"\0"),
        _element(0x0010, b"UI", transfer_syntax.encode("ascii"), b"\0"),
        _element(0x0012, b"UI", IMPLEMENTATION_CLASS_UID.encode("ascii"), b"\0"),
        _element(0x0013, b"SH", IMPLEMENTATION_VERSION.encode("ascii"), b" "),
    ]
    if source_aet:
        elements.append(_element(0x0016, b"AE", source_aet[:16].encode("ascii", "replace"), b" "))
    group = b"".join(elements)
    length = struct.pack("<HH2sHL", 2, 0x0000, b"UL", 4, len(group))
    return b"\0" * 128 + b"DICM" + length + group


class StagingFile:
    """A DataSink: the data set's bytes, on disk from 256 KiB on; `close` names the file and
    `finish` (off the event loop) makes sure it holds every byte."""

    def __init__(self, folder: Path | None, header: bytes) -> None:
        folder = folder if folder is not None else Path(tempfile.gettempdir())
        self.path = folder / f"spool-{uuid.uuid4().hex}.dcm"
        self._pending = bytearray()
        self._descriptor: int | None = None
        self._digest = hashlib.sha256()
        self.size = 0
        self.write(memoryview(header))

    def write(self, fragment: memoryview) -> None:
        self._pending += fragment
        self._digest.update(fragment)
        self.size += len(fragment)
        if len(self._pending) >= _PIECE:
            # A large data set shows on disk while it arrives: what a crash leaves is a partial
            # file the staging sweep knows.
            self._write_pending()

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def close(self) -> Path:
        """The file's path: the data set is complete (`finish` still has to write its end)."""
        return self.path

    def finish(self) -> Path:
        """Write what is still in memory and close the file."""
        self._write_pending()
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None
        return self.path

    def discard(self) -> None:
        self._pending.clear()
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None
        self.path.unlink(missing_ok=True)

    def _write_pending(self) -> None:
        if self._descriptor is None:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
            self._descriptor = os.open(self.path, flags, 0o600)
        view = memoryview(self._pending)
        while view:
            view = view[os.write(self._descriptor, view) :]
        view.release()
        self._pending.clear()
