"""SQL matching on indexed columns agrees with the reference matcher on stored headers.

The index renders conditions to SQL (GLOB on SQLite, LIKE on PostgreSQL, ranges, IN); the
matcher in `openpacs.dicom.matching` evaluates the same conditions on DICOM JSON. Hypothesis
draws query values, including SQL metacharacters, and both must select the same instances.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.uid import generate_uid

from openpacs.dicom.header import Header, index_columns
from openpacs.dicom.levels import Level
from openpacs.dicom.matching import header_matches
from openpacs.dicom.query import Query, condition_for, tag_of
from openpacs.errors import InvalidQuery
from openpacs.index import migrate
from openpacs.index.browse import SqlBrowser
from openpacs.index.catalog import Catalog
from openpacs.index.engine import create_index_engine
from tests.support import postgres

NAMES = [
    "Doe^John",
    "DOE^JANE",
    "doe^j",
    "Müller^Jürgen",
    "O'Brien^Pat",
    "Smith^Anne=スミス^アン",
    "Wang^Li^^^",
    "[x]^y",
    "a_b%c^d",
    "",
]
DESCRIPTIONS = ["Chest CT", "chest ct", "Head", "CT 100% dose", "A_B", "x*y", "[a]", ""]
MODALITIES = ["CT", "MR", "US", "CR"]
# Not an index column: matched in SQL on the stored headers (JSON functions, jsonb).
INSTITUTIONS = ["General", "general", "A_B%", "x*y", "[a]", "Ünï", "", "Gen", "O'Hare"]
TIMES = ["101530", "1015", "10", "101530.5", "235959.999999", "000000", ""]
DATES = ["20240115", "20231231", "20240201", "19991231", "20240115", ""]


def _pn(value: str) -> list[dict[str, str]]:
    groups = value.split("=")
    keys = ["Alphabetic", "Ideographic", "Phonetic"]
    return [{k: g for k, g in zip(keys, groups, strict=False)}] if value else []


def _element(vr: str, value: Any) -> dict[str, Any]:
    if value in ("", None):
        return {"vr": vr}
    return {"vr": vr, "Value": _pn(value) if vr == "PN" else [value]}


def _headers(count: int) -> Iterator[dict[str, Any]]:
    """Consistent data: each level's attributes are fixed per patient, study and series,
    and every vocabulary value occurs at least once."""
    chooser = random.Random(7)
    patients = [(f"PID{n}", NAMES[n % len(NAMES)], DATES[n % len(DATES)]) for n in range(12)]
    studies = [
        (
            generate_uid(),
            patients[n % 12],
            DATES[n % len(DATES)],
            TIMES[n % len(TIMES)],
            DESCRIPTIONS[n % len(DESCRIPTIONS)],
        )
        for n in range(25)
    ]
    series = [
        (generate_uid(), studies[n % 25], MODALITIES[n % len(MODALITIES)], n % 7) for n in range(40)
    ]
    for number in range(count):
        series_uid, study, modality, series_number = (
            series[number] if number < 40 else (chooser.choice(series))
        )
        study_uid, (patient_id, name, birth), date, time, description = study
        yield {
            "00080016": _element("UI", "1.2.840.10008.5.1.4.1.1.7"),
            "00080018": _element("UI", generate_uid()),
            "00080020": _element("DA", date),
            "00080030": _element("TM", time),
            "00080060": _element("CS", modality),
            "00081030": _element("LO", description),
            "00080080": _element("LO", INSTITUTIONS[number % len(INSTITUTIONS)]),
            "00100010": _element("PN", name),
            "00100020": _element("LO", patient_id),
            "00100030": _element("DA", birth),
            "0020000D": _element("UI", study_uid),
            "0020000E": _element("UI", series_uid),
            "00200011": _element("IS", series_number),
            "00200013": _element("IS", number),
        }


class Stored(list[Header]):
    def __repr__(self) -> str:  # Hypothesis prints fixtures when a case fails
        return f"<{len(self)} stored headers>"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def catalog(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Catalog, Stored]]:
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("matching") / "index.db"
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_url")
        postgres.truncate(url)
    engine = create_index_engine(url)
    migrate.upgrade(engine)
    catalog = Catalog(engine)
    stored = Stored()
    for number, header_json in enumerate(_headers(150)):
        header = Header(
            sop_class_uid=header_json["00080016"]["Value"][0],
            sop_uid=header_json["00080018"]["Value"][0],
            study_uid=header_json["0020000D"]["Value"][0],
            series_uid=header_json["0020000E"]["Value"][0],
            transfer_syntax="1.2.840.10008.1.2.1",
            columns=index_columns(header_json),
            json=header_json,
        )
        catalog.add_instance(
            header, blob_key=f"k/{number}", blob_size=1, blob_sha256="0" * 64, policy="keep"
        )
        stored.append(header)
    yield catalog, stored
    catalog.close()


def _agree(catalog: Catalog, stored: list[Header], keyword: str, value: str) -> None:
    try:
        condition = condition_for(tag_of(keyword), value)
    except InvalidQuery:
        return
    conditions = () if condition is None else (condition,)
    found = {m.values["SOPInstanceUID"] for m in catalog.find(Query(Level.IMAGE, conditions))}
    expected = {h.sop_uid for h in stored if header_matches(h.json, list(conditions))}
    assert found == expected, (keyword, value)
    if keyword == "InstitutionName" and conditions:  # SQL alone (the REST search) agrees too
        page = SqlBrowser(catalog._engine).page(Level.IMAGE, conditions, limit=1000)
        assert {i["SOPInstanceUID"] for i in page.items} == expected, (keyword, value)


wildcard_text = st.text(alphabet="DOEJHNMÜLRSIdoejhn^*?%_[]='ア", max_size=9)
date_text = st.one_of(
    st.sampled_from(DATES),
    st.builds(lambda a, b: f"{a}-{b}", st.sampled_from(DATES), st.sampled_from(DATES)),
)
time_text = st.one_of(
    st.sampled_from(TIMES),
    st.builds(lambda a, b: f"{a}-{b}", st.sampled_from(TIMES), st.sampled_from(TIMES)),
)
QUERY_VALUES = st.one_of(
    st.tuples(st.just("PatientName"), st.one_of(st.sampled_from(NAMES), wildcard_text)),
    st.tuples(st.just("StudyDescription"), st.one_of(st.sampled_from(DESCRIPTIONS), wildcard_text)),
    st.tuples(st.just("StudyDate"), date_text),
    st.tuples(st.just("PatientBirthDate"), date_text),
    st.tuples(st.just("StudyTime"), time_text),
    st.tuples(st.just("Modality"), st.sampled_from(["CT", "MR\\US", "C?", "*R", "ct"])),
    st.tuples(
        st.just("InstitutionName"),
        st.one_of(st.sampled_from(INSTITUTIONS), wildcard_text, st.just("General\\Gen*")),
    ),
    st.tuples(st.just("SeriesNumber"), st.sampled_from(["0", "3", "6", "3\\4"])),
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(query=QUERY_VALUES)
def test_sql_and_header_matching_agree(
    catalog: tuple[Catalog, list[Any]], query: tuple[str, str]
) -> None:
    index, stored = catalog
    _agree(index, stored, *query)


@pytest.mark.parametrize(
    ("keyword", "value", "count_at_least"),
    [
        ("PatientName", "doe*", 1),
        ("PatientName", "smith^anne", 1),
        ("PatientName", "*スミス*", 1),
        ("StudyDescription", "CT 100% dose", 1),
        ("StudyDescription", "A_B", 1),
        ("PatientName", "a_b%c^d", 1),
        ("PatientName", "[x]^y", 1),
    ],
)
def test_literal_metacharacters_and_name_groups(
    catalog: tuple[Catalog, list[Any]], keyword: str, value: str, count_at_least: int
) -> None:
    index, stored = catalog
    condition = condition_for(tag_of(keyword), value)
    assert condition is not None
    found = index.find(Query(Level.IMAGE, (condition,)))
    assert len(found) >= count_at_least
    _agree(index, stored, keyword, value)
