"""The start-up schema check: one look at `alembic_version`, Alembic itself only to migrate."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from openpacs.errors import ConfigError
from openpacs.index import migrate
from openpacs.index.engine import create_index_engine


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_index_engine(f"sqlite:///{tmp_path / 'index.db'}")
    yield engine
    engine.dispose()


def test_the_head_constant_is_the_head_of_the_migration_scripts() -> None:
    assert migrate.head() == migrate.HEAD_REVISION


def test_an_empty_database_has_no_revision(engine: Engine) -> None:
    assert migrate.current(engine) is None


def test_prepare_initialises_an_empty_database_to_the_head(engine: Engine) -> None:
    migrate.prepare(engine, auto_migrate=False)
    assert migrate.current(engine) == migrate.HEAD_REVISION


def test_more_than_one_recorded_revision_is_refused(engine: Engine) -> None:
    migrate.upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO alembic_version (version_num) VALUES ('0001')"))
    with pytest.raises(ConfigError, match="2 revisions"):
        migrate.current(engine)


def test_a_current_schema_is_checked_without_importing_alembic(
    engine: Engine, tmp_path: Path
) -> None:
    migrate.upgrade(engine)
    script = textwrap.dedent(f"""
        import sys
        from openpacs.index import migrate
        from openpacs.index.engine import create_index_engine

        engine = create_index_engine({f"sqlite:///{tmp_path / 'index.db'}"!r})
        migrate.prepare(engine, auto_migrate=False)
        print(sorted(name for name in sys.modules if name.split(".")[0] == "alembic"))
    """)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
