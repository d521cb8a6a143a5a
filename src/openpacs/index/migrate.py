"""Schema migrations (Alembic, shipped inside the package).

`serve` initialises an empty database and refuses an out-of-date one unless told to migrate;
`openpacs db upgrade` migrates explicitly. On PostgreSQL an advisory lock makes concurrent
upgrades from several servers starting at once take turns.

Every start checks the schema, and almost always it is current: that check reads the
`alembic_version` row and compares it with `HEAD_REVISION`, without importing Alembic (about
10 MB and 150 ms per process). Alembic is imported only when a migration runs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

from openpacs.errors import ConfigError
from openpacs.index.engine import IMMEDIATE

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

#: The newest revision in migrations/versions; a new migration updates it (a unit test checks).
HEAD_REVISION = "0008_text_vector"
_VERSION_TABLE = "alembic_version"  # Alembic's default, which env.py keeps
_LOCK_ID = 0x6F70_6163  # "opac": the advisory lock key for migrations


def _config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(files("openpacs.index") / "migrations"))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    """The head revision of the migration scripts, as Alembic reads them."""
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(_config()).get_heads()
    return heads[0]


def current(engine: Engine) -> str | None:
    """The database's schema revision; None for a database openpacs has never initialised."""
    with engine.connect() as connection:
        if not inspect(connection).has_table(_VERSION_TABLE):
            return None
        rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    if len(rows) > 1:
        raise ConfigError(f"database: {_VERSION_TABLE} holds {len(rows)} revisions, not one")
    return str(rows[0][0]) if rows else None


def upgrade(engine: Engine, revision: str = "head") -> None:
    from alembic import command

    with _locked(engine) as connection:
        command.upgrade(_config(connection), revision)
        connection.commit()
    log.info("database schema at revision=%s", current(engine))


def prepare(engine: Engine, *, auto_migrate: bool) -> None:
    """Make sure the schema is current before serving (see the module docstring)."""
    revision = current(engine)
    if revision == HEAD_REVISION:
        return
    if revision is None and _has_tables(engine):
        raise ConfigError(
            "database: it holds tables but no openpacs schema version; use an empty database"
        )
    if revision is None or auto_migrate:
        upgrade(engine)
        return
    raise ConfigError(
        f"database: the schema is at revision {revision}, this version needs {HEAD_REVISION};"
        " run `openpacs db upgrade` (or set [database] auto_migrate = true)"
    )


# Not the index's: the PostgreSQL blob store's tables (storage/postgres.py) may share its
# database and outlive a lost index, which reindex then rebuilds beside them.
_NOT_INDEX_TABLES = frozenset({"alembic_version", "blob_objects", "blob_chunks"})


def _has_tables(engine: Engine) -> bool:
    names = set(inspect(engine).get_table_names())
    return bool(names - _NOT_INDEX_TABLES)


@contextmanager
def _locked(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _LOCK_ID})
            connection.commit()
        elif connection.dialect.name == "sqlite":
            # The migration's transaction takes the write lock at its start: servers starting
            # together on one file then wait their turn (busy timeout) and find the schema
            # current, where a read-then-write transaction fails at once with "locked".
            connection.execution_options(**{IMMEDIATE: True})
        try:
            yield connection
        finally:
            if connection.dialect.name == "postgresql":
                connection.rollback()
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _LOCK_ID})
                connection.commit()
