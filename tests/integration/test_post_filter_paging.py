"""A query with a condition on an attribute that is not an index column (matched on stored
headers) still pages in SQL: candidates are read in bounded batches, and reading stops once
the page is full, so a small page near the front loads a small number of headers, whatever
the number of candidates; a text attribute is matched in SQL on the stored headers, so only
its matches' headers are read. The pages are those of the whole answer, on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from pydicom.uid import generate_uid
from sqlalchemy import event

from openpacs.dicom.header import Header, index_columns
from openpacs.dicom.levels import Level
from openpacs.dicom.query import Query, condition_for, tag_of
from openpacs.index import migrate
from openpacs.index.catalog import Catalog
from openpacs.index.engine import create_index_engine
from tests.support import postgres

INSTANCES = 1100
RARE_EVERY = 250  # 5 instances, spread over every batch of candidates
STUDY_UID = generate_uid()
SERIES_UID = generate_uid()


def _header(number: int) -> Header:
    sop_uid = generate_uid()
    institution = "RARE" if number % RARE_EVERY == 7 else "COMMON"
    header_json = {
        "00080016": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.7"]},
        "00080018": {"vr": "UI", "Value": [sop_uid]},
        "00080060": {"vr": "CS", "Value": ["OT"]},
        "00080080": {"vr": "LO", "Value": [institution]},
        "00081070": {"vr": "PN", "Value": [{"Alphabetic": f"{institution}^Op"}]},
        "00100020": {"vr": "LO", "Value": ["PID"]},
        "0020000D": {"vr": "UI", "Value": [STUDY_UID]},
        "0020000E": {"vr": "UI", "Value": [SERIES_UID]},
        "00200013": {"vr": "IS", "Value": [number]},
    }
    return Header(
        sop_class_uid="1.2.840.10008.5.1.4.1.1.7",
        sop_uid=sop_uid,
        study_uid=STUDY_UID,
        series_uid=SERIES_UID,
        transfer_syntax="1.2.840.10008.1.2.1",
        columns=index_columns(header_json),
        json=header_json,
    )


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def catalog(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Catalog]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('post') / 'index.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
        postgres.truncate(url)
    engine = create_index_engine(url)
    migrate.upgrade(engine)
    catalog = Catalog(engine)
    for number in range(INSTANCES):
        catalog.add_instance(
            _header(number),
            blob_key=f"k/{number}",
            blob_size=1,
            blob_sha256="0" * 64,
            policy="keep",
        )
    yield catalog
    catalog.close()


def _query(value: str, limit: int | None, offset: int = 0, keyword: str = "OperatorsName") -> Query:
    """A condition SQL cannot render (a person name: the header matcher decides), unless
    `keyword` names a text attribute."""
    condition = condition_for(tag_of(keyword), value)
    assert condition is not None
    return Query(
        Level.IMAGE, (condition,), return_tags=(int(tag_of(keyword)),), limit=limit, offset=offset
    )


def _loaded_headers(catalog: Catalog, query: Query) -> tuple[list[int], int]:
    """The Instance Numbers found, and how many stored headers were read to find them."""
    read = 0

    def count(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        nonlocal read
        selected = statement.split(" FROM ")[0]
        if selected.startswith("SELECT instances.pk, ") and "header" in selected:
            read += len(parameters)

    engine = catalog._engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        found = catalog.find(query)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return [int(m.values["InstanceNumber"]) for m in found], read


def test_a_front_page_reads_one_batch_of_headers(catalog: Catalog) -> None:
    numbers, read = _loaded_headers(catalog, _query("common^op", limit=5, offset=3))
    assert numbers == [3, 4, 5, 6, 8]  # 7 is RARE
    assert 0 < read <= 500, read  # one batch, not all 1100 candidates


def test_sparse_matches_page_across_batches(catalog: Catalog) -> None:
    everything, read_all = _loaded_headers(catalog, _query("Rare^Op", limit=None))
    assert everything == [7, 257, 507, 757, 1007]
    assert read_all == INSTANCES
    page, read = _loaded_headers(catalog, _query("RARE^OP", limit=2, offset=1))
    assert page == [257, 507]
    assert read < INSTANCES  # stops after the batch that fills the page
    assert _loaded_headers(catalog, _query("RARE^OP", limit=10, offset=4))[0] == [1007]
    assert _loaded_headers(catalog, _query("RARE^OP", limit=3, offset=5))[0] == []
    assert _loaded_headers(catalog, _query("NOWHERE", limit=3))[0] == []


def test_a_text_attribute_is_narrowed_in_sql(catalog: Catalog) -> None:
    """InstitutionName is no index column, but SQL matches it in the stored headers: only the
    matching instances' headers are read."""
    found, read = _loaded_headers(catalog, _query("RARE", limit=None, keyword="InstitutionName"))
    assert found == [7, 257, 507, 757, 1007]
    assert read == 5
    found, read = _loaded_headers(
        catalog, _query("R?RE\\X*", limit=None, keyword="InstitutionName")
    )
    assert found == [7, 257, 507, 757, 1007]
    assert read == 5
    page, _ = _loaded_headers(
        catalog, _query("COMMON", limit=3, offset=6, keyword="InstitutionName")
    )
    assert page == [6, 8, 9]


def test_every_page_is_a_slice_of_the_whole_answer(catalog: Catalog) -> None:
    whole, _ = _loaded_headers(catalog, _query("C*", limit=None))
    assert whole == _loaded_headers(catalog, _query("C*", limit=None, keyword="InstitutionName"))[0]
    assert len(whole) == INSTANCES - 5
    for offset, limit in [(0, 1), (495, 10), (499, 2), (1090, 20), (600, 500)]:
        page, _ = _loaded_headers(catalog, _query("C*", limit=limit, offset=offset))
        assert page == whole[offset : offset + limit], (offset, limit)


def test_matches_carry_the_header_elements_they_read_or_the_whole_header(
    catalog: Catalog,
) -> None:
    """The database reads the elements a query needs out of each stored header (its return
    keys, its conditions on headers); WADO-RS metadata and `includefield=all` ask for whole
    headers."""
    query = _query("RARE", limit=1, keyword="InstitutionName")
    operator = int(tag_of("OperatorsName"))
    (match,) = catalog.find(dataclasses.replace(query, return_tags=(operator,)))
    assert match.header == {
        "00080080": {"vr": "LO", "Value": ["RARE"]},
        "00081070": {"vr": "PN", "Value": [{"Alphabetic": "RARE^Op"}]},
    }
    (whole,) = catalog.find(dataclasses.replace(query, whole_headers=True))
    assert whole.header is not None
    assert whole.header["00081070"] == {"vr": "PN", "Value": [{"Alphabetic": "RARE^Op"}]}
    assert len(whole.header) == 9
