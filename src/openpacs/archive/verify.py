"""Reconcile the index with the blob store (`openpacs verify`).

A crash between writing a blob and committing its index row leaves an orphan blob; a lost
disk or a bucket edited by hand leaves index rows without blobs; bit rot or tampering leaves a
blob whose checksum no longer matches. Verification finds all three; repair deletes orphans
(only those older than a minimum age, so a store in flight on a running server is never
touched) and removes index rows whose blob is gone. A checksum mismatch is reported, never
"repaired": the bytes cannot be recovered here.

The store's staging folder is looked at too: files no live server owns and older than the
minimum age are leftovers of a crash (`archive.staging`), reported and, with repair, removed.
They are wasted space, not damage: they do not make the store unclean.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from openpacs.archive.service import Archive
from openpacs.dicom.levels import Level
from openpacs.errors import NotFound, OpenPacsError
from openpacs.storage.base import sha256_hex

log = logging.getLogger(__name__)


@dataclass
class VerifyReport:
    instances: int = 0
    blobs: int = 0
    orphan_blobs: list[str] = field(default_factory=list)
    young_orphans: int = 0
    """Unindexed blobs younger than the minimum age: probably stores in flight."""
    missing_blobs: list[str] = field(default_factory=list)
    """SOP Instance UIDs whose blob is missing."""
    size_mismatches: list[str] = field(default_factory=list)
    checksum_mismatches: list[str] = field(default_factory=list)
    staging_files: int = 0
    staging_bytes: int = 0
    staging_leftovers: list[str] = field(default_factory=list)
    """Staging files no live server owns, older than the minimum age (paths in staging)."""
    staging_leftover_bytes: int = 0
    repaired: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        problems = self.orphan_blobs, self.missing_blobs, self.size_mismatches
        return not any(problems) and not self.checksum_mismatches


def verify(
    archive: Archive,
    *,
    checksums: bool = False,
    repair: bool = False,
    min_orphan_age: float = 3600.0,
) -> VerifyReport:
    report = VerifyReport()
    store = archive.store
    indexed: set[str] = set()
    for blob in archive.index.iter_blobs():
        report.instances += 1
        indexed.add(blob.blob_key)
        try:
            size = store.size(blob.blob_key)
        except NotFound:
            report.missing_blobs.append(blob.sop_uid)
            continue
        if size != blob.blob_size:
            report.size_mismatches.append(blob.sop_uid)
        elif checksums and _sha256(archive, blob.blob_key) != blob.blob_sha256:
            report.checksum_mismatches.append(blob.sop_uid)
    now = time.time()
    for key in store.iterate():
        report.blobs += 1
        if key in indexed:
            continue
        try:
            young = now - store.modified(key) < min_orphan_age
        except NotFound:
            continue  # deleted meanwhile
        if young:
            report.young_orphans += 1
        else:
            report.orphan_blobs.append(key)
    leftovers = _staging(archive, report, min_orphan_age)
    if repair:
        _repair(archive, report)
        _remove(leftovers, report)
    return report


def _staging(archive: Archive, report: VerifyReport, min_age: float) -> list[Path]:
    root = archive.store.staging_dir()
    staged = archive.staging_report(grace=min_age)
    if root is None or staged is None:
        return []
    report.staging_files, report.staging_bytes = staged.files, staged.bytes
    report.staging_leftovers = [str(path.relative_to(root)) for path in staged.abandoned]
    report.staging_leftover_bytes = staged.abandoned_bytes
    return staged.abandoned


def _remove(leftovers: list[Path], report: VerifyReport) -> None:
    for path in leftovers:
        try:
            path.unlink()
        except FileNotFoundError:
            continue  # stored or swept meanwhile
        except OSError as exc:
            log.warning("cannot remove staging leftover path=%s reason=%s", path, exc)
            continue
        report.repaired.append(f"removed staging leftover {path.name}")


def _sha256(archive: Archive, key: str) -> str:
    with archive.store.open(key) as stream:
        return sha256_hex(stream)


def _repair(archive: Archive, report: VerifyReport) -> None:
    for key in report.orphan_blobs:
        try:
            archive.store.delete(key)
            report.repaired.append(f"deleted orphan blob {key}")
        except OpenPacsError as exc:
            log.warning("cannot delete orphan blob key=%s reason=%s", key, exc.reason)
    for sop_uid in report.missing_blobs:
        archive.index.delete(Level.IMAGE, sop_uid)
        report.repaired.append(f"removed index row of {sop_uid} (blob missing)")
