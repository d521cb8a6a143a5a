"""`openpacs import`: folders, lists of files, ZIP archives and S3 prefixes into the archive.

Sources are listed first (so the progress bar knows the total), then imported in batches by a
pool of processes (`cli.parallel`), each storing through `archive.importing`. Every refused or
skipped file goes to a JSON-lines report with its reason; the summary counts each outcome.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from openpacs.archive.importing import ImportResult, fetch_and_import
from openpacs.cli import parallel
from openpacs.errors import require_extra
from openpacs.storage.sources import (
    SourceItem,
    Sources,
    is_s3,
    listed_paths,
    local_items,
    s3_items,
)

_BATCH_FILES = 16


@dataclass(frozen=True)
class S3Access:
    endpoint: str | None
    region: str | None

    def client(self) -> Any:
        require_extra("s3", "boto3", "an s3:// import")
        from openpacs.storage.s3 import make_client

        return make_client(endpoint_url=self.endpoint, region=self.region)


@dataclass
class Tally:
    """What an import did, by outcome, and how fast."""

    counts: Counter[str] = field(default_factory=Counter)
    rates: str = ""

    @property
    def problems(self) -> int:
        return self.counts["refused"] + self.counts["failed"]

    def summary(self) -> str:
        outcomes = ", ".join(
            f"{name} {self.counts[name]}"
            for name in ("stored", "already stored", "duplicate", "refused", "failed", "skipped")
        )
        return f"{self.rates}: {outcomes}"


def source_items(sources: list[str], files_from: Path | None, s3: S3Access) -> Iterator[SourceItem]:
    """Every item of every source, in order; a DICOMDIR named as a source stands for the
    files of its media set."""
    from openpacs.dicom.media import referenced_files

    named = list(sources)
    if files_from is not None:
        named.extend(str(path) for path in listed_paths(files_from))
    client = None
    for source in named:
        if is_s3(source):
            client = client or s3.client()
            yield from s3_items(client, source)
            continue
        path = Path(source)
        if path.is_file() and path.name.upper() == "DICOMDIR":
            for referenced in referenced_files(path):
                yield from local_items(referenced)
            continue
        yield from local_items(path)


_THREADS = 4
"""Files stored at once in each process: storing one waits mostly on fsync and the index
commit, time other threads use to parse the next files."""


class _WorkerContext:
    def __init__(self, sources: Sources) -> None:
        self.sources = sources
        self.threads = ThreadPoolExecutor(_THREADS, thread_name_prefix="import")

    def close(self) -> None:
        for _ in range(_THREADS):
            self.threads.submit(self.sources.finish)
        self.threads.shutdown(wait=True)


@dataclass(frozen=True)
class _SourcesSetup:
    s3: S3Access

    def __call__(self, archive: Any) -> _WorkerContext:
        return _WorkerContext(Sources(archive.staging_dir, self.s3.client))


def import_batch(
    archive: Any, context: _WorkerContext, batch: list[SourceItem]
) -> list[ImportResult]:
    """Fetch the batch's items at once, then import them together, their blobs written by
    the same threads."""
    return fetch_and_import(archive, context.sources, batch, threads=context.threads)


def write_report_line(report: IO[str], result: ImportResult) -> None:
    line = {"file": result.label, "outcome": result.outcome, "reason": result.reason}
    report.write(json.dumps(line, ensure_ascii=False) + "\n")


def run_import(
    config_file: Path | None,
    sources: list[str],
    *,
    files_from: Path | None,
    workers: int | None,
    report_path: Path,
    s3: S3Access,
    show_progress: bool,
) -> Tally:
    items = list(source_items(sources, files_from, s3))
    tally = Tally()
    setup = parallel.WorkerSetup(config_file, _SourcesSetup(s3))
    meter = parallel.Meter("import", len(items), show=show_progress)
    with report_path.open("w", encoding="utf-8") as report, meter:

        def record(results: list[ImportResult]) -> None:
            for result in results:
                tally.counts[result.outcome] += 1
                if result.outcome in ("refused", "failed", "skipped"):
                    write_report_line(report, result)
            report.flush()
            meter.advance(len(results), sum(result.size for result in results))

        parallel.run(
            setup,
            import_batch,
            parallel.batches(items, _BATCH_FILES),
            workers=parallel.processes(workers, len(items)),
            on_results=record,
        )
    tally.rates = meter.rates()
    return tally
