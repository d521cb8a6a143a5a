"""Importing one file found on a disk, in a ZIP or in a bucket: the same store as a C-STORE.

A file is recognised as DICOM by its content, never its name (`dicom.sniff`). A Part 10 file
goes through `Archive.store_file` (same validation, duplicates policy and durability as a
C-STORE), skipping an instance already stored with the same size so that an import run again
stores nothing new. Anything else is skipped and said so; a DICOM file the archive refuses is
refused with the archive's reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from openpacs.dicom.sniff import HEAD_BYTES, sniff
from openpacs.errors import OpenPacsError, StoreUnavailable

if TYPE_CHECKING:  # the service imports the job runner, which imports this module
    from openpacs.archive.service import Archive

log = logging.getLogger(__name__)

Outcome = Literal["stored", "already stored", "duplicate", "refused", "skipped", "failed"]
"""`duplicate`: another copy of the instance was kept by the duplicates policy; `failed`: the
store or index was unavailable (worth retrying, unlike a refusal)."""


@dataclass(frozen=True)
class ImportResult:
    label: str
    outcome: Outcome
    size: int
    reason: str = ""
    sop_uid: str = ""


def import_file(archive: Archive, path: Path, *, label: str, consume: bool) -> ImportResult:
    """Import the file at `path` (reported as `label`); with `consume` the file is handed over
    and gone afterwards, whatever the outcome."""
    try:
        try:
            size = path.stat().st_size
            with path.open("rb") as file:
                head = file.read(HEAD_BYTES)
        except OSError as exc:
            return ImportResult(label, "refused", 0, f"unreadable: {exc.strerror or exc}")
        kind = sniff(head)
        if kind == "other":
            return ImportResult(label, "skipped", size, "not a DICOM file")
        if kind == "dicomdir":
            return ImportResult(
                label, "skipped", size, "DICOMDIR (a media set's directory, not an instance)"
            )
        try:
            stored = archive.store_file(path, consume=consume, skip_stored=True)
        except StoreUnavailable as exc:
            log.warning("import failed label=%s reason=%s", label, exc.reason)
            return ImportResult(label, "failed", size, exc.reason)
        except OpenPacsError as exc:
            log.info("import refused label=%s reason=%s", label, exc.reason)
            return ImportResult(label, "refused", size, exc.reason)
        finally:
            consume = False  # store_file took it over
        if stored.already_stored:
            return ImportResult(label, "already stored", size, sop_uid=stored.sop_uid)
        if not stored.stored:
            return ImportResult(
                label,
                "duplicate",
                size,
                "a copy of this instance was already stored and kept",
                stored.sop_uid,
            )
        return ImportResult(label, "stored", size, sop_uid=stored.sop_uid)
    finally:
        if consume:
            path.unlink(missing_ok=True)
