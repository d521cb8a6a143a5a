"""Importing one file found on a disk, in a ZIP or in a bucket: the same store as a C-STORE.

A file is recognised as DICOM by its content, never its name (`dicom.sniff`). A Part 10 file
goes through `Archive.store_file` (same validation, duplicates policy and durability as a
C-STORE), skipping an instance already stored with the same size so that an import run again
stores nothing new. Anything else is skipped and said so; a DICOM file the archive refuses is
refused with the archive's reason.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from openpacs.dicom.sniff import HEAD_BYTES, sniff
from openpacs.errors import OpenPacsError, StoreUnavailable

if TYPE_CHECKING:  # the service imports the job runner, which imports this module
    from openpacs.archive.ports import FoundFile, ImportSources
    from openpacs.archive.service import Archive, StoreOutcome

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
        sniffed = _sniff(path, label)
        if isinstance(sniffed, ImportResult):
            return sniffed
        try:
            stored: StoreOutcome | OpenPacsError = archive.store_file(
                path, consume=consume, skip_stored=True
            )
        except OpenPacsError as exc:
            stored = exc
        finally:
            consume = False  # store_file took it over
        return _result(label, sniffed, stored)
    finally:
        if consume:
            path.unlink(missing_ok=True)


@dataclass(frozen=True)
class Found:
    """A file to import: where it is, how reports name it, whether it is handed over."""

    path: Path
    label: str
    consume: bool


def import_files(
    archive: Archive, found: Sequence[Found], *, writers: Executor | None = None
) -> list[ImportResult]:
    """Import several files as `import_file` imports each one, the DICOM files stored
    together (`Archive.store_files`: one look-up, one index commit); one result per file, in
    order. `writers`: threads that write the blobs."""
    results: list[ImportResult | None] = [None] * len(found)
    to_store: dict[bool, list[tuple[int, Found, int]]] = {False: [], True: []}
    try:
        for position, item in enumerate(found):
            sniffed = _sniff(item.path, item.label)
            if isinstance(sniffed, ImportResult):
                results[position] = sniffed
            else:
                to_store[item.consume].append((position, item, sniffed))
        for consume, batch in to_store.items():
            if not batch:
                continue
            paths = [item.path for _, item, _ in batch]
            outcomes = archive.store_files(
                paths, consume=consume, skip_stored=True, writers=writers
            )
            for (position, item, size), outcome in zip(batch, outcomes, strict=True):
                results[position] = _result(item.label, size, outcome)
    finally:
        for item in found:
            if item.consume:  # handed over: gone whatever the outcome (stored ones moved)
                item.path.unlink(missing_ok=True)
    return [result for result in results if result is not None]


def fetch_and_import(
    archive: Archive,
    sources: ImportSources,
    items: Sequence[FoundFile],
    *,
    threads: Executor | None = None,
) -> list[ImportResult]:
    """Fetch the items (ZIP members and S3 objects are copied; on `threads` at once), then
    import them together (`import_files`, the blobs written by the same threads); one result
    per item, in order, an unreadable item refused with its reason."""

    def fetch(item: FoundFile) -> Found | ImportResult:
        try:
            path, owned = sources.fetch(item)
        except Exception as exc:  # OSError, a bad ZIP member, botocore's errors
            return ImportResult(item.label, "refused", item.size, f"unreadable: {exc}")
        return Found(path, item.label, owned)

    fetched = list(threads.map(fetch, items) if threads is not None else map(fetch, items))
    found = [item for item in fetched if isinstance(item, Found)]
    imported = iter(import_files(archive, found, writers=threads))
    return [item if isinstance(item, ImportResult) else next(imported) for item in fetched]


def _sniff(path: Path, label: str) -> ImportResult | int:
    """The file's size when it is a DICOM instance to store, else why it is not stored."""
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
    return size


def _result(label: str, size: int, stored: StoreOutcome | OpenPacsError) -> ImportResult:
    if isinstance(stored, StoreUnavailable):
        log.warning("import failed label=%s reason=%s", label, stored.reason)
        return ImportResult(label, "failed", size, stored.reason)
    if isinstance(stored, OpenPacsError):
        log.info("import refused label=%s reason=%s", label, stored.reason)
        return ImportResult(label, "refused", size, stored.reason)
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
