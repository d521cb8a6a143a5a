"""A C-STORE data set spooled, as it arrives, into a Part 10 file in the staging folder.

The file meta (the accepted transfer syntax, the command's SOP class and instance UIDs, our
implementation UID) is written first, then each P-DATA fragment as it comes; size and SHA-256
of the whole file are computed on the way, so storing it is a rename and an index insert.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from io import BytesIO
from pathlib import Path

from pydicom.dataset import FileMetaDataset
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID

from openpacs.dimse.negotiation import IMPLEMENTATION_VERSION

IMPLEMENTATION_CLASS_UID = PYDICOM_IMPLEMENTATION_UID  # as the files openpacs writes elsewhere


def part10_header(
    sop_class_uid: str, sop_uid: str, transfer_syntax: str, source_aet: str = ""
) -> bytes:
    """Preamble, "DICM" and the file meta group of a Part 10 file."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class_uid
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION
    if source_aet:
        meta.SourceApplicationEntityTitle = source_aet[:16]
    buffer = BytesIO()
    buffer.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(buffer, meta, enforce_standard=True)
    return buffer.getvalue()


class StagingFile:
    """A DataSink: the file grows with each fragment; `close` returns its path."""

    def __init__(self, folder: Path | None, header: bytes) -> None:
        descriptor, name = tempfile.mkstemp(suffix=".dcm", dir=folder)
        self.path = Path(name)
        # Written in 256 KiB pieces: few system calls, and a large data set shows on disk while
        # it arrives (what a crash leaves is a partial file the staging sweep knows, not an
        # empty one).
        self._file = os.fdopen(descriptor, "wb", buffering=256 * 1024)
        self._digest = hashlib.sha256()
        self.size = 0
        self.write(memoryview(header))

    def write(self, fragment: memoryview) -> None:
        self._file.write(fragment)
        self._digest.update(fragment)
        self.size += len(fragment)

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def close(self) -> Path:
        self._file.close()
        return self.path

    def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)
