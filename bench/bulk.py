"""`python -m bench bulk`: the figures issue 14 asks for, on the CT corpus (512x512 CT).

For each openpacs backend: C-STORE ingest (storescu, 1 and 4 associations, `openpacs serve`
started fresh), then `openpacs import` of the corpus folder into a fresh archive on the same
backend (its default processes: one per core, fewer for few files), then `openpacs reindex`
of that archive's store into a new, empty database; both timed whole and by their own
summary (without the interpreter's start-up). For Orthanc: its REST import, `POST /instances`
of every file (the way its users import folders, as its ImportDicomFiles.py does), from as
many client threads as cores.
Every step checks afterwards that every instance is indexed.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench import corpus, ingest, services, systems
from bench.procs import HOST, child_environ, free_port
from bench.results import BenchError, Results

DEFAULT_SYSTEMS = ("openpacs-sqlite", "openpacs-postgresql", "orthanc-sqlite")
IMPORT = "bulk.import.ct"
IMPORT_OWN = "bulk.import.ct.own"
REINDEX = "bulk.reindex.ct"
REINDEX_OWN = "bulk.reindex.ct.own"


def _backend(
    name: str, ctx: systems.Context, folder: Path, cleanups: list[Callable[[], None]]
) -> tuple[str, dict[str, Any], dict[str, str]]:
    """(database URL, storage section, environment) of a fresh archive of backend `name`."""
    env = child_environ()
    db_url = f"sqlite:///{folder / f'index-{uuid.uuid4().hex[:6]}.db'}"
    storage: dict[str, Any] = {"url": str(folder / "blobs")}
    if name in ("openpacs-postgresql", "openpacs-pg-s3"):
        database = services.create_database("bench_bulk")
        cleanups.append(lambda: services.drop_database(database))
        db_url = services.database_url(database)
    if name == "openpacs-pg-s3":
        moto = ctx.s3()
        storage = {"url": f"s3://{moto.make_bucket()}/archive", "s3_endpoint": moto.endpoint}
        storage["s3_region"] = moto.region
        env.update(moto.environment)
    return db_url, storage, env


def _config(ctx: systems.Context, folder: Path, db_url: str, storage: dict[str, Any]) -> Path:
    return systems.write_openpacs_config(
        folder, ctx, port=free_port(), http_port=free_port(), db_url=db_url, storage=storage
    )


def _openpacs_command(
    verb: str, config: Path, env: dict[str, str], *args: str
) -> tuple[float, float]:
    """(wall seconds of the command, seconds its own summary reports: without start-up)."""
    command = [sys.executable, "-m", "openpacs", verb, "--config", str(config)]
    command += ["--no-progress", *args]
    start = time.perf_counter()
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=config.parent, timeout=1800
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise BenchError(f"openpacs {verb} failed: {done.stdout[-500:]} {done.stderr[-500:]}")
    found = re.search(r" in ([0-9.]+) s \(", done.stdout)
    if found is None:
        raise BenchError(f"openpacs {verb}: no timing in its summary: {done.stdout[-300:]}")
    return seconds, float(found.group(1))


def _openpacs_bulk(name: str, ctx: systems.Context, ct: corpus.Corpus, results: Results) -> None:
    folder = ctx.work / f"bulk-{name}-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    cleanups: list[Callable[[], None]] = []
    try:
        db_url, storage, env = _backend(name, ctx, folder, cleanups)
        config = _config(ctx, folder, db_url, storage)
        seconds, own = _openpacs_command("import", config, env, str(ct.root))
        _check(services.count_rows(db_url, "instances"), ct.instances, "import")
        results.put(IMPORT, name, ct.instances / seconds, seconds=seconds)
        results.put(IMPORT_OWN, name, ct.instances / own, seconds=own)
        # The database is lost, the store survives: a new, empty index from the same store.
        lost_url, _, _ = _backend(name, ctx, folder, cleanups)
        config = _config(ctx, folder, lost_url, storage)
        seconds, own = _openpacs_command("reindex", config, env)
        _check(services.count_rows(lost_url, "instances"), ct.instances, "reindex")
        results.put(REINDEX, name, ct.instances / seconds, seconds=seconds)
        results.put(REINDEX_OWN, name, ct.instances / own, seconds=own)
    finally:
        for cleanup in reversed(cleanups):
            cleanup()


def _check(found: int, expected: int, what: str) -> None:
    if found != expected:
        raise BenchError(f"{what}: {found} of {expected} instances indexed")


def _orthanc_import(
    name: str, ctx: systems.Context, ct: corpus.Corpus, workers: int, results: Results
) -> None:
    running = systems.start(name, ctx)
    try:
        files = sorted(path for part in ct.parts for path in part.rglob("*") if path.is_file())
        url = f"http://{HOST}:{running.http_port}/instances"

        def post(path: Path) -> None:
            request = urllib.request.Request(url, data=path.read_bytes(), method="POST")
            request.add_header("Content-Type", "application/dicom")
            with urllib.request.urlopen(request, timeout=120) as response:
                response.read()

        start = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(post, files))
        seconds = time.perf_counter() - start
        _check(running.count(), ct.instances, "Orthanc REST import")
        results.put(IMPORT, name, ct.instances / seconds, seconds=seconds, threads=workers)
    finally:
        running.stop()


def run(
    args: argparse.Namespace, ctx: systems.Context, log: Callable[[str], None]
) -> dict[str, Any]:
    names = args.names or list(DEFAULT_SYSTEMS)
    workers = args.workers
    results = Results()
    ct_a = corpus.ct_corpus(args.size, "A")
    ct_b = corpus.ct_corpus(args.size, "B")
    for key, label in (
        (IMPORT, "Import CT 512x512 from a folder, whole command (inst/s; Orthanc: REST POST"
         f" /instances, {workers} client threads)"),
        (IMPORT_OWN, "Import CT 512x512 from a folder, without start-up (inst/s)"),
        (REINDEX, "Reindex CT 512x512 from the store, whole command (inst/s)"),
        (REINDEX_OWN, "Reindex CT 512x512 from the store, without start-up (inst/s)"),
    ):  # fmt: skip
        results.define(key, label, "inst/s", higher_is_better=True)
    openpacs = [n for n in names if n.startswith("openpacs")]
    runs = [ingest.Run("ct", 1, ct_a), ingest.Run("ct", 4, ct_b)]
    ingest.measure(ctx, openpacs, runs, args.repetitions or 1, results, log)
    for name in names:
        log(f"bulk: {name}")
        try:
            if name.startswith("openpacs"):
                _openpacs_bulk(name, ctx, ct_a, results)
            elif name.startswith("orthanc"):
                _orthanc_import(name, ctx, ct_a, workers, results)
        except Exception as exc:
            results.error(IMPORT, name, exc)
    return {"results": results, "names": names, "workers": workers, "cpus": os.cpu_count()}
