"""BlobStore in PostgreSQL: each blob a row of ``blob_objects`` and its bytes in rows of
``blob_chunks``, fixed-size ``bytea`` chunks (1 MiB by default).

Why chunks rather than large objects: chunk rows are ordinary table rows, so they follow the
table's grants, logical replication and ``pg_dump --table``, they go away with the row that
owns them (``ON DELETE CASCADE``; a large object outlives its reference until ``lo_unlink``)
and they need no privilege on ``pg_largeobject``. Streaming is the same either way: a write
sends one chunk per statement and a read fetches one chunk per statement, so memory stays at
one chunk whatever the blob's size. ``bench/pgblobs.py`` compares chunk sizes and large objects.

Atomicity comes from one transaction per put: the new blob's row has no key while its chunks
are inserted, and gets its key (replacing any previous blob under it) only at the end, in the
same transaction. A failed or interrupted write rolls back and leaves nothing; readers never
see a blob whose key is not yet set. The chunks are stored ``STORAGE EXTERNAL`` (out of line,
uncompressed): pixel data rarely compresses and slices are then cheap.

A delete removes the row and, by cascade, its chunks; the space becomes reusable once VACUUM
(autovacuum, by default) has passed, and is given back to the operating system only by
``VACUUM FULL`` or when the free pages lie at the end of the table.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import psycopg
from psycopg import errors as pg_errors

from openpacs.errors import NotFound, StoreUnavailable
from openpacs.storage.base import ByteSource, SeekableReader, validate_key

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer
    from sqlalchemy import Engine


MIB = 1024 * 1024
DEFAULT_CHUNK_SIZE = MIB
_READ_BUFFER = 256 * 1024
_LIST_PAGE = 1000
_PUBLISH_ATTEMPTS = 5  # a concurrent put of the same key can win the race a few times
_SCHEMA_LOCK = 0x6F70_626C  # pg_advisory_xact_lock id: "opbl"

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS blob_objects (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        key text UNIQUE,
        size bigint NOT NULL DEFAULT 0,
        chunk_size integer NOT NULL,
        modified timestamptz NOT NULL DEFAULT clock_timestamp()
    )""",
    """CREATE TABLE IF NOT EXISTS blob_chunks (
        blob_id bigint NOT NULL REFERENCES blob_objects (id) ON DELETE CASCADE,
        seq integer NOT NULL,
        data bytea NOT NULL,
        PRIMARY KEY (blob_id, seq)
    )""",
    "ALTER TABLE blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL",
)


class PostgresStore:
    """BlobStore over two tables of a PostgreSQL database reached through ``engine``.

    ``engine`` is a SQLAlchemy engine on psycopg (the index's own settings: pool, rotated
    passwords, RDS IAM tokens); only its pooled driver connections are used. The tables are
    created on first use when missing (``check`` does it at start-up).
    """

    def __init__(self, engine: Engine, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        if chunk_size < 1024 or chunk_size > 64 * MIB:
            raise ValueError("PostgreSQL blob chunk size must be between 1 KiB and 64 MiB")
        self._engine = engine
        self._chunk = chunk_size
        self._schema_ready = False

    def __repr__(self) -> str:
        url = self._engine.url.render_as_string(hide_password=True)
        return f"PostgresStore(url={url!r})"

    def close(self) -> None:
        """Close the pooled connections."""
        self._engine.dispose()

    # -- connections --------------------------------------------------------------------------

    @contextmanager
    def _connection(self, action: str) -> Iterator[psycopg.Connection[Any]]:
        """A pooled psycopg connection, rolled back if left in a transaction; database
        errors become StoreUnavailable naming ``action``."""
        try:
            fairy = self._engine.raw_connection()
        except Exception as exc:  # SQLAlchemy wraps the driver's connection errors
            raise StoreUnavailable(f"cannot {action}: {_reason(exc)}") from exc
        try:
            # SQLAlchemy types the driver's connection as any DB-API connection; this
            # engine's driver is psycopg (the URL is postgresql+psycopg).
            connection = cast("psycopg.Connection[Any]", fairy.driver_connection)
            if connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                connection.rollback()  # e.g. the pool's ping: transaction() must BEGIN anew
            if not self._schema_ready:
                self._ensure_schema(connection)
            yield connection
        except psycopg.Error as exc:
            with suppress(psycopg.Error):
                connection.rollback()
            raise StoreUnavailable(f"cannot {action}: {_reason(exc)}") from exc
        finally:
            fairy.close()  # back to the pool, which rolls back what is left open

    def _ensure_schema(self, connection: psycopg.Connection[Any]) -> None:
        """Create the tables if missing, under a lock so that servers starting together
        do not race; a role without CREATE works on tables its owner made."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass('blob_objects'), to_regclass('blob_chunks')")
            row = cursor.fetchone()
            connection.commit()
            if row is None or None in row:
                with connection.transaction():
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                    for statement in SCHEMA:
                        cursor.execute(statement)
        self._schema_ready = True

    # -- writing ------------------------------------------------------------------------------

    def put_file(self, key: str, source: Path, *, consume: bool = False) -> None:
        validate_key(key)  # a rejected key leaves the file with the caller
        source = Path(source)
        try:
            try:
                blob = source.open("rb")
            except OSError as exc:
                raise StoreUnavailable(
                    f"cannot write blob {key!r}: cannot read {source}: {_why(exc)}"
                ) from exc
            with blob:
                self.put_stream(key, blob)
        finally:
            if consume:  # handed over: the file must not linger, even after a failure
                with suppress(FileNotFoundError):
                    source.unlink()

    def put_stream(self, key: str, stream: ByteSource) -> int:
        """Insert the chunks under a new keyless row, then give it the key, in one
        transaction: a failure anywhere rolls it all back."""
        validate_key(key)
        with self._connection(f"write blob {key!r}") as connection:
            try:
                with connection.transaction(), connection.cursor() as cursor:
                    cursor.execute(
                        "INSERT INTO blob_objects (chunk_size) VALUES (%s) RETURNING id",
                        (self._chunk,),
                    )
                    blob_id = _one(cursor)[0]
                    size = 0
                    for seq, chunk in enumerate(_chunks(stream, self._chunk)):
                        cursor.execute(
                            "INSERT INTO blob_chunks (blob_id, seq, data) VALUES (%s, %s, %s)",
                            (blob_id, seq, chunk),
                        )
                        size += len(chunk)
                    self._publish(connection, cursor, key, blob_id, size)
            except OSError as exc:
                raise StoreUnavailable(f"cannot write blob {key!r}: {_why(exc)}") from exc
            return size

    def _publish(
        self,
        connection: psycopg.Connection[Any],
        cursor: psycopg.Cursor[Any],
        key: str,
        blob_id: int,
        size: int,
    ) -> None:
        """Replace whatever blob has ``key`` by ``blob_id``. Puts of one key publish one at
        a time (a transaction lock on the key's hash, held to the commit that follows), so
        each one's DELETE sees the blob the one before committed: the last commit wins. A
        unique violation (a hash shared with another key's lock cannot cause one) is retried
        from a savepoint all the same."""
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (key,))
        for attempt in range(_PUBLISH_ATTEMPTS):
            try:
                with connection.transaction():
                    cursor.execute("DELETE FROM blob_objects WHERE key = %s", (key,))
                    cursor.execute(
                        "UPDATE blob_objects SET key = %s, size = %s,"
                        " modified = clock_timestamp() WHERE id = %s",
                        (key, size, blob_id),
                    )
                return
            except pg_errors.UniqueViolation:
                if attempt == _PUBLISH_ATTEMPTS - 1:
                    raise

    # -- reading ------------------------------------------------------------------------------

    def _lookup(self, key: str) -> tuple[int, int, int, float]:
        """(id, size, chunk size, modified) of the blob under ``key``; NotFound if none."""
        validate_key(key)
        with self._connection(f"read blob {key!r}") as connection, connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, size, chunk_size, extract(epoch FROM modified)::float8"
                " FROM blob_objects WHERE key = %s",
                (key,),
            )
            row = cursor.fetchone()
            connection.commit()
        if row is None:
            raise NotFound(f"no blob under key {key!r}")
        return int(row[0]), int(row[1]), int(row[2]), float(row[3])

    def _fetch(self, key: str, blob_id: int, first: int, last: int) -> list[bytes]:
        """Chunks ``first..last`` of one blob; StoreUnavailable if it was replaced or
        deleted since it was looked up (its chunks went with it)."""
        with self._connection(f"read blob {key!r}") as connection:
            with connection.cursor(binary=True) as cursor:
                cursor.execute(
                    "SELECT data FROM blob_chunks WHERE blob_id = %s AND seq BETWEEN %s AND %s"
                    " ORDER BY seq",
                    (blob_id, first, last),
                )
                chunks = [bytes(row[0]) for row in cursor.fetchall()]
            connection.commit()
        if len(chunks) != last - first + 1:
            raise StoreUnavailable(f"blob {key!r} was replaced or deleted while being read")
        return chunks

    def open(self, key: str) -> BinaryIO:
        """The blob's row and its first chunk in one statement (most instances fit in one
        chunk), later chunks one statement each."""
        validate_key(key)
        with (
            self._connection(f"read blob {key!r}") as connection,
            connection.cursor(binary=True) as cursor,
        ):
            cursor.execute(
                "SELECT o.id, o.size, o.chunk_size, c.data FROM blob_objects o"
                " LEFT JOIN blob_chunks c ON c.blob_id = o.id AND c.seq = 0 WHERE o.key = %s",
                (key,),
            )
            row = cursor.fetchone()
            connection.commit()
        if row is None:
            raise NotFound(f"no blob under key {key!r}")
        blob_id, size, chunk_size = int(row[0]), int(row[1]), int(row[2])
        first = bytes(row[3]) if row[3] is not None else b""
        raw = _ChunkReader(
            lambda seq: self._fetch(key, blob_id, seq, seq)[0], size, chunk_size, first
        )
        return io.BufferedReader(raw, buffer_size=_READ_BUFFER)

    @contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        """Download to a temporary file (same suffix as the key), removed after the block."""
        with self.open(key) as blob:
            fd, name = tempfile.mkstemp(prefix="openpacs-", suffix=PurePosixPath(key).suffix)
            try:
                with open(fd, "wb") as out:
                    shutil.copyfileobj(blob, out, MIB)
            except BaseException as exc:
                os.unlink(name)
                if isinstance(exc, OSError):
                    raise StoreUnavailable(
                        f"cannot download blob {key!r} to {name}: {_why(exc)}"
                    ) from exc
                raise
        try:
            yield Path(name)
        finally:
            with suppress(FileNotFoundError):
                os.unlink(name)

    def file_path(self, key: str) -> Path | None:
        return None

    def size(self, key: str) -> int:
        return self._lookup(key)[1]

    def modified(self, key: str) -> float:
        return self._lookup(key)[3]

    # -- removing and listing -----------------------------------------------------------------

    def delete(self, key: str) -> None:
        validate_key(key)
        with (
            self._connection(f"delete blob {key!r}") as connection,
            connection.transaction(),
            connection.cursor() as cursor,
        ):
            cursor.execute("DELETE FROM blob_objects WHERE key = %s", (key,))

    def iterate(self) -> Iterator[str]:
        """Keys in pages (keyset pagination), so no connection is held between pages."""
        after = ""
        while True:
            with self._connection("list blobs") as connection, connection.cursor() as cursor:
                cursor.execute(
                    "SELECT key FROM blob_objects WHERE key IS NOT NULL AND key > %s"
                    " ORDER BY key LIMIT %s",
                    (after, _LIST_PAGE),
                )
                keys = [row[0] for row in cursor.fetchall()]
                connection.commit()
            yield from keys
            if len(keys) < _LIST_PAGE:
                return
            after = keys[-1]

    # -- operations ---------------------------------------------------------------------------

    def staging_dir(self) -> Path | None:
        return None

    def check(self) -> None:
        """Make the tables if missing, then write a probe blob and roll it back."""
        self._schema_ready = False
        with self._connection("check the PostgreSQL blob store") as connection:
            with connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO blob_objects (chunk_size) VALUES (%s) RETURNING id",
                    (self._chunk,),
                )
                cursor.execute(
                    "INSERT INTO blob_chunks (blob_id, seq, data) VALUES (%s, 0, %s)",
                    (_one(cursor)[0], b"openpacs storage check"),
                )
            connection.rollback()


class _ChunkReader(SeekableReader):
    """A seekable raw reader over one blob's chunks, fetching one chunk at a time and
    holding no connection between reads (a slow client never pins a pooled connection)."""

    def __init__(
        self, fetch: Callable[[int], bytes], size: int, chunk_size: int, first: bytes
    ) -> None:
        super().__init__()
        self._fetch = fetch
        self._size = size
        self._chunk_size = chunk_size
        self._pos = 0
        self._cached: tuple[int, bytes] | None = (0, first) if size else None

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        if self._pos >= self._size or not len(view):
            return 0
        seq, offset = divmod(self._pos, self._chunk_size)
        if self._cached is None or self._cached[0] != seq:
            self._cached = (seq, self._fetch(seq))
        data = self._cached[1][offset : offset + len(view)]
        if not data:
            raise StoreUnavailable("a PostgreSQL blob ended before its recorded size")
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def close(self) -> None:
        self._cached = None
        super().close()


def _chunks(stream: ByteSource, size: int) -> Iterator[bytes]:
    """Full chunks of ``size`` from ``stream`` (the last one shorter), since readers find a
    byte's chunk by division."""
    while True:
        parts: list[bytes] = []
        want = size
        while want:
            part = stream.read(want)
            if part is None:  # not the end: storing what came so far would truncate the blob
                raise BlockingIOError("a non-blocking stream had no data ready")
            if not part:
                break
            parts.append(part)
            want -= len(part)
        if parts:
            yield b"".join(parts)
        if want:
            return


def _one(cursor: psycopg.Cursor[Any]) -> tuple[Any, ...]:
    row = cursor.fetchone()
    if row is None:  # pragma: no cover - INSERT ... RETURNING always returns its row
        raise StoreUnavailable("PostgreSQL returned no row")
    return tuple(row)


def _reason(exc: BaseException) -> str:
    """The database's reason, without the statement or its parameters (blob bytes)."""
    cause = getattr(exc, "orig", None) or exc
    if isinstance(cause, psycopg.Error):
        diag = cause.diag
        if diag.message_primary:
            return f"PostgreSQL: {diag.message_primary}"
        return f"PostgreSQL: {str(cause).splitlines()[0] if str(cause) else type(cause).__name__}"
    return type(cause).__name__


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__
