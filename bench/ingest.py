"""C-STORE ingest: storescu in one association and in four concurrent ones, CT and
small-instance corpora, every system started fresh for each repetition, systems interleaved.

Within one repetition a system receives the four runs one after the other, each from its own
copy of the corpus (same content, other UIDs), so no run sends duplicates. Every run checks
afterwards that the system holds every instance it acknowledged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import dimse, systems
from bench.corpus import Corpus
from bench.results import BenchError, Results


@dataclass(frozen=True)
class Run:
    kind: str  # "ct" or "small"
    streams: int
    corpus: Corpus

    @property
    def key(self) -> str:
        return f"ingest.{self.kind}.{self.streams}"


def define(results: Results, runs: Sequence[Run]) -> None:
    for run in runs:
        what = "CT 512x512" if run.kind == "ct" else "64x64"
        assoc = "1 association" if run.streams == 1 else f"{run.streams} associations"
        head = f"C-STORE {what}, {assoc}"
        results.define(run.key, f"{head} (inst/s)", "inst/s", higher_is_better=True)
        results.define(f"{run.key}.mbps", f"{head} (MB/s)", "MB/s", higher_is_better=True)
        results.define(
            f"{run.key}.cpu", f"{head}: server CPU (% of a core)", "%", higher_is_better=False
        )


def _timeout(corpus: Corpus) -> float:
    return 60.0 + corpus.instances * 0.5  # 2 instances/s at worst: anything slower is broken


def ingest_once(running: systems.Running, run: Run, log_dir: Path) -> dict[str, float]:
    before = running.count()
    cpu_before = running.cpu_seconds()
    timing = dimse.storescu(
        running.port,
        running.aet,
        run.corpus.parts,
        streams=run.streams,
        timeout=_timeout(run.corpus),
        log=log_dir / f"storescu-{running.name}.log",
    )
    server_cpu = running.cpu_seconds() - cpu_before
    stored = running.count() - before
    if stored != run.corpus.instances:
        raise BenchError(f"stored {stored} of {run.corpus.instances} instances")
    seconds = timing["seconds"]
    return {
        "seconds": seconds,
        "instances_per_s": run.corpus.instances / seconds,
        "mb_per_s": run.corpus.megabytes / seconds,
        "server_cpu_percent": 100 * server_cpu / seconds,
        "server_cpu_ms_per_instance": 1000 * server_cpu / run.corpus.instances,
        "client_cpu_seconds": timing["client_cpu_seconds"],
        "rss_mb_after": running.rss_mb(),
    }


def measure(
    ctx: systems.Context,
    names: Sequence[str],
    runs: Sequence[Run],
    repetitions: int,
    results: Results,
    log: Callable[[str], None],
    *,
    keep_last: bool = False,
) -> dict[str, systems.Running]:
    """Measure every run; with `keep_last` the systems of the last repetition are returned
    still running (the caller stops them), otherwise all are stopped."""
    define(results, runs)
    label = "Memory idle after start (MB)"
    results.define("rss.idle", label, "MB", higher_is_better=False)
    kept: dict[str, systems.Running] = {}
    try:
        for repetition in range(repetitions):
            last = repetition == repetitions - 1
            for name in names:
                log(f"ingest repetition {repetition + 1}/{repetitions}: {name}")
                running = _start(ctx, name, runs, results)
                if running is None:
                    continue
                try:
                    for run in runs:
                        _record(running, run, repetition, ctx, results, log)
                finally:
                    if keep_last and last:
                        kept[name] = running
                    else:
                        running.stop()
    except BaseException:
        for running in kept.values():
            running.stop()
        raise
    return kept


def _start(
    ctx: systems.Context, name: str, runs: Sequence[Run], results: Results
) -> systems.Running | None:
    try:
        running = systems.start(name, ctx)
    except Exception as exc:
        for key in ("rss.idle", *(run.key for run in runs)):
            results.error(key, name, f"start failed: {exc}")
        return None
    time.sleep(0.2)  # let start-up settle before reading idle memory
    results.add_sample("rss.idle", name, running.rss_mb())
    return running


def _record(
    running: systems.Running,
    run: Run,
    repetition: int,
    ctx: systems.Context,
    results: Results,
    log: Callable[[str], None],
) -> None:
    try:
        figures = ingest_once(running, run, ctx.logs)
    except Exception as exc:
        results.error(run.key, running.name, exc)
        return
    results.add_sample(
        run.key, running.name, figures["instances_per_s"], repetition=repetition, **figures
    )
    results.add_sample(f"{run.key}.mbps", running.name, figures["mb_per_s"])
    results.add_sample(f"{run.key}.cpu", running.name, figures["server_cpu_percent"])
    log(
        f"  {run.key}: {figures['instances_per_s']:.1f} inst/s, {figures['mb_per_s']:.1f} MB/s, "
        f"server CPU {figures['server_cpu_percent']:.0f}%"
    )
