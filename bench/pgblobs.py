"""python -m bench.pgblobs [--mb N] [--runs N]: how to keep blobs in PostgreSQL.

Writes and reads one blob of N MB (default 64) through `PostgresStore` with several chunk
sizes, and the same bytes as a large object (`lo_create` + `lo_put` per chunk, `lo_get` per
chunk), each in a throw-away database; prints MB/s, the peak of Python allocations during
the write and the read, and the space the database took per MB stored.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg

from openpacs.index.engine import create_index_engine
from openpacs.storage.postgres import PostgresStore

ADMIN_URL = os.environ.get("OPENPACS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
MB = 1_000_000
MIB = 1024 * 1024


@contextmanager
def database() -> Iterator[str]:
    name = f"openpacs_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def measure(call: Callable[[], object]) -> tuple[float, int]:
    """(seconds, peak bytes of Python allocations) of one call."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        call()
        return time.perf_counter() - started, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def database_bytes(url: str) -> int:
    with psycopg.connect(url) as connection:
        row = connection.execute("SELECT pg_database_size(current_database())").fetchone()
        assert row is not None
        return int(row[0])


def chunked(data: bytes, chunk: int) -> dict[str, float]:
    with database() as url:
        store = PostgresStore(create_index_engine(url, pool_size=2), chunk_size=chunk)
        store.check()
        empty = database_bytes(url)
        write, write_peak = measure(lambda: store.put_stream("b/k", io.BytesIO(data)))
        digest = hashlib.sha256()

        def read() -> None:
            with store.open("b/k") as blob:
                while part := blob.read(MIB):
                    digest.update(part)

        seconds, read_peak = measure(read)
        assert digest.digest() == hashlib.sha256(data).digest()
        used = database_bytes(url) - empty
        store.close()
    return _row(len(data), write, seconds, write_peak, read_peak, used)


def large_object(data: bytes, chunk: int) -> dict[str, float]:
    with database() as url, psycopg.connect(url) as connection:
        empty = database_bytes(url)
        made: list[int] = []

        def write() -> None:
            with connection.transaction():
                row = connection.execute("SELECT lo_create(0)").fetchone()
                assert row is not None
                made.append(row[0])
                view = memoryview(data)
                for offset in range(0, len(data), chunk):
                    part = bytes(view[offset : offset + chunk])
                    connection.execute("SELECT lo_put(%s, %s, %s)", (made[0], offset, part))

        seconds_in, write_peak = measure(write)
        oid = made[0]
        digest = hashlib.sha256()

        def read() -> None:
            with connection.transaction(), connection.cursor(binary=True) as cursor:
                for offset in range(0, len(data), chunk):
                    cursor.execute("SELECT lo_get(%s, %s, %s)", (oid, offset, chunk))
                    row = cursor.fetchone()
                    assert row is not None
                    digest.update(row[0])

        seconds_out, read_peak = measure(read)
        assert digest.digest() == hashlib.sha256(data).digest()
        used = database_bytes(url) - empty
    return _row(len(data), seconds_in, seconds_out, write_peak, read_peak, used)


def _row(
    size: int, write: float, read: float, write_peak: int, read_peak: int, used: int
) -> dict[str, float]:
    return {
        "write MB/s": size / MB / write,
        "read MB/s": size / MB / read,
        "write peak MB": write_peak / MB,
        "read peak MB": read_peak / MB,
        "space / data": used / size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pgblobs", description=__doc__)
    parser.add_argument("--mb", type=int, default=64)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    data = os.urandom(args.mb * MIB)  # pixel data compresses little: random is the worst case
    cases: list[tuple[str, Callable[[], dict[str, float]]]] = [
        (f"chunks {kib} KiB", lambda kib=kib: chunked(data, kib * 1024))
        for kib in (256, 1024, 4096)
    ]
    cases += [("large object, 1 MiB per call", lambda: large_object(data, MIB))]
    columns = ("write MB/s", "read MB/s", "write peak MB", "read peak MB", "space / data")
    print(f"{args.mb} MiB blob, best of {args.runs}")
    print(f"{'':30}" + "".join(f"{c:>15}" for c in columns))
    for label, case in cases:
        rows = [case() for _ in range(args.runs)]
        best = max(rows, key=lambda row: row["write MB/s"] + row["read MB/s"])
        print(f"{label:30}" + "".join(f"{best[c]:>15.2f}" for c in columns))


if __name__ == "__main__":
    main()
