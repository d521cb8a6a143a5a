"""Copy every blob of one store to another, verifying each copy, while servers keep storing.

A copy is streamed (no blob is held whole in memory) and hashed on the way; it counts only
once it has been read back from the target with the same size and SHA-256. When the index
knows the blob (its size and SHA-256 are kept at ingest), the source must match those too,
so a blob damaged in the source is reported rather than copied. A key the target already
holds whole and verified is skipped: an interrupted migration resumes where it stopped.

Servers keep writing to the source meanwhile: after a pass over the keys, the keys that
appeared during it are copied in another pass, until a pass finds nothing new (bounded).
What servers store after the last pass and before they switch to the target is copied by
running the migration again once they have switched (``source`` then the old store).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import BinaryIO

from openpacs.errors import NotFound, OpenPacsError
from openpacs.storage.base import BlobStore, sha256_hex

log = logging.getLogger(__name__)

_MAX_PASSES = 5


@dataclass(frozen=True)
class KnownBlob:
    """What the index recorded for a blob at ingest."""

    size: int
    sha256: str


@dataclass
class MigrationReport:
    copied: int = 0
    already: int = 0
    """Keys the target held whole and verified before this run (resumed)."""
    vanished: int = 0
    """Keys deleted from the source between listing and copying."""
    bytes_copied: int = 0
    failed: list[str] = field(default_factory=list)
    """``key: reason`` for each blob not copied; the target keeps no unverified copy."""

    @property
    def clean(self) -> bool:
        return not self.failed


class _Hashing:
    """A reader that hashes and counts what passes through it."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.digest = hashlib.sha256()
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        if data:
            self.digest.update(data)
            self.count += len(data)
        return data


Progress = Callable[[int, int], None]
"""Called with (blobs done, blobs known so far) after each blob."""


def migrate_blobs(
    source: BlobStore,
    target: BlobStore,
    known: Callable[[], dict[str, KnownBlob]],
    *,
    progress: Progress | None = None,
) -> MigrationReport:
    """Copy and verify every blob of ``source`` into ``target``; ``known`` returns the
    index's record of each blob key (read again before each pass)."""
    report = MigrationReport()
    seen: set[str] = set()
    done = 0
    for _ in range(_MAX_PASSES):
        keys = sorted(set(source.iterate()) - seen)
        if not keys:
            break
        records = known()
        total = len(seen) + len(keys)
        for key in keys:
            seen.add(key)
            _migrate_one(source, target, key, records.get(key), report)
            done += 1
            if progress is not None:
                progress(done, total)
    return report


def _migrate_one(
    source: BlobStore,
    target: BlobStore,
    key: str,
    record: KnownBlob | None,
    report: MigrationReport,
) -> None:
    try:
        if _already_there(target, key, record):
            report.already += 1
            return
        with source.open(key) as blob:
            reader = _Hashing(blob)
            target.put_stream(key, reader)
        digest = reader.digest.hexdigest()
        if record is not None and (reader.count, digest) != (record.size, record.sha256):
            target.delete(key)
            report.failed.append(f"{key}: the source does not match the index's size and SHA-256")
            return
        if (target.size(key), _sha256(target, key)) != (reader.count, digest):
            target.delete(key)
            report.failed.append(f"{key}: the copy read back differs from the source")
            return
    except NotFound:
        report.vanished += 1  # deleted meanwhile: nothing to copy
        return
    except OpenPacsError as exc:
        report.failed.append(f"{key}: {exc.reason}")
        log.warning("blob not migrated key=%s reason=%s", key, exc.reason)
        return
    report.copied += 1
    report.bytes_copied += reader.count


def _already_there(target: BlobStore, key: str, record: KnownBlob | None) -> bool:
    """Whether the target holds this blob whole: checked against the index's record;
    without one (a blob not indexed yet) it is copied again, which is always safe."""
    if record is None:
        return False
    try:
        if target.size(key) != record.size:
            return False
    except NotFound:
        return False
    return _sha256(target, key) == record.sha256


def _sha256(store: BlobStore, key: str) -> str:
    with store.open(key) as blob:
        return sha256_hex(blob)


def known_blobs(rows: Iterable[tuple[str, int, str]]) -> dict[str, KnownBlob]:
    """Index rows (blob key, size, SHA-256) by key."""
    return {key: KnownBlob(size, sha256) for key, size, sha256 in rows}
