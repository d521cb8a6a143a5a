"""Schema migrations on SQLite and PostgreSQL: the migrated schema is the models' schema,
upgrades are idempotent, and start-up refuses what it must not touch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, select, text

from openpacs.dicom.levels import Level
from openpacs.dicom.query import condition_for, tag_of
from openpacs.errors import ConfigError
from openpacs.index import migrate, schema
from openpacs.index.engine import create_index_engine
from openpacs.index.finder import Finder
from openpacs.index.schema import POSTGRESQL_ONLY_INDEXES, compared, metadata
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
        include = {
            "include_object": lambda _, name, kind, reflected, __: compared(name, kind, reflected)
        }
        context = MigrationContext.configure(connection, opts=include)
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_postgresql_has_the_header_index(engine: Engine) -> None:
    migrate.upgrade(engine)
    with engine.connect() as connection:
        names = {i["name"] for i in inspect(connection).get_indexes("instances")}
    if engine.dialect.name != "postgresql":
        assert not POSTGRESQL_ONLY_INDEXES & names
        return
    assert names >= POSTGRESQL_ONLY_INDEXES
    # An equality on a header attribute is served by it (the planner told not to scan).
    condition = condition_for(tag_of("InstitutionName"), "General Hospital")
    assert condition is not None
    clause = Finder("postgresql").header_condition(Level.IMAGE, condition)
    statement = select(schema.instances.c.pk).where(clause)
    compiled = statement.compile(engine, compile_kwargs={"literal_binds": True})
    with engine.connect() as connection:
        connection.execute(text("SET enable_seqscan = off"))
        plan = "\n".join(row[0] for row in connection.execute(text(f"EXPLAIN {compiled}")))
    assert "ix_instances_header_jsonb" in plan, plan
    # And a free-text query by the full-text index.
    words = Finder("postgresql").text_condition(Level.IMAGE, "general hosp")
    compiled = (
        select(schema.instances.c.pk)
        .where(words)
        .compile(engine, compile_kwargs={"literal_binds": True})
    )
    with engine.connect() as connection:
        connection.execute(text("SET enable_seqscan = off"))
        plan = "\n".join(row[0] for row in connection.execute(text(f"EXPLAIN {compiled}")))
    assert "ix_instances_text" in plan, plan


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


def _prepare_in_a_process(url: str) -> str:
    engine = create_index_engine(url)
    try:
        migrate.prepare(engine, auto_migrate=False)
        return "ok"
    except Exception as exc:  # the failure is the answer, reported to the parent
        return repr(exc)
    finally:
        engine.dispose()


def test_servers_starting_together_on_one_sqlite_file_all_start(tmp_path: Path) -> None:
    """Three processes make the schema of one new SQLite file at once: each waits its turn
    (a read-then-write transaction used to fail at once with "database is locked")."""
    import multiprocessing

    for attempt in range(4):
        url = f"sqlite:///{tmp_path / f'index-{attempt}.db'}"
        with multiprocessing.get_context("spawn").Pool(3) as pool:
            answers = pool.map(_prepare_in_a_process, [url] * 3, chunksize=1)
        assert answers == ["ok", "ok", "ok"]
        assert migrate.current(create_index_engine(url)) == migrate.HEAD_REVISION
