"""Schema migrations on SQLite and PostgreSQL: the migrated schema is the models' schema,
upgrades are idempotent, and start-up refuses what it must not touch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, text

from openpacs.errors import ConfigError
from openpacs.index import migrate
from openpacs.index.engine import create_index_engine
from openpacs.index.schema import metadata
from tests.support.postgres import temporary_database


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = create_index_engine(f"sqlite:///{tmp_path / 'index.db'}")
        yield engine
        engine.dispose()
        return
    with temporary_database() as url:
        engine = create_index_engine(url)
        yield engine
        engine.dispose()


def test_migrations_build_exactly_the_models_schema(engine: Engine) -> None:
    migrate.upgrade(engine)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []


def test_upgrade_twice_is_harmless(engine: Engine) -> None:
    migrate.upgrade(engine)
    migrate.upgrade(engine)
    assert migrate.current(engine) == migrate.head()


def test_prepare_initialises_an_empty_database(engine: Engine) -> None:
    assert migrate.current(engine) is None
    migrate.prepare(engine, auto_migrate=False)
    assert migrate.current(engine) == migrate.head()


def test_prepare_refuses_an_out_of_date_schema_and_names_the_command(engine: Engine) -> None:
    migrate.upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0000'"))
    with pytest.raises(ConfigError, match="openpacs db upgrade"):
        migrate.prepare(engine, auto_migrate=False)


def test_prepare_refuses_foreign_tables(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE somebody_elses (id integer)"))
    with pytest.raises(ConfigError, match="no openpacs schema version"):
        migrate.prepare(engine, auto_migrate=False)
