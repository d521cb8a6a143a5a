"""`python -m bench pg-scale`: the figures issue 3 asks for.

1. C-FIND study-level latency on openpacs-postgresql holding 100,000+ instances. Sending that
   many over DICOM would take too long, so the index is seeded through openpacs' own ingest
   code in-process (`build_archive(load_settings(config)).store_file(path)`, the call the
   C-STORE handler makes), from several worker processes, one archive each; then `openpacs
   serve` runs on that database and folder and answers the queries.
2. C-STORE ingest rate, 64x64 corpus, 1 and 4 associations: openpacs-pg-s3 (S3 emulated by
   moto) against openpacs-sqlite, in the same run.
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from statistics import median
from typing import Any

from bench import corpus, dimse, ingest, services, systems
from bench.procs import free_port
from bench.results import Results

SERIES_INSTANCES = 5  # one series of five 64x64 instances per study
DEFAULT_SYSTEMS = ("openpacs-sqlite", "openpacs-pg-s3")
SEED_BASE = 1000


def _seed_worker(job: tuple[str, int, int]) -> dict[str, float]:
    """Store `studies` generated studies through one archive (runs in a worker process)."""
    config, studies, seed = job
    from openpacs.compose import build_archive, configure_libraries
    from openpacs.config import load_settings

    archive = build_archive(load_settings(Path(config), environ={}))
    configure_libraries(archive.staging_dir())
    staging = archive.staging_dir() or Path(tempfile.gettempdir())
    stored, store_seconds, start = 0, 0.0, time.perf_counter()
    try:
        for ds in corpus.small_instances(studies, 1, SERIES_INSTANCES, seed=seed):
            corpus.rename_patient(ds)
            path = corpus.write_part10(ds, staging / f"seed-{seed}-{stored}.dcm")
            before = time.perf_counter()
            archive.store_file(path, consume=True)
            store_seconds += time.perf_counter() - before
            stored += 1
    finally:
        archive.close()
    return {"stored": stored, "store_seconds": store_seconds, "wall": time.perf_counter() - start}


def seed(config: Path, instances: int, workers: int, log: Callable[[str], None]) -> dict[str, Any]:
    """Seed the index with at least `instances` instances; returns the rates."""
    from openpacs.compose import build_archive
    from openpacs.config import load_settings

    build_archive(load_settings(config, environ={})).close()  # the schema, once, before workers
    studies = -(-instances // SERIES_INSTANCES)
    jobs = [
        (str(config), studies // workers + (w < studies % workers), SEED_BASE + w)
        for w in range(workers)
    ]
    log(f"seeding {studies * SERIES_INSTANCES:,} instances with {workers} worker processes")
    start = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        outcomes = pool.map(_seed_worker, jobs)
    wall = time.perf_counter() - start
    stored = sum(o["stored"] for o in outcomes)
    store_seconds = sum(o["store_seconds"] for o in outcomes)
    return {
        "instances": stored,
        "studies": studies,
        "workers": workers,
        "seconds": wall,
        "instances_per_s": stored / wall,
        "store_file_ms_mean": 1000 * store_seconds / stored,
        "workers_detail": outcomes,
    }


def _queries(running: systems.Running, patient_id: str, results: Results, samples: int) -> None:
    name = running.name
    for query, conditions in (
        ("name", {"PatientName": "A*"}),
        ("id", {"PatientID": patient_id}),
        ("date", {"StudyDate": corpus.DATE_RANGE}),
    ):
        key = f"pgscale.find.{query}"
        label = next(v for k, v in _QUERY_LABELS if k == query)
        results.define(key, f"C-FIND {label}, one association (ms)", "ms", higher_is_better=False)
        session = dimse.FindSession(running.port, running.aet)
        try:
            warm_up, matches = session.query(dimse.study_query(**conditions))
            identifier = dimse.study_query(**conditions)
            times = [1000 * session.query(identifier)[0] for _ in range(samples)]
        finally:
            session.close()
        results.put(
            key, name, median(times), samples=times, matches=matches, warm_up_ms=1000 * warm_up
        )
    key = "pgscale.findscu.name"
    results.define(key, "C-FIND PatientName=A*, findscu process (ms)", "ms", higher_is_better=False)
    query = {"PatientName": "A*"}
    times = [1000 * dimse.findscu(running.port, running.aet, query) for _ in range(samples)]
    results.put(key, name, median(times), samples=times)


_QUERY_LABELS = (
    ("name", "PatientName=A*"),
    ("id", "exact PatientID"),
    ("date", f"StudyDate={corpus.DATE_RANGE}"),
)


def scale(
    ctx: systems.Context, instances: int, workers: int, results: Results, log: Callable[[str], None]
) -> dict[str, Any]:
    name = "openpacs-postgresql"
    folder = ctx.work / "pg-scale"
    folder.mkdir()
    database = services.create_database("bench_pgscale")
    try:
        db_url = services.database_url(database)
        config = systems.write_openpacs_config(
            folder,
            ctx,
            port=free_port(),
            http_port=free_port(),
            db_url=db_url,
            storage={"url": str(folder / "blobs")},
        )
        seeded = seed(config, instances, workers, log)
        key = "pgscale.seed"
        label = f"Seed {seeded['instances']:,} instances in-process, {workers} workers (inst/s)"
        results.define(key, label, "inst/s", higher_is_better=True)
        results.put(key, name, seeded["instances_per_s"], **seeded)
        log(
            f"  {seeded['instances']:,} instances in {seeded['seconds']:.0f} s "
            f"({seeded['instances_per_s']:.0f} inst/s)"
        )
        running = systems.serve_openpacs(name, ctx, folder, config, db_url=db_url)
        try:
            indexed = running.count()
            studies = services.count_rows(db_url, "studies")
            log(f"openpacs serve on {indexed:,} instances, {studies:,} studies: C-FIND")
            results.note(f"pg-scale index: {indexed:,} instances in {studies:,} studies")
            patient_id = f"SP{SEED_BASE:03d}-00042"
            _queries(running, patient_id, results, samples=20)
        finally:
            running.stop()
        return {"seeding": seeded, "indexed_instances": indexed, "indexed_studies": studies}
    finally:
        services.drop_database(database)


def run(
    args: argparse.Namespace, ctx: systems.Context, log: Callable[[str], None]
) -> dict[str, Any]:
    names = args.names or list(DEFAULT_SYSTEMS)  # the systems whose ingest is compared
    results = Results()
    outcome = scale(ctx, args.instances, args.workers, results, log)
    small_a, small_b = corpus.small_corpus("small", "A"), corpus.small_corpus("small", "B")
    runs = [ingest.Run("small", 1, small_a), ingest.Run("small", 4, small_b)]
    repetitions = args.repetitions or 3
    ingest.measure(ctx, names, runs, repetitions, results, log)
    return {
        "results": results,
        "names": ["openpacs-postgresql", *(n for n in names if n != "openpacs-postgresql")],
        "repetitions": repetitions,
        **outcome,
    }
