"""`openpacs reindex`: the index rebuilt from the blob store, in parallel, with progress.

The store is listed once, here; the keys the index already knows are left out, so an
interrupted run, run again, indexes only what is still missing.
"""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from openpacs.archive.reindex import ReindexResult, index_blobs, unindexed_keys
from openpacs.cli import parallel

_BATCH_BLOBS = 32


_THREADS = 4
"""Blobs read at once in each process: reading one (from S3, say) waits, time other threads
use to parse; a batch is then indexed in one transaction."""


class _Threads:
    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(_THREADS, thread_name_prefix="reindex")

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def _threads(archive: Any) -> _Threads:
    return _Threads()


def reindex_batch(archive: Any, context: _Threads, keys: list[str]) -> list[ReindexResult]:
    return index_blobs(archive, keys, readers=context.pool)


def run_reindex(
    config_file: Path | None, *, workers: int | None, report_path: Path, show_progress: bool
) -> tuple[Counter[str], int, str]:
    """(outcome counts, blobs already indexed, rates)."""
    from openpacs.compose import build_archive
    from openpacs.config import load_settings

    parallel.prepare_index(config_file)
    archive = build_archive(load_settings(config_file))
    try:
        total = sum(1 for _ in archive.store.iterate())
        keys = unindexed_keys(archive)
    finally:
        archive.close()
    counts: Counter[str] = Counter()
    meter = parallel.Meter("reindex", len(keys), show=show_progress)
    with report_path.open("w", encoding="utf-8") as report, meter:

        def record(results: list[ReindexResult]) -> None:
            for result in results:
                counts[result.outcome] += 1
                if result.outcome != "indexed":
                    line = {"key": result.key, "outcome": result.outcome, "reason": result.reason}
                    report.write(json.dumps(line, ensure_ascii=False) + "\n")
            report.flush()
            meter.advance(len(results), sum(result.size for result in results))

        parallel.run(
            parallel.WorkerSetup(config_file, _threads),
            reindex_batch,
            parallel.batches(keys, _BATCH_BLOBS),
            workers=parallel.processes(workers, len(keys)),
            on_results=record,
        )
    return counts, total - len(keys), meter.rates()
