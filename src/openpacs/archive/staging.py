"""Leftovers in the store's staging folder: what a crash leaves behind, found and swept.

Each serving process spools into its own folder, `<staging>/<server id>/` (pynetdicom's
C-STORE spool files, STOW-RS parts, uploads); the blob store's own temporary files lie in
`<staging>` itself. A file is abandoned when no live server owns it (its folder is not a live
server's, or it lies loose) and it has not been written for a grace period, which leaves alone
a server that lost its lease for a moment while it still writes. Every server sweeps abandoned
files at start-up and now and then while it runs; `openpacs verify` reports them.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

GRACE_SECONDS = 3600.0


@dataclass
class StagingReport:
    files: int = 0
    bytes: int = 0
    abandoned: list[Path] = field(default_factory=list)
    """Owned by no live server and older than the grace period."""
    abandoned_bytes: int = 0


def survey(
    staging: Path, live: set[str], *, grace: float = GRACE_SECONDS, now: float | None = None
) -> StagingReport:
    """What the staging folder holds, and which of it is abandoned."""
    report = StagingReport()
    cutoff = (time.time() if now is None else now) - grace
    for path, owner, stat in _files(staging):
        report.files += 1
        report.bytes += stat.st_size
        if owner not in live and stat.st_mtime < cutoff:
            report.abandoned.append(path)
            report.abandoned_bytes += stat.st_size
    return report


def sweep(staging: Path, live: set[str], *, grace: float = GRACE_SECONDS) -> int:
    """Remove abandoned files, and the folders of servers that are gone once empty; returns
    how many files went."""
    report = survey(staging, live, grace=grace)
    removed = 0
    for path in report.abandoned:
        with suppress(FileNotFoundError):  # stored or swept by another server meanwhile
            path.unlink()
            removed += 1
    for folder in _folders(staging):
        if folder.name not in live:
            with suppress(OSError):  # not empty: files within the grace period
                folder.rmdir()
    if removed:
        log.info("swept staging leftovers files=%d bytes=%d", removed, report.abandoned_bytes)
    return removed


def _folders(staging: Path) -> list[Path]:
    try:
        with os.scandir(staging) as entries:
            return [Path(e.path) for e in entries if e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return []


def _files(staging: Path) -> Iterator[tuple[Path, str | None, os.stat_result]]:
    """(file, the server id owning it or None, its stat) for every file in staging."""
    try:
        entries = list(os.scandir(staging))
    except FileNotFoundError:
        return
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                for root, _dirs, names in os.walk(entry.path):
                    for name in names:
                        path = Path(root) / name
                        with suppress(FileNotFoundError):
                            yield path, entry.name, path.lstat()
            elif entry.is_file(follow_symlinks=False):
                yield Path(entry.path), None, entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue  # renamed into place or swept meanwhile
