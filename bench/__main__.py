"""python -m bench [run] [--size small|full] [--systems a,b] [--out PATH]
python -m bench pg-scale [--instances N] [--workers N] [--out PATH]
python -m bench bulk [--size small|full] [--systems a,b] [--workers N] [--out PATH]

`run` (the default) measures openpacs, Orthanc and storescp side by side (issue 6); `pg-scale`
measures C-FIND on openpacs-postgresql with 100,000+ indexed instances and ingest on
postgresql+S3 versus sqlite+folder (issue 3). Every child process is killed on the way out,
also on Ctrl-C or SIGTERM. `bulk` measures `openpacs import` and `openpacs reindex` against
C-STORE ingest on the same backend and Orthanc's REST import (issue 14).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from bench import BENCH_DIR, corpus, ingest, query, report, systems
from bench.procs import free_port, kill_all
from bench.results import Results

LOG_COPY = BENCH_DIR / ".cache" / "logs"
PLANS = {
    "small": query.Plan(
        find_process=5,
        find_assoc=20,
        qido=5,
        wado=2,
        render=5,
        move=1,
        get=1,
        find_idle=50,
        find_busy=50,
    ),
    "full": query.Plan(),
}
MANY_ASSOCIATIONS = 50


class Clock:
    def __init__(self) -> None:
        self.start = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def log(self, message: str) -> None:
        print(f"[{self.elapsed():6.1f} s] {message}", file=sys.stderr, flush=True)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[3])
    parser.add_argument("command", nargs="?", default="run", choices=("run", "pg-scale", "bulk"))
    parser.add_argument("--size", choices=("small", "full"), default="small")
    parser.add_argument(
        "--systems",
        help=f"comma-separated subset of {', '.join(systems.SYSTEMS)} (default: all; pg-scale:"
        " openpacs-sqlite,openpacs-pg-s3, whose ingest it compares)",
    )
    parser.add_argument("--out", type=Path, help="JSON file (default bench/results/...)")
    parser.add_argument("--repetitions", type=int, help="ingest repetitions (small 1, full 3)")
    parser.add_argument("--openpacs-log-level", default="INFO", help="openpacs serve --log-level")
    parser.add_argument("--instances", type=int, default=100_000, help="pg-scale: index size")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 2,
        help="pg-scale: seeding processes; bulk: import processes and REST client threads",
    )
    args = parser.parse_args(argv)
    names = [n.strip() for n in (args.systems or "").split(",") if n.strip()]
    unknown = [n for n in names if n not in systems.SYSTEMS]
    if unknown:
        parser.error(f"unknown systems {unknown}; choose from {', '.join(systems.SYSTEMS)}")
    if not names and args.command == "run":
        names = list(systems.SYSTEMS)
    args.names = [n for n in systems.SYSTEMS if n in names]  # the table's fixed order
    return args


def run(args: argparse.Namespace, ctx: systems.Context, clock: Clock) -> dict[str, Any]:
    size = args.size
    repetitions = args.repetitions or (1 if size == "small" else 3)
    clock.log(f"corpora ({size})")
    ct_a, ct_b = corpus.ct_corpus(size, "A"), corpus.ct_corpus(size, "B")
    small_a, small_b = corpus.small_corpus(size, "A"), corpus.small_corpus(size, "B")
    many, busy = corpus.many_corpus(size), corpus.busy_corpus(size)
    if "openpacs-pg-s3" in args.names:  # start the S3 emulator while other systems run
        threading.Thread(target=ctx.s3, daemon=True).start()
    results = Results()
    runs = [
        ingest.Run("ct", 1, ct_a),
        ingest.Run("ct", 4, ct_b),
        ingest.Run("small", 1, small_a),
        ingest.Run("small", 4, small_b),
        ingest.Run("many", MANY_ASSOCIATIONS, many),
    ]
    # small: the systems of the (last) ingest repetition go on to the query phase, topped up
    # to 300 studies (the ingested corpora hold 202); full: the query phase starts them anew
    reuse = size == "small"
    query_names = [n for n in args.names if n not in systems.INGEST_ONLY]
    ingested = sum(run.corpus.studies for run in runs)
    first = corpus.index_corpus(
        "topup" if reuse else "index", 300 - (ingested if reuse else ct_a.studies), seed=100
    )
    tiers = [query.Tier(300, (first,), (small_a if reuse else first).sample_patient_id)]
    if size == "full":
        # the first tier ends with C-FIND while storing `busy`: it counts towards the 20,000
        index20k = corpus.index_corpus("index20k", 20_000 - 300 - busy.studies, seed=200)
        tiers.append(query.Tier(20_000, (index20k,), index20k.sample_patient_id))
    kept = ingest.measure(ctx, args.names, runs, repetitions, results, clock.log, keep_last=reuse)
    ingest.floor_ratio(results, args.names)
    try:
        for name in set(kept) - set(query_names):
            kept.pop(name).stop()
        if query_names:
            phase = query.QueryPhase(ctx, ct_a, PLANS[size], results, clock.log, busy=busy)
            loaded = sum(run.corpus.instances for run in runs) if reuse else 0
            phase.run(query_names, tiers, running=kept if reuse else None, loaded=loaded)
    finally:
        for running in kept.values():
            running.stop()  # a no-op for those the query phase stopped
    corpora = [ct_a, ct_b, small_a, small_b, many, busy, *(c for t in tiers for c in t.load)]
    return {
        "results": results,
        "repetitions": repetitions,
        "plan": PLANS[size].__dict__,
        "corpora": {
            c.name: {"instances": c.instances, "studies": c.studies, "bytes": c.bytes}
            for c in corpora
        },
    }


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    missing = systems.missing_packages(args.names)
    if missing:
        print(
            f"missing Debian packages: {' '.join(missing)}; run scripts/bench (installs them)"
            f" or apt-get install {' '.join(missing)}",
            file=sys.stderr,
        )
        return 2
    clock = Clock()
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    started = datetime.now(UTC)
    work = Path(tempfile.mkdtemp(prefix="openpacs-bench-"))
    logs = work / "logs"
    logs.mkdir()
    ctx = systems.Context(
        work, logs, "STORESCP", free_port(), openpacs_log_level=args.openpacs_log_level
    )
    try:
        if args.command == "bulk":
            from bench import bulk

            outcome = bulk.run(args, ctx, clock.log)
            names = outcome.pop("names")
            kind = "bulk"
            title = f"openpacs bulk import and reindex, {started:%Y-%m-%d %H:%M} UTC"
        elif args.command == "pg-scale":
            from bench import pgscale

            outcome = pgscale.run(args, ctx, clock.log)
            names = outcome.pop("names")
            kind = "pg-scale"
            title = f"openpacs pg-scale, {started:%Y-%m-%d %H:%M} UTC"
        else:
            outcome = run(args, ctx, clock)
            names, kind = args.names, args.size
            title = f"openpacs benchmark ({args.size}), {started:%Y-%m-%d %H:%M} UTC"
        results = outcome.pop("results")
        clock.log("done measuring; collecting machine facts")
        table = report.show(results, names, title)
        payload = {
            "kind": kind,
            "command": ["python", "-m", "bench", *(sys.argv[1:] if argv is None else argv)],
            "started_utc": started.isoformat(),
            "duration_s": clock.elapsed(),
            "machine": report.machine_facts(),
            "systems": names,
            "system_configs": ctx.configs,
            **outcome,
            **results.as_json(),
            "table": table,
            "legend": report.LEGEND,
        }
        path = report.write_json(args.out, kind, payload)
        print(f"results: {path}\nlogs: {LOG_COPY}\nwall time: {clock.elapsed():.0f} s")
        return 0
    except KeyboardInterrupt:
        print("interrupted: stopping every process", file=sys.stderr)
        return 130
    finally:
        kill_all()
        if ctx.moto is not None:
            ctx.moto.stop()
        shutil.rmtree(LOG_COPY, ignore_errors=True)
        shutil.copytree(logs, LOG_COPY, dirs_exist_ok=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
