"""Database engines for the index: SQLite (embedded default) and PostgreSQL.

SQLite runs in WAL mode so readers never wait for the writer, with `synchronous=FULL` because a
C-STORE is acknowledged only once its index row is durable. Write transactions start with
`BEGIN IMMEDIATE`: a deferred transaction that later upgrades to a write lock can fail with
SQLITE_BUSY without the busy timeout ever applying.

A PostgreSQL password can change under a running server (RDS rotates its managed master
password every week): given `credentials`, every new connection asks it for the current user
and password, so pooled connections keep working and new ones use the rotated secret.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

from openpacs.errors import ConfigError, require_extra

log = logging.getLogger("openpacs.index")

IMMEDIATE = "openpacs_sqlite_immediate"
_BUSY_TIMEOUT_MS = 30_000


Credentials = Callable[[], tuple[str | None, str]]
"""Returns (user name or None for the URL's, password), read afresh."""


def create_index_engine(
    url: str | URL,
    *,
    pool_size: int = 10,
    max_overflow: int = 20,
    credentials: Credentials | None = None,
) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, pool_size=pool_size, max_overflow=max_overflow)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername == "postgresql+psycopg":
        require_extra("postgresql", "psycopg", "a PostgreSQL database")
    engine = create_engine(
        parsed, pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=True
    )
    if credentials is not None:
        _read_credentials_per_connection(engine, credentials)
    return engine


def _read_credentials_per_connection(engine: Engine, credentials: Credentials) -> None:
    """Each new connection uses the secret as it is now; if it cannot be read (being
    rewritten), the last good one, with a warning."""
    last: dict[str, Any] = {}

    @event.listens_for(engine, "do_connect")
    def _on_connect(_dialect: Any, _record: Any, _args: Any, params: dict[str, Any]) -> None:
        try:
            user, password = credentials()
        except ConfigError as exc:
            log.warning("database credentials unreadable, using the last ones: %s", exc)
        else:
            last.update({"password": password} | ({"user": user} if user else {}))
        params.update(last)


def _sqlite_engine(parsed: URL, *, pool_size: int, max_overflow: int) -> Engine:
    if parsed.database and parsed.database != ":memory:":
        folder = Path(parsed.database).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"database.url: cannot create {folder}: {exc.strerror}") from None
    engine = create_engine(
        parsed,
        pool_size=pool_size,
        max_overflow=max_overflow,
        connect_args={"check_same_thread": False, "timeout": _BUSY_TIMEOUT_MS / 1000},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin event, not the driver, decide how transactions start.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
