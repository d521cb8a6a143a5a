"""Migration 0007_search_speed on PostgreSQL: headers stored before it are found by
any-attribute and free-text search after it (the database fills the parsed header column for
the rows already there), and its downgrade puts back the indexes of 0004_search."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from pydicom.uid import generate_uid
from sqlalchemy import Engine, inspect, text

from openpacs.dicom.header import Header, index_columns
from openpacs.dicom.levels import Level
from openpacs.dicom.query import Query, condition_for, tag_of
from openpacs.index import migrate
from openpacs.index.browse import SqlBrowser
from openpacs.index.catalog import Catalog
from openpacs.index.engine import create_index_engine
from openpacs.index.schema import HEADER_JSONB, POSTGRESQL_ONLY_INDEXES, TEXT_VECTOR
from tests.support.postgres import temporary_database

BEFORE = "0006_lazy_headers"


@pytest.fixture
def engine() -> Iterator[Engine]:
    with temporary_database() as url:
        engine = create_index_engine(url)
        yield engine
        engine.dispose()


def _store(catalog: Catalog, institution: str) -> str:
    study_uid, series_uid, sop_uid = generate_uid(), generate_uid(), generate_uid()
    header_json = {
        "00080016": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.7"]},
        "00080018": {"vr": "UI", "Value": [sop_uid]},
        "00080080": {"vr": "LO", "Value": [institution]},
        "00100020": {"vr": "LO", "Value": ["PID"]},
        "0020000D": {"vr": "UI", "Value": [study_uid]},
        "0020000E": {"vr": "UI", "Value": [series_uid]},
    }
    header = Header(
        sop_class_uid="1.2.840.10008.5.1.4.1.1.7",
        sop_uid=sop_uid,
        study_uid=study_uid,
        series_uid=series_uid,
        transfer_syntax="1.2.840.10008.1.2.1",
        columns=index_columns(header_json),
        json=header_json,
    )
    catalog.add_instance(
        header, blob_key=f"k/{sop_uid}", blob_size=1, blob_sha256="0" * 64, policy="keep"
    )
    return study_uid


def _found(engine: Engine, catalog: Catalog) -> tuple[list[str], list[str], list[str]]:
    tag = tag_of("InstitutionName")
    returned = (int(tag),)
    equal = Query(Level.STUDY, (condition_for(tag, "Old Hospital"),), return_tags=returned)
    pattern = Query(Level.STUDY, (condition_for(tag, "Old*"),), return_tags=returned)
    by_text = SqlBrowser(engine).page(Level.STUDY, [], text="old hosp")
    return (
        [m.values["StudyInstanceUID"] for m in catalog.find(equal)],
        [m.values["StudyInstanceUID"] for m in catalog.find(pattern)],
        [item["StudyInstanceUID"] for item in by_text.items],
    )


def _index_definitions(engine: Engine) -> dict[str, str]:
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'instances'")
        )
        return {name: definition for name, definition in rows if name in POSTGRESQL_ONLY_INDEXES}


def test_headers_stored_before_the_migration_are_searched_after_it(engine: Engine) -> None:
    migrate.upgrade(engine, BEFORE)
    catalog = Catalog(engine)
    try:
        old = _store(catalog, "Old Hospital")
        _store(catalog, "Other Hospital")
        migrate.upgrade(engine)
        assert _found(engine, catalog) == ([old], [old], [old])
        definitions = _index_definitions(engine)
        assert set(definitions) == POSTGRESQL_ONLY_INDEXES
        # At the head, the full-text index covers 0008's vector column instead.
        assert HEADER_JSONB in definitions["ix_instances_header_jsonb"], definitions
        assert TEXT_VECTOR in definitions["ix_instances_text"], definitions
        # A header written after it is in the parsed column too.
        new = _store(catalog, "Old Hospital")
        assert [sorted(found) for found in _found(engine, catalog)] == [sorted([old, new])] * 3
    finally:
        catalog.close()


def test_downgrade_restores_the_expression_indexes(engine: Engine) -> None:
    migrate.upgrade(engine)
    with engine.connect() as connection:
        config = migrate._config(connection)
        command.downgrade(config, BEFORE)
        connection.commit()
    assert migrate.current(engine) == BEFORE
    with engine.connect() as connection:
        columns = {c["name"] for c in inspect(connection).get_columns("instances")}
    assert HEADER_JSONB not in columns
    definitions = _index_definitions(engine)
    assert set(definitions) == POSTGRESQL_ONLY_INDEXES
    assert all("(header)::jsonb" in d for d in definitions.values()), definitions
    migrate.upgrade(engine)
    assert migrate.current(engine) == migrate.head()
