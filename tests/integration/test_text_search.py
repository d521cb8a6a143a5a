"""Free-text search follows the index on SQLite (FTS5 table kept by triggers) and PostgreSQL
(a full-text expression index): words of stored header values are found by their prefixes,
an instance replaced under the overwrite policy is found by its new words only, and deleted
instances are found no more."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom.uid import generate_uid

from openpacs.dicom.header import Header, index_columns
from openpacs.dicom.levels import Level
from openpacs.index import migrate
from openpacs.index.browse import SqlBrowser
from openpacs.index.catalog import Catalog
from openpacs.index.engine import create_index_engine
from tests.support import postgres


def _header(sop_uid: str, study_uid: str, institution: str, name: str) -> Header:
    series_uid = f"{study_uid}.1"
    header_json: dict[str, Any] = {
        "00080016": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.7"]},
        "00080018": {"vr": "UI", "Value": [sop_uid]},
        "00080080": {"vr": "LO", "Value": [institution]},
        "00081030": {"vr": "LO"},  # no value: nothing to index
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": name}]},
        "00100020": {"vr": "LO", "Value": [name.split("^")[0]]},
        "0020000D": {"vr": "UI", "Value": [study_uid]},
        "0020000E": {"vr": "UI", "Value": [series_uid]},
        "0040A730": {"vr": "SQ", "Value": [{"0040A160": {"vr": "UT", "Value": ["nested remark"]}}]},
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


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalog]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'index.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
        postgres.truncate(url)
    engine = create_index_engine(url)
    migrate.upgrade(engine)
    catalog = Catalog(engine)
    yield catalog
    catalog.close()


def _found(catalog: Catalog, text: str, level: Level = Level.STUDY) -> list[str]:
    page = SqlBrowser(catalog._engine).page(level, [], text=text, limit=100)
    return sorted(item["PatientID"] for item in page.items)


def test_words_are_found_replaced_and_forgotten(catalog: Catalog) -> None:
    study_a, study_b = generate_uid(), generate_uid()
    first, second = generate_uid(), generate_uid()
    add = {"blob_size": 1, "blob_sha256": "0" * 64}
    catalog.add_instance(
        _header(first, study_a, "General Hospital", "Okafor^Ada"),
        blob_key="k/1", policy="keep", **add,
    )  # fmt: skip
    catalog.add_instance(
        _header(second, study_b, "Lakeside Clinic", "Novak^Ivo"),
        blob_key="k/2", policy="keep", **add,
    )  # fmt: skip
    assert _found(catalog, "gener hosp") == ["Okafor"]
    assert _found(catalog, "ada") == ["Okafor"]
    assert _found(catalog, "nested rem") == ["Novak", "Okafor"]  # values inside sequences
    assert _found(catalog, "lakeside general") == []
    assert _found(catalog, "lo") == []  # VRs (LO, PN, UI, ...) are not words of the values
    assert _found(catalog, "ivo", Level.IMAGE) == ["Novak"]

    replaced = _header(first, study_a, "Harbour Hospital", "Okafor^Ada")
    catalog.add_instance(replaced, blob_key="k/3", policy="overwrite", **add)
    assert _found(catalog, "general") == []
    assert _found(catalog, "harbour") == ["Okafor"]

    catalog.delete(Level.STUDY, study_b)
    assert _found(catalog, "novak") == []
    assert _found(catalog, "nested") == ["Okafor"]


SIDES = ("South", "North")


def test_a_broad_search_is_counted_up_to_the_limit(catalog: Catalog) -> None:
    for n in range(5):
        header = _header(generate_uid(), generate_uid(), f"{SIDES[n % 2]} Hospital", f"P{n}^X")
        catalog.add_instance(
            header, blob_key=f"k/{n}", blob_size=1, blob_sha256="0" * 64, policy="keep"
        )
    browser = SqlBrowser(catalog._engine, text_count_limit=3)

    def page(text: str, **kw: Any) -> tuple[int, bool, list[str]]:
        found = browser.page(Level.STUDY, [], text=text, sort="PatientID", **kw)
        return found.total, found.more, [item["PatientID"] for item in found.items]

    assert page("north hosp") == (2, False, ["P1", "P3"])
    assert page("south hosp") == (3, False, ["P0", "P2", "P4"])  # the limit itself is exact
    # More than the limit: the total says "at least", the page is whole.
    assert page("hospital", limit=2) == (3, True, ["P0", "P1"])
    # A page beyond the counted matches: at least as many as it shows; the last page: exact.
    assert page("hospital", limit=1, offset=3) == (4, True, ["P3"])
    assert page("hospital", limit=2, offset=3) == (5, False, ["P3", "P4"])
    assert page("hospital", limit=10) == (5, False, ["P0", "P1", "P2", "P3", "P4"])
    first = browser.page(Level.STUDY, [], text="hospital", sort="PatientID", limit=2)
    assert first.next is not None
    second = browser.page(
        Level.STUDY, [], text="hospital", sort="PatientID", limit=2, cursor=first.next
    )
    assert (second.offset, second.total, second.more) == (2, 4, True)
    assert [item["PatientID"] for item in second.items] == ["P2", "P3"]
    assert second.last is not None
    last = browser.page(
        Level.STUDY, [], text="hospital", sort="PatientID", limit=2, cursor=second.last
    )
    assert [item["PatientID"] for item in last.items] == ["P3", "P4"]
    assert (last.total, last.more) == (5, False)  # read back from the end: its start counted
    # Listings without free text are counted exactly.
    assert browser.page(Level.STUDY, [], limit=2).total == 5
    assert browser.page(Level.STUDY, [], limit=2).more is False
