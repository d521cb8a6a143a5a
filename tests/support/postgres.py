"""A throw-away PostgreSQL database for a test run, on the server at OPENPACS_TEST_POSTGRES
(default postgresql://postgres@127.0.0.1:5432/test, the machine's service).

Each run creates its own database and drops it at the end; tests truncate the tables between
uses, since the servers under test open their own connections.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError

if TYPE_CHECKING:
    from openpacs.storage.postgres import PostgresStore

ADMIN_URL = os.environ.get("OPENPACS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
TABLES = (
    "instances",
    "series",
    "study_labels",
    "studies",
    "patients",
    "users",
    "sessions",
    "api_tokens",
    "login_failures",
    "audit_events",
    "remote_aes",
    "jobs",
    "blob_chunks",
    "blob_objects",
)


def _driver(url: URL) -> URL:
    return url.set(drivername="postgresql+psycopg")


@contextmanager
def temporary_database() -> Iterator[str]:
    """Create a uniquely named database; yields its URL; drops it afterwards."""
    admin = create_engine(_driver(make_url(ADMIN_URL)), isolation_level="AUTOCOMMIT")
    name = f"openpacs_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL is not reachable at {make_url(ADMIN_URL)!r}: {exc.orig}")
    try:
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def truncate(url: str) -> None:
    """Empty the index tables (if the schema exists), keeping the schema."""
    engine = create_engine(_driver(make_url(url)))
    try:
        with engine.begin() as connection:
            present = {
                row[0]
                for row in connection.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                )
            }
            tables = [t for t in TABLES if t in present]
            if tables:
                connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()


def blob_store(url: str, *, chunk_size: int = 1024 * 1024) -> PostgresStore:
    """A PostgreSQL blob store on ``url`` with its tables emptied; the caller closes it."""
    from openpacs.index.engine import create_index_engine
    from openpacs.storage.postgres import PostgresStore

    store = PostgresStore(create_index_engine(url, pool_size=2), chunk_size=chunk_size)
    store.check()  # makes the tables when missing
    truncate(url)
    return store
