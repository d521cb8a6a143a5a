"""Migration 0008_text_vector on PostgreSQL: headers stored before it are found by free text
after it (the database fills the stored vector column for the rows already there), a header
written or replaced after it is found by its own words only, and its downgrade puts back the
expression index of 0007_search_speed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from pydicom.uid import generate_uid
from sqlalchemy import Engine, inspect, text

from openpacs.dicom.header import Header, index_columns
from openpacs.dicom.levels import Level
from openpacs.index import migrate
from openpacs.index.browse import SqlBrowser
from openpacs.index.catalog import Catalog
from openpacs.index.engine import create_index_engine
from openpacs.index.schema import HEADER_JSONB, TEXT_VECTOR
from tests.support.postgres import temporary_database

BEFORE = "0007_search_speed"


@pytest.fixture
def engine() -> Iterator[Engine]:
    with temporary_database() as url:
        engine = create_index_engine(url)
        yield engine
        engine.dispose()


def _header(sop_uid: str, study_uid: str, institution: str) -> Header:
    series_uid = f"{study_uid}.1"
    header_json = {
        "00080016": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.7"]},
        "00080018": {"vr": "UI", "Value": [sop_uid]},
        "00080080": {"vr": "LO", "Value": [institution]},
        "00100020": {"vr": "LO", "Value": ["PID"]},
        "0020000D": {"vr": "UI", "Value": [study_uid]},
        "0020000E": {"vr": "UI", "Value": [series_uid]},
    }
    return Header(
        sop_class_uid="1.2.840.10008.5.1.4.1.1.7",
        sop_uid=sop_uid,
        study_uid=study_uid,
        series_uid=series_uid,
        transfer_syntax="1.2.840.10008.1.2.1",
        columns=index_columns(header_json),
        json=header_json,
    )


def _store(catalog: Catalog, institution: str, sop_uid: str = "", study_uid: str = "") -> str:
    study_uid = study_uid or generate_uid()
    header = _header(sop_uid or generate_uid(), study_uid, institution)
    catalog.add_instance(
        header,
        blob_key=f"k/{generate_uid()}",
        blob_size=1,
        blob_sha256="0" * 64,
        policy="overwrite",
    )
    return study_uid


def _found(engine: Engine, words: str) -> list[str]:
    page = SqlBrowser(engine).page(Level.STUDY, [], text=words)
    return sorted(item["StudyInstanceUID"] for item in page.items)


def _text_index(engine: Engine) -> str:
    with engine.connect() as connection:
        return str(
            connection.execute(
                text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_instances_text'")
            ).scalar_one()
        )


def test_headers_stored_before_the_migration_are_found_after_it(engine: Engine) -> None:
    migrate.upgrade(engine, BEFORE)
    catalog = Catalog(engine)
    try:
        old = _store(catalog, "Old Hospital")
        _store(catalog, "Other Clinic")
        migrate.upgrade(engine)
        assert _found(engine, "old hosp") == [old]
        assert TEXT_VECTOR in _text_index(engine)
        # Written after it: the database computes the vector of a new header, and of a
        # header replaced in place (the overwrite policy keeps the row).
        sop_uid = generate_uid()
        new = _store(catalog, "Old Hospital", sop_uid)
        assert _found(engine, "old hosp") == sorted([old, new])
        _store(catalog, "Riverside Hospital", sop_uid, new)
        assert _found(engine, "old hosp") == [old]
        assert _found(engine, "riverside") == [new]
    finally:
        catalog.close()


def test_downgrade_restores_the_expression_index(engine: Engine) -> None:
    migrate.upgrade(engine)
    with engine.connect() as connection:
        command.downgrade(migrate._config(connection), BEFORE)
        connection.commit()
    assert migrate.current(engine) == BEFORE
    with engine.connect() as connection:
        columns = {c["name"] for c in inspect(connection).get_columns("instances")}
    assert TEXT_VECTOR not in columns
    definition = _text_index(engine)
    assert "jsonb_to_tsvector" in definition, definition
    assert HEADER_JSONB in definition, definition
    migrate.upgrade(engine)
    assert migrate.current(engine) == migrate.head()
