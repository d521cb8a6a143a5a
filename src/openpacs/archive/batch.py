"""Storing a batch of Part 10 files at once, for bulk imports.

Each file is validated, checked against the duplicates policy and refused alone, exactly as
`Archive.store_file` stores one, and the promise is the same: an instance reported stored is
durable (blob flushed, then index committed); a failed index write removes the blob it was to
describe. What a batch shares is the cost of that durability and of the look-ups: one query
finds the instances already stored, the blobs are written by a few threads at once (so that
the flushes of a study folder coincide and are shared, `grouping.py`), and one transaction
indexes every instance, each in a savepoint of its own (`Catalog.add_instances`): one commit
per batch instead of one per file.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from openpacs.archive.service import StoreOutcome, checked_digest, new_blob_key
from openpacs.dicom.header import Header, ParsedHeader, parse_header
from openpacs.errors import OpenPacsError
from openpacs.index.records import AddResult, BlobRecord

if TYPE_CHECKING:
    from openpacs.archive.service import Archive


@dataclass
class _Parsed:
    position: int
    path: Path
    parsed: ParsedHeader
    size: int
    sha256: str
    key: str = ""


def store_files(
    archive: Archive,
    paths: Sequence[Path],
    *,
    consume: bool = False,
    skip_stored: bool = False,
    writers: Executor | None = None,
) -> list[StoreOutcome | OpenPacsError]:
    """One outcome or refusal per path, in order. With `consume` every file is handed over
    and gone afterwards, whatever its outcome; `skip_stored` as in `Archive.store_file`;
    `writers` writes the blobs (sequentially without)."""
    results: list[StoreOutcome | OpenPacsError | None] = [None] * len(paths)
    try:
        parsed = _parse(paths, results)
        if skip_stored:
            parsed = _not_stored(archive, parsed, results)
        written = _write_blobs(archive, parsed, results, consume=consume, writers=writers)
        _index(archive, written, results)
    finally:
        if consume:  # what was stored was moved or copied into the store
            for path in paths:
                with suppress(FileNotFoundError):
                    path.unlink()
    done = [result for result in results if result is not None]
    if len(done) != len(paths):
        raise RuntimeError(f"{len(done)} outcomes for {len(paths)} files")
    return done


def _parse(
    paths: Sequence[Path], results: list[StoreOutcome | OpenPacsError | None]
) -> list[_Parsed]:
    parsed: list[_Parsed] = []
    for position, path in enumerate(paths):
        try:
            header = parse_header(path)
            size, sha256 = checked_digest(path, None)
        except OpenPacsError as exc:
            results[position] = exc
            continue
        parsed.append(_Parsed(position, path, header, size, sha256))
    return parsed


def _not_stored(
    archive: Archive, parsed: list[_Parsed], results: list[StoreOutcome | OpenPacsError | None]
) -> list[_Parsed]:
    """Those not already indexed with a blob of the same size (imports run again)."""
    try:
        sizes = archive.index.stored_sizes([item.parsed.sop_uid for item in parsed])
    except OpenPacsError as exc:
        for item in parsed:
            results[item.position] = exc
        return []
    left = []
    for item in parsed:
        if sizes.get(item.parsed.sop_uid) == item.size:
            header = item.parsed
            results[item.position] = StoreOutcome(
                header.sop_uid, header.study_uid, stored=False, already_stored=True
            )
        else:
            left.append(item)
    return left


def _write_blobs(
    archive: Archive,
    parsed: list[_Parsed],
    results: list[StoreOutcome | OpenPacsError | None],
    *,
    consume: bool,
    writers: Executor | None,
) -> list[_Parsed]:
    def write(item: _Parsed) -> OpenPacsError | None:
        item.key = new_blob_key(item.parsed.study_uid)
        try:
            archive.store.put_file(item.key, item.path, consume=consume)
        except OpenPacsError as exc:
            return exc
        return None

    outcomes = list(writers.map(write, parsed) if writers else map(write, parsed))
    written = []
    for item, error in zip(parsed, outcomes, strict=True):
        if error is None:
            written.append(item)
        else:
            results[item.position] = error
    return written


def _index(
    archive: Archive, written: list[_Parsed], results: list[StoreOutcome | OpenPacsError | None]
) -> None:
    """Index the written blobs; remove those that end up not indexed."""
    deferred = archive.headers.defer  # serving: whole headers are built afterwards
    entries: list[tuple[Header, BlobRecord]] = []
    indexed: list[_Parsed] = []
    try:
        for item in written:
            try:
                header = item.parsed.summary() if deferred else item.parsed.header()
            except OpenPacsError as exc:
                results[item.position] = exc
                archive.discard_blob(item.key)
                continue
            if deferred:
                archive.headers.keep(item.key, item.parsed)
            entries.append((header, BlobRecord(item.key, item.size, item.sha256)))
            indexed.append(item)
        added = archive.index.add_instances(entries, policy=archive.duplicates)
    except BaseException:
        for item in written:
            archive.headers.forget(item.key)
            archive.discard_blob(item.key)
        raise
    unexpected: BaseException | None = None
    for item, result in zip(indexed, added, strict=True):
        if isinstance(result, AddResult):
            results[item.position] = _settled(archive, item, result)
            continue
        archive.headers.forget(item.key)
        archive.discard_blob(item.key)
        if isinstance(result, OpenPacsError):
            results[item.position] = result
        else:
            unexpected = unexpected or result
    if unexpected is not None:
        raise unexpected


def _settled(archive: Archive, item: _Parsed, result: AddResult) -> StoreOutcome:
    if archive.headers.defer:
        if result.stored:
            archive.headers.due()
        else:
            archive.headers.forget(item.key)
    if not result.stored:
        archive.discard_blob(item.key)
    if result.replaced_blob:
        archive.headers.forget(result.replaced_blob)
        archive.discard_blob(result.replaced_blob)
    return StoreOutcome(item.parsed.sop_uid, item.parsed.study_uid, stored=result.stored)
