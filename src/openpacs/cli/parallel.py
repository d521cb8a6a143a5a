"""Bulk work over many processes, each with an archive of its own, behind one progress bar.

Imports and reindexing parse DICOM headers, which is CPU work: one Python process uses one
core, so the work is cut into small batches run by a pool of processes, forked from a fork
server that imported the heavy modules once (so no database connection, S3 client or thread
of this process crosses a fork). Each process builds its archive from the same configuration
at start and closes it at exit. With one worker everything runs in this process.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.util
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, as_completed, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")
R = TypeVar("R")

_state: dict[str, Any] = {}
_PRELOAD = (
    "openpacs.compose",
    "openpacs.archive.service",
    "openpacs.archive.importing",
    "openpacs.archive.reindex",
    "openpacs.dicom.header",
    "openpacs.index.catalog",
    "openpacs.storage.folder",
    "openpacs.storage.sources",
    "openpacs.cli.importer",
    "openpacs.cli.reindexing",
    "sqlalchemy.dialects.sqlite",
    "psycopg",
)


@dataclass(frozen=True)
class WorkerSetup:
    config_file: Path | None
    setup: Callable[[Any], Any] | None = None
    """Called with the archive once per process; its result is passed to every batch."""


def _start(setup: WorkerSetup) -> None:
    from openpacs.compose import build_archive, configure_libraries
    from openpacs.config import load_settings

    archive = build_archive(load_settings(setup.config_file))
    _state["tempdir"] = tempfile.tempdir
    configure_libraries(archive.staging_dir())
    _state["archive"] = archive
    _state["context"] = setup.setup(archive) if setup.setup else None


def _start_worker(setup: WorkerSetup) -> None:
    _start(setup)
    # Run as the worker process ends (multiprocessing's own exit hook, not atexit).
    multiprocessing.util.Finalize(None, _stop, exitpriority=10)


def prepare_index(config_file: Path | None) -> None:
    """Make the schema current once, here, before workers that would race to migrate."""
    from openpacs.compose import build_index_engine
    from openpacs.config import load_settings
    from openpacs.index import migrate

    settings = load_settings(config_file)
    engine = build_index_engine(settings)
    try:
        migrate.prepare(engine, auto_migrate=settings.database.auto_migrate)
    finally:
        engine.dispose()


def _stop() -> None:
    archive = _state.pop("archive", None)
    context = _state.pop("context", None)
    if context is not None and hasattr(context, "close"):
        context.close()
    if archive is not None:
        archive.close()
    tempfile.tempdir = _state.pop("tempdir", tempfile.tempdir)  # it pointed into staging


def _run(work: Callable[[Any, Any, list[T]], list[R]], batch: list[T]) -> list[R]:
    return work(_state["archive"], _state["context"], batch)


FILES_PER_PROCESS = 300
"""Below this many files per process, starting another costs more than it saves."""


def processes(wanted: int | None, files: int) -> int:
    """`wanted`, or by default one per core but no more than the files make worthwhile."""
    if wanted is not None:
        return wanted
    return max(1, min(os.cpu_count() or 1, files // FILES_PER_PROCESS))


def batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def run(
    setup: WorkerSetup,
    work: Callable[[Any, Any, list[T]], list[R]],
    work_batches: Iterable[list[T]],
    *,
    workers: int,
    on_results: Callable[[list[R]], None],
) -> None:
    """Run `work(archive, context, batch)` on every batch, `workers` processes at once, and
    give each batch's results to `on_results` in this process as they come."""
    prepare_index(setup.config_file)
    if workers <= 1:
        _start(setup)
        try:
            for batch in work_batches:
                on_results(_run(work, batch))
        finally:
            _stop()
        return
    context = multiprocessing.get_context("forkserver")
    # The fork server imports the heavy modules once; each worker is then a cheap fork of it
    # (and, unlike a fork of this process, holds no thread or connection of ours).
    context.set_forkserver_preload(list(_PRELOAD))
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_start_worker, initargs=(setup,)
    ) as pool:
        pending: set[Future[list[R]]] = set()
        for batch in work_batches:
            pending.add(pool.submit(_run, work, batch))
            if len(pending) >= workers * 3:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    on_results(future.result())
        for future in as_completed(pending):
            on_results(future.result())


class Meter:
    """A progress bar on standard error (files done of all, MB, MB/s, files/s, time left)
    while a with block runs, when shown; counts kept either way."""

    def __init__(self, what: str, total_files: int, *, show: bool) -> None:
        self.files = 0
        self.bytes = 0
        self.started = time.monotonic()
        self._show = show
        self._progress = Progress(
            TextColumn(f"[bold]{what}[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("files {task.fields[megabytes]:.1f} MB"),
            TextColumn("{task.fields[mb_rate]:.1f} MB/s {task.fields[rate]:.0f} files/s"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self._task = self._progress.add_task(
            what, total=total_files, megabytes=0.0, mb_rate=0.0, rate=0.0
        )

    @property
    def seconds(self) -> float:
        return max(time.monotonic() - self.started, 1e-9)

    def advance(self, files: int, size: int) -> None:
        self.files += files
        self.bytes += size
        self._progress.update(
            self._task,
            completed=self.files,
            megabytes=self.bytes / 1e6,
            mb_rate=self.bytes / 1e6 / self.seconds,
            rate=self.files / self.seconds,
        )

    def rates(self) -> str:
        return (
            f"{self.files} files, {self.bytes / 1e6:.1f} MB in {self.seconds:.1f} s"
            f" ({self.files / self.seconds:.1f} files/s, {self.bytes / 1e6 / self.seconds:.1f}"
            " MB/s)"
        )

    def __enter__(self) -> Meter:
        if self._show:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._show:
            self._progress.stop()
