"""Storing a batch of Part 10 files at once, for bulk imports.

Each file is validated, checked against the duplicates policy and refused alone, exactly as
`Archive.store_file` stores one, and the promise is the same: an instance reported stored is
durable (blob flushed, then index committed); a failed index write removes the blob it was to
describe. What a batch shares is the cost of that durability and of the look-ups: one query
finds the instances already stored, the blobs are written by a few threads at once (so that
the flushes of a study folder coincide and are shared, `grouping.py`) while this thread
converts the headers, and one transaction indexes every instance, each in a savepoint of its
own (`Catalog.add_instances`): one commit per batch instead of one per file.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor, Future
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from openpacs.archive.records import AddResult, BlobRecord
from openpacs.archive.service import StoreOutcome, checked_digest, new_blob_key
from openpacs.dicom.header import Header, ParsedHeader, parse_header
from openpacs.errors import InvalidInstance, OpenPacsError

if TYPE_CHECKING:
    from openpacs.archive.service import Archive


@dataclass
class _Parsed:
    position: int
    path: Path
    parsed: ParsedHeader
    size: int
    sha256: str = ""
    key: str = ""
    header: Header | OpenPacsError | None = None
    """As the index keeps it, or why it cannot be converted."""


_Results = list[StoreOutcome | OpenPacsError | None]


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
    `writers` writes the blobs (this thread, before converting the headers, without)."""
    results: _Results = [None] * len(paths)
    try:
        parsed = _parse(paths, results)
        if skip_stored:
            parsed = _not_stored(archive, parsed, results)
        writes = _write_blobs(archive, parsed, consume=consume, writers=writers)
        try:
            _convert(archive, parsed)
        except BaseException:
            for item in _written(archive, parsed, writes, results):
                archive.discard_blob(item.key)
            raise
        _index(archive, _written(archive, parsed, writes, results), results)
    finally:
        if consume:  # what was stored was moved or copied into the store
            for path in paths:
                with suppress(FileNotFoundError):
                    path.unlink()
    done = [result for result in results if result is not None]
    if len(done) != len(paths):
        raise RuntimeError(f"{len(done)} outcomes for {len(paths)} files")
    return done


def _parse(paths: Sequence[Path], results: _Results) -> list[_Parsed]:
    parsed: list[_Parsed] = []
    for position, path in enumerate(paths):
        try:
            header = parse_header(path)
            size = path.stat().st_size
        except OpenPacsError as exc:
            results[position] = exc
            continue
        except OSError as exc:
            results[position] = InvalidInstance(f"unreadable: {exc.strerror or exc}")
            continue
        parsed.append(_Parsed(position, path, header, size))
    return parsed


def _not_stored(archive: Archive, parsed: list[_Parsed], results: _Results) -> list[_Parsed]:
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
    archive: Archive, parsed: list[_Parsed], *, consume: bool, writers: Executor | None
) -> list[Future[None] | OpenPacsError | None]:
    """Each blob written under a new key, after its SHA-256 is computed (hashing releases
    the interpreter, so on `writers` it runs beside this thread's work): started on
    `writers`, or done here."""

    def write(item: _Parsed) -> None:
        try:
            item.size, item.sha256 = checked_digest(item.path, None)
        except OSError as exc:
            raise InvalidInstance(f"unreadable: {exc.strerror or exc}") from exc
        archive.store.put_file(item.key, item.path, consume=consume)

    writes: list[Future[None] | OpenPacsError | None] = []
    for item in parsed:
        item.key = new_blob_key(item.parsed.study_uid)
        if writers is not None:
            writes.append(writers.submit(write, item))
            continue
        try:
            write(item)
            writes.append(None)
        except OpenPacsError as exc:
            writes.append(exc)
    return writes


def _convert(archive: Archive, parsed: list[_Parsed]) -> None:
    """Each header as the index keeps it (a summary when the archive builds whole headers
    afterwards), or the refusal `_written` reports."""
    deferred = archive.headers.defer
    for item in parsed:
        try:
            item.header = item.parsed.summary() if deferred else item.parsed.header()
        except OpenPacsError as exc:
            item.header = exc


def _written(
    archive: Archive,
    parsed: list[_Parsed],
    writes: list[Future[None] | OpenPacsError | None],
    results: _Results,
) -> list[_Parsed]:
    """Those whose blob is written and header converted (once every write is done); the
    blobs of the others removed."""
    written = []
    unexpected: BaseException | None = None
    for item, write in zip(parsed, writes, strict=True):
        error = write.exception() if isinstance(write, Future) else write
        if isinstance(error, OpenPacsError):
            results[item.position] = error
        elif error is not None:
            unexpected = unexpected or error
        elif isinstance(item.header, OpenPacsError):
            results[item.position] = item.header
            archive.discard_blob(item.key)
        else:
            written.append(item)
    if unexpected is not None:
        for item in written:
            archive.discard_blob(item.key)
        raise unexpected
    return written


def _index(archive: Archive, written: list[_Parsed], results: _Results) -> None:
    """Index the written blobs; remove those that end up not indexed."""
    deferred = archive.headers.defer
    entries: list[tuple[Header, BlobRecord]] = []
    for item in written:
        if not isinstance(item.header, Header):  # `_written` keeps converted ones only
            raise TypeError(f"no header converted for {item.path}")
        if deferred:
            archive.headers.keep(item.key, item.parsed)
        entries.append((item.header, BlobRecord(item.key, item.size, item.sha256)))
    try:
        added = archive.index.add_instances(entries, policy=archive.duplicates)
    except BaseException:
        for item in written:
            archive.headers.forget(item.key)
            archive.discard_blob(item.key)
        raise
    unexpected: BaseException | None = None
    for item, result in zip(written, added, strict=True):
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
