"""Schema migrations (Alembic, shipped inside the package).

`serve` initialises an empty database and refuses an out-of-date one unless told to migrate;
`openpacs db upgrade` migrates explicitly. On PostgreSQL an advisory lock makes concurrent
upgrades from several servers starting at once take turns.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

from openpacs.errors import ConfigError

log = logging.getLogger(__name__)

_LOCK_ID = 0x6F70_6163  # "opac": the advisory lock key for migrations


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("openpacs.index") / "migrations"))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    heads = ScriptDirectory.from_config(_config()).get_heads()
    return heads[0]


def current(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    with _locked(engine) as connection:
        command.upgrade(_config(connection), revision)
        connection.commit()
    log.info("database schema at revision=%s", current(engine))


def prepare(engine: Engine, *, auto_migrate: bool) -> None:
    """Make sure the schema is current before serving (see the module docstring)."""
    revision = current(engine)
    if revision == head():
        return
    if revision is None and _has_tables(engine):
        raise ConfigError(
            "database: it holds tables but no openpacs schema version; use an empty database"
        )
    if revision is None or auto_migrate:
        upgrade(engine)
        return
    raise ConfigError(
        f"database: the schema is at revision {revision}, this version needs {head()};"
        " run `openpacs db upgrade` (or set [database] auto_migrate = true)"
    )


def _has_tables(engine: Engine) -> bool:
    names = set(inspect(engine).get_table_names())
    return bool(names - {"alembic_version"})


@contextmanager
def _locked(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _LOCK_ID})
            connection.commit()
        try:
            yield connection
        finally:
            if connection.dialect.name == "postgresql":
                connection.rollback()
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _LOCK_ID})
                connection.commit()
