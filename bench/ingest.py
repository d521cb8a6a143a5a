"""C-STORE ingest: storescu in one association and in four concurrent ones, CT and
small-instance corpora, and fifty concurrent associations with each C-STORE's latency (one
study of small instances each, `bench.storers`); every system started fresh for each
repetition, systems interleaved.

Within one repetition a system receives the four runs one after the other, each from its own
copy of the corpus (same content, other UIDs), so no run sends duplicates. Every run checks
afterwards that the system holds every instance it acknowledged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import dimse, latency, storers, systems
from bench.corpus import Corpus
from bench.results import BenchError, Results


@dataclass(frozen=True)
class Run:
    kind: str  # "ct", "small" or "many" (small instances, per-request latency)
    streams: int
    corpus: Corpus

    @property
    def key(self) -> str:
        return f"ingest.{self.kind}.{self.streams}"


RATIO_KEY = "ingest.ct.4.floor"
RATIO_LABEL = "C-STORE CT 512x512, 4 associations: openpacs / storescp (target >= 0.5)"


def define(results: Results, runs: Sequence[Run]) -> None:
    for run in runs:
        what = "CT 512x512" if run.kind == "ct" else "64x64"
        if run.kind == "many":
            head = f"C-STORE 64x64, {run.streams} associations at once"
            results.define(run.key, f"{head} (inst/s)", "inst/s", higher_is_better=True)
            label = f"{head}: p99 C-STORE latency (ms)"
            results.define(f"{run.key}.p99", label, "ms", higher_is_better=False)
            results.define(
                f"{run.key}.cpu", f"{head}: server CPU (% of a core)", "%", higher_is_better=False
            )
            continue
        assoc = "1 association" if run.streams == 1 else f"{run.streams} associations"
        head = f"C-STORE {what}, {assoc}"
        results.define(run.key, f"{head} (inst/s)", "inst/s", higher_is_better=True)
        results.define(f"{run.key}.mbps", f"{head} (MB/s)", "MB/s", higher_is_better=True)
        results.define(
            f"{run.key}.cpu", f"{head}: server CPU (% of a core)", "%", higher_is_better=False
        )
        if run.key == "ingest.ct.4":
            results.define(RATIO_KEY, RATIO_LABEL, "x", higher_is_better=True)


def _timeout(corpus: Corpus) -> float:
    return 60.0 + corpus.instances * 0.5  # 2 instances/s at worst: anything slower is broken


def ingest_once(running: systems.Running, run: Run, log_dir: Path) -> dict[str, float]:
    if run.kind == "many":
        return ingest_many(running, run, log_dir)
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


def ingest_many(running: systems.Running, run: Run, log_dir: Path) -> dict[str, float]:
    """`run.streams` storescu processes at once, each one association sending its share of
    the corpus; throughput from the first C-STORE request to the last response (the clients'
    start-up left out), latency percentiles over every C-STORE."""
    before = running.count()
    cpu_before = running.cpu_seconds()
    files = storers.corpus_files(run.corpus.parts)
    groups = latency.chunks(files, run.streams)
    folder = log_dir / f"storescu-{running.name}-{run.kind}{run.streams}"
    outcome = storers.TimedStore(
        running.port, running.aet, groups, folder, _timeout(run.corpus)
    ).finish()
    server_cpu = running.cpu_seconds() - cpu_before
    stored = running.count() - before
    if stored != run.corpus.instances:
        raise BenchError(f"stored {stored} of {run.corpus.instances} instances")
    return {
        "seconds": outcome.window_seconds,
        "seconds_with_client_start": outcome.seconds,
        "associations": len(groups),
        "instances_per_s": outcome.instances_per_s,
        "mb_per_s": run.corpus.megabytes / outcome.window_seconds,
        "latency_p50_ms": outcome.latency_ms(50),
        "latency_p95_ms": outcome.latency_ms(95),
        "latency_p99_ms": outcome.latency_ms(99),
        "latency_max_ms": outcome.latency_ms(100),
        "server_cpu_percent": 100 * server_cpu / outcome.seconds,  # CPU read around it all
        "server_cpu_ms_per_instance": 1000 * server_cpu / run.corpus.instances,
        "client_cpu_seconds": outcome.client_cpu_seconds,
        "rss_mb_after": running.rss_mb(),
    }


def floor_ratio(results: Results, names: Sequence[str]) -> None:
    """CT ingest with 4 associations of each openpacs system as a share of storescp's in the
    same run (issue 13's target: at least 0.5), when both were measured."""
    figure = results.figures.get("ingest.ct.4")
    floor = figure.entries.get("storescp", {}).get("value") if figure else None
    results.define(RATIO_KEY, RATIO_LABEL, "x", higher_is_better=True)
    for name in names:
        if not name.startswith("openpacs") or figure is None:
            continue
        ours = figure.entries.get(name, {}).get("value")
        if ours is None:
            results.error(RATIO_KEY, name, "no CT ingest figure")
        elif not floor:
            results.not_applicable(RATIO_KEY, name, "storescp not measured in this run")
        else:
            results.put(RATIO_KEY, name, ours / floor, openpacs=ours, storescp=floor)


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
    if run.kind == "many":
        results.add_sample(f"{run.key}.p99", running.name, figures["latency_p99_ms"])
    else:
        results.add_sample(f"{run.key}.mbps", running.name, figures["mb_per_s"])
    results.add_sample(f"{run.key}.cpu", running.name, figures["server_cpu_percent"])
    extra = f", p99 {figures['latency_p99_ms']:.0f} ms" if run.kind == "many" else ""
    log(
        f"  {run.key}: {figures['instances_per_s']:.1f} inst/s, {figures['mb_per_s']:.1f} MB/s, "
        f"server CPU {figures['server_cpu_percent']:.0f}%{extra}"
    )
