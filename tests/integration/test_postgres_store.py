"""What the PostgreSQL blob store adds to the contract: chunking, flat memory, several
servers on one database, crashes mid-write, space given back after deletes."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from openpacs.errors import StoreUnavailable
from openpacs.index.engine import create_index_engine
from openpacs.storage.postgres import PostgresStore
from tests.support import postgres as pg_support
from tests.support.blobs import holds, put, read_at
from tests.support.s3 import free_port

CHUNK = 64 * 1024


@pytest.fixture
def store(postgres_url: str) -> Iterator[PostgresStore]:
    store = pg_support.blob_store(postgres_url, chunk_size=CHUNK)
    yield store
    store.close()


def _scalar(url: str, sql: str) -> int:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as connection:
            return int(connection.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


def _rows(url: str) -> tuple[int, int]:
    """(blob rows, chunk rows), kept or pending, as the database holds them."""
    return (
        _scalar(url, "SELECT count(*) FROM blob_objects"),
        _scalar(url, "SELECT count(*) FROM blob_chunks"),
    )


class _Pattern(io.RawIOBase):
    """``size`` bytes of a repeating pattern, produced as read: no big buffer in the test."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self._left = size
        self._pos = 0
        self._block = bytes(range(251)) * 2000

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        offset = self._pos % 251  # the byte at position i is i % 251, whatever the reads
        count = min(len(buffer), self._left, len(self._block) - offset)
        buffer[:count] = self._block[offset : offset + count]
        self._left -= count
        self._pos += count
        return count


def _digest(stream: io.RawIOBase | io.BufferedIOBase, size: int = 1024 * 1024) -> str:
    digest = hashlib.sha256()
    while chunk := stream.read(size):
        digest.update(chunk)
    return digest.hexdigest()


def test_ranges_and_seeks_across_chunks(store: PostgresStore) -> None:
    data = os.urandom(3 * CHUNK + 123)
    put(store, "r/k", data)
    for start, length in [(CHUNK - 5, 10), (0, 3 * CHUNK + 123), (2 * CHUNK, CHUNK + 500)]:
        assert read_at(store, "r/k", start, length) == data[start : start + length]
    with store.open("r/k") as blob:
        blob.seek(CHUNK + 7)
        assert blob.read(CHUNK) == data[CHUNK + 7 : 2 * CHUNK + 7]
        blob.seek(-3, io.SEEK_END)
        assert blob.read() == data[-3:]
        blob.seek(2)
        assert blob.read(4) == data[2:6]


def test_blob_is_kept_in_chunks_of_the_configured_size(
    store: PostgresStore, postgres_url: str
) -> None:
    put(store, "c/k", b"x" * (2 * CHUNK + 1))
    sizes = _scalar(postgres_url, f"SELECT count(*) FROM blob_chunks WHERE length(data) = {CHUNK}")
    assert sizes == 2
    assert _rows(postgres_url) == (1, 3)


def test_a_big_blob_goes_in_and_out_with_flat_memory(store: PostgresStore) -> None:
    """64 MiB through put_stream and open: Python's allocations peak at a few chunks."""
    size = 64 * 1024 * 1024
    expected = _digest(_Pattern(size))
    tracemalloc.start()
    try:
        assert store.put_stream("big/one", _Pattern(size)) == size  # type: ignore[arg-type]
        _, peak_in = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        with store.open("big/one") as blob:
            assert _digest(blob) == expected
        _, peak_out = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak_in < 2 * 1024 * 1024, peak_in
    assert peak_out < 4 * 1024 * 1024, peak_out


def test_servers_writing_one_key_at_once_leave_one_whole_blob(
    postgres_url: str, store: PostgresStore
) -> None:
    """Four stores (four servers' pools) put the same key at once: the last commit wins
    whole, and no chunk of a losing write stays behind."""
    others = [
        PostgresStore(create_index_engine(postgres_url, pool_size=1), chunk_size=CHUNK)
        for _ in range(4)
    ]
    payloads = [bytes([n]) * (3 * CHUNK + n) for n in range(4)]
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for _ in range(5):
                put(others[n], "same/key", payloads[n])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for other in others:
        other.close()
    assert errors == []
    with store.open("same/key") as blob:
        winner = blob.read()
    assert winner in payloads
    assert list(store.iterate()) == ["same/key"]
    assert _rows(postgres_url) == (1, -(-len(winner) // CHUNK))


def test_a_reader_notices_its_blob_replaced(store: PostgresStore) -> None:
    put(store, "v/k", b"a" * (2 * CHUNK))
    with store.open("v/k") as blob:
        assert blob.read(10) == b"a" * 10
        put(store, "v/k", b"b" * (2 * CHUNK))
        with pytest.raises(StoreUnavailable, match="replaced or deleted"):
            blob.read()
    assert read_at(store, "v/k", 0, 3) == b"bbb"


_WRITER = textwrap.dedent(
    """
    import sys, time
    from openpacs.index.engine import create_index_engine
    from openpacs.storage.postgres import PostgresStore

    class Endless:
        sent = 0
        def read(self, size=-1):
            if self.sent >= 5 * 65536:
                print("written", flush=True)
                time.sleep(600)
            self.sent += 65536
            return b"z" * 65536

    store = PostgresStore(create_index_engine(sys.argv[1], pool_size=1), chunk_size=65536)
    store.put_stream("crashed/key", Endless())
    """
)


def test_a_server_killed_mid_write_leaves_nothing(store: PostgresStore, postgres_url: str) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", _WRITER, postgres_url], stdout=subprocess.PIPE, text=True
    ) as writer:
        try:
            assert writer.stdout is not None
            assert writer.stdout.readline().strip() == "written"
            assert _rows(postgres_url)[0] == 0  # the pending row is invisible to others
            assert not holds(store, "crashed/key")
            writer.send_signal(signal.SIGKILL)
            writer.wait(timeout=30)
        finally:
            if writer.poll() is None:
                writer.kill()
                writer.wait(timeout=30)
    # PostgreSQL rolls the transaction back when it sees the connection gone.
    deadline = time.monotonic() + 30
    open_transactions = (
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND state LIKE 'idle in%'"
    )
    while _scalar(postgres_url, open_transactions):
        assert time.monotonic() < deadline, "the killed writer's transaction is still open"
        time.sleep(0.1)
    assert _rows(postgres_url) == (0, 0)
    assert list(store.iterate()) == []


def test_deleted_blobs_give_their_space_back(store: PostgresStore, postgres_url: str) -> None:
    """Deleting removes the chunks at once; after VACUUM (autovacuum's job) the same amount
    of new blobs fits in the space the deleted ones took."""
    blob = 4 * CHUNK
    for n in range(16):
        store.put_stream(f"s/{n}", _Pattern(blob))  # type: ignore[arg-type]
    size_query = "SELECT pg_total_relation_size('blob_chunks')"
    full = _scalar(postgres_url, size_query)
    for n in range(16):
        store.delete(f"s/{n}")
    assert _rows(postgres_url) == (0, 0)
    _vacuum(postgres_url)
    for n in range(16):
        store.put_stream(f"t/{n}", _Pattern(blob))  # type: ignore[arg-type]
    again = _scalar(postgres_url, size_query)
    assert again < full * 1.25, (full, again)  # reused, not grown by another 4 MiB


def _vacuum(url: str) -> None:
    engine = create_engine(
        url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    try:
        with engine.connect() as connection:
            connection.execute(text("VACUUM blob_chunks"))
            connection.execute(text("VACUUM blob_objects"))
    finally:
        engine.dispose()


def test_unreachable_database_is_store_unavailable() -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    store = PostgresStore(create_index_engine(url, pool_size=1))
    try:
        with pytest.raises(StoreUnavailable, match="cannot check the PostgreSQL blob store"):
            store.check()
        with pytest.raises(StoreUnavailable, match="cannot write blob"):
            put(store, "k", b"x")
    finally:
        store.close()
