"""Rebuilding the index from the blob store alone (`openpacs reindex`).

When the database is lost and the folder or bucket survives, every blob is a complete Part 10
file: its header gives the index row, its bytes the size and checksum. Each blob is indexed
under its existing key with the `keep` policy, so running it again (after an interruption, or
on an index that is only missing some rows) adds exactly what is missing. Two blobs of one SOP
Instance (a crash in the middle of an overwrite) keep the first indexed; the other is reported
and left for `openpacs verify` to call an orphan.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Literal

from openpacs.archive.records import AddResult, BlobRecord
from openpacs.archive.service import Archive
from openpacs.dicom.header import Header, parse_header
from openpacs.errors import NotFound, OpenPacsError

log = logging.getLogger(__name__)

Outcome = Literal["indexed", "duplicate", "unreadable", "gone", "failed"]
"""`failed`: the index was unavailable (run again); `unreadable`: not a valid instance."""


@dataclass(frozen=True)
class ReindexResult:
    key: str
    outcome: Outcome
    size: int = 0
    reason: str = ""


def unindexed_keys(archive: Archive) -> list[str]:
    """The store's keys the index does not know, in the store's order."""
    indexed = archive.index.all_blob_keys()
    return [key for key in archive.store.iterate() if key not in indexed]


def index_blob(archive: Archive, key: str) -> ReindexResult:
    """Index the blob stored under `key` as it is."""
    return index_blobs(archive, [key])[0]


def index_blobs(
    archive: Archive, keys: Sequence[str], *, readers: Executor | None = None
) -> list[ReindexResult]:
    """Index the blobs stored under `keys` as they are, in one index transaction (each in a
    savepoint of its own, so one refused fails alone); `readers`: threads that read the
    blobs (this one without). One result per key, in order."""
    read = list(
        readers.map(lambda key: _read(archive, key), keys)
        if readers
        else map(lambda key: _read(archive, key), keys)
    )
    found = [item for item in read if not isinstance(item, ReindexResult)]
    try:
        added = archive.index.add_instances(found, policy="keep")
    except OpenPacsError as exc:
        added = [exc] * len(found)
    outcomes = iter(zip(found, added, strict=True))
    return [item if isinstance(item, ReindexResult) else _indexed(*next(outcomes)) for item in read]


def _read(archive: Archive, key: str) -> ReindexResult | tuple[Header, BlobRecord]:
    try:
        with archive.store.local_path(key) as path:
            parsed = parse_header(path)
            with path.open("rb") as file:
                digest = hashlib.file_digest(file, "sha256").hexdigest()
                size = file.tell()
            header = parsed.header()
    except NotFound:
        return ReindexResult(key, "gone", reason="deleted meanwhile")
    except OpenPacsError as exc:
        log.warning("blob not indexed key=%s reason=%s", key, exc.reason)
        return ReindexResult(key, "unreadable", reason=exc.reason)
    return header, BlobRecord(key, size, digest)


def _indexed(found: tuple[Header, BlobRecord], result: AddResult | BaseException) -> ReindexResult:
    header, blob = found
    if isinstance(result, OpenPacsError):
        log.warning("blob not indexed key=%s reason=%s", blob.key, result.reason)
        return ReindexResult(blob.key, "failed", blob.size, result.reason)
    if isinstance(result, BaseException):
        raise result
    if not result.stored:
        reason = f"SOP Instance {header.sop_uid} is indexed with another blob"
        return ReindexResult(blob.key, "duplicate", blob.size, reason)
    return ReindexResult(blob.key, "indexed", blob.size)
