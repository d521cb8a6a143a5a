"""The query model: value normal forms, compiling matching values, evaluating them."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from openpacs.dicom.levels import Level
from openpacs.dicom.matching import json_values, matches
from openpacs.dicom.query import Equals, Pattern, Range, condition_for, query_from_identifier
from openpacs.dicom.values import (
    normalize_date,
    normalize_datetime,
    normalize_int,
    normalize_name,
    normalize_time,
)
from openpacs.errors import InvalidQuery

PATIENT_NAME = 0x00100010
STUDY_DATE = 0x00080020
STUDY_TIME = 0x00080030
ACQUISITION_DATETIME = 0x0008002A
STUDY_UID = 0x0020000D
STUDY_DESCRIPTION = 0x00081030
SERIES_NUMBER = 0x00200011
SLICE_THICKNESS = 0x00180050


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Doe^John", "DOE^JOHN"),
        ("Doe^John^^^", "DOE^JOHN"),
        ("doe^john ", "DOE^JOHN"),
        ("Yamada^Tarou=山田^太郎=", "YAMADA^TAROU=山田^太郎"),
        ("", ""),
    ],
)
def test_names_compare_case_insensitively_without_trailing_components(
    value: str, expected: str
) -> None:
    assert normalize_name(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("20240115", "20240115"), ("2024.01.15", "20240115"), ("2024011", None), ("abc", None)],
)
def test_dates(value: str, expected: str | None) -> None:
    assert normalize_date(value) == expected


@pytest.mark.parametrize(
    ("value", "bound", "expected"),
    [
        ("10", "low", "100000.000000"),
        ("10", "high", "105959.999999"),
        ("1015", "high", "101559.999999"),
        ("101530", "high", "101530.999999"),
        ("101530.5", "low", "101530.500000"),
        ("10:15:30", "low", "101530.000000"),
        ("1", "low", None),
        ("25x", "low", None),
    ],
)
def test_times_fill_missing_precision_towards_the_bound(
    value: str, bound: str, expected: str | None
) -> None:
    assert normalize_time(value, bound) == expected  # type: ignore[arg-type]


def test_datetimes_ignore_the_offset_and_fill_towards_the_bound() -> None:
    assert normalize_datetime("2024", "high") == "20241231235959.999999"
    assert normalize_datetime("20240115103000.123+0100") == "20240115103000.123000"
    assert normalize_datetime("nonsense") is None


def test_integers_accept_integral_decimal_strings() -> None:
    assert normalize_int(" 7 ") == 7
    assert normalize_int("7.0") == 7
    assert normalize_int("7.5") is None
    assert normalize_int("x") is None


@pytest.mark.parametrize("value", ["", "*", "\\", "  ", "=", "^^=^"])
def test_empty_or_star_is_universal(value: str) -> None:
    assert condition_for(PATIENT_NAME, value) is None


def _alternatives(tag: int, value: str) -> tuple[object, ...]:
    condition = condition_for(tag, value)
    assert condition is not None
    return condition.alternatives


def test_compiled_alternatives() -> None:
    assert _alternatives(PATIENT_NAME, "doe*") == (Pattern("DOE*"),)
    assert _alternatives(PATIENT_NAME, "Doe^John^") == (Equals("DOE^JOHN"),)
    assert _alternatives(STUDY_UID, "1.2.3\\1.2.4") == (Equals("1.2.3"), Equals("1.2.4"))
    assert _alternatives(STUDY_DATE, "20240101-") == (Range("20240101", None),)
    assert _alternatives(STUDY_TIME, "1015") == (Range("101500.000000", "101559.999999"),)
    # UI has no wildcards (PS3.4 C.2.2.2.4): a star inside a UID makes it no UID at all
    with pytest.raises(InvalidQuery, match="not a valid UID"):
        _alternatives(STUDY_UID, "1.2.*")


@pytest.mark.parametrize(
    ("tag", "value"),
    [
        (STUDY_DATE, "2024-13"),
        (STUDY_DATE, "yesterday"),
        (STUDY_DATE, "-"),
        (STUDY_TIME, "99x"),
        (SERIES_NUMBER, "three"),
        (SLICE_THICKNESS, "thick"),
    ],
)
def test_values_of_the_wrong_form_are_invalid_queries(tag: int, value: str) -> None:
    with pytest.raises(InvalidQuery):
        condition_for(tag, value)


def test_datetime_ranges_split_at_the_right_hyphen() -> None:
    condition = condition_for(ACQUISITION_DATETIME, "20240101-0500-20240102")
    assert condition is not None
    (alternative,) = condition.alternatives
    assert isinstance(alternative, Range)
    assert alternative.low == "20240101000000.000000"
    assert alternative.high == "20240102235959.999999"


def _identifier(**keys: object) -> Dataset:
    dataset = Dataset()
    for keyword, value in keys.items():
        setattr(dataset, keyword, value)
    return dataset


def test_identifier_to_query() -> None:
    query = query_from_identifier(
        _identifier(
            QueryRetrieveLevel="STUDY",
            SpecificCharacterSet="ISO_IR 100",
            PatientName="Doe*",
            StudyDate="20240101-20240131",
            StudyInstanceUID="",
            NumberOfStudyRelatedInstances="",
        )
    )
    assert query.level is Level.STUDY
    assert {c.keyword for c in query.conditions} == {"PatientName", "StudyDate"}
    assert query.return_keywords == {
        "PatientName",
        "StudyDate",
        "StudyInstanceUID",
        "NumberOfStudyRelatedInstances",
    }
    assert query.charset_requested


@pytest.mark.parametrize("level", ["", "SERIESX", None])
def test_identifier_needs_a_valid_level(level: str | None) -> None:
    identifier = _identifier(PatientName="*")
    if level is not None:
        identifier.QueryRetrieveLevel = level
    with pytest.raises(InvalidQuery, match="QueryRetrieveLevel"):
        query_from_identifier(identifier)


HEADER = {
    "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^John", "Ideographic": "ド^ジョン"}]},
    "00080020": {"vr": "DA", "Value": ["20240115"]},
    "00080030": {"vr": "TM", "Value": ["101530.25"]},
    "00081030": {"vr": "LO", "Value": ["Chest CT"]},
    "00180050": {"vr": "DS", "Value": [1.25]},
    "00080008": {"vr": "CS", "Value": ["ORIGINAL", "PRIMARY", "AXIAL"]},
    "00081110": {"vr": "SQ", "Value": [{}]},
}


def _match(tag: int, value: str) -> bool:
    condition = condition_for(tag, value)
    assert condition is not None
    return matches(condition, json_values(HEADER, tag))


@pytest.mark.parametrize(
    ("tag", "value", "expected"),
    [
        (PATIENT_NAME, "doe^john", True),
        (PATIENT_NAME, "DOE*", True),
        (PATIENT_NAME, "D?E^JOHN", True),
        (PATIENT_NAME, "Doe", False),
        (PATIENT_NAME, "*ジョン", True),
        (STUDY_DATE, "20240115", True),
        (STUDY_DATE, "20240101-20240131", True),
        (STUDY_DATE, "-20240114", False),
        (STUDY_DATE, "20240115-", True),
        (STUDY_TIME, "1015", True),
        (STUDY_TIME, "1016-", False),
        (STUDY_DESCRIPTION, "Chest CT", True),
        (STUDY_DESCRIPTION, "chest ct", False),  # case-sensitive but for PN (PS3.4 C.2.2.2)
        (STUDY_DESCRIPTION, "Chest*", True),
        (STUDY_DESCRIPTION, "Head\\Chest CT", True),
        (SLICE_THICKNESS, "1.250", True),
        (SLICE_THICKNESS, "2", False),
        (0x00080008, "AXIAL", True),  # any value of a multi-valued attribute
        (0x00080008, "LOCALIZER", False),
        (0x00081090, "Anything", False),  # absent attribute never matches a value
    ],
)
def test_matching_on_stored_headers(tag: int, value: str, expected: bool) -> None:
    assert _match(tag, value) is expected


def _request_item(procedure: str, step: str | None = None) -> dict:
    item = {"00401001": {"vr": "SH", "Value": [procedure]}}
    if step is not None:
        item["00400009"] = {"vr": "SH", "Value": [step]}
    return item


def test_a_query_sequence_item_matches_within_one_stored_item() -> None:
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "SERIES"
    query_item = Dataset()
    query_item.RequestedProcedureID = "RP-1"
    query_item.ScheduledProcedureStepID = "SPS-*"
    query_item.RequestedProcedureDescription = ""  # a return key inside the item
    identifier.RequestAttributesSequence = [query_item]
    query = query_from_identifier(identifier)
    (condition,) = query.conditions
    assert condition.kind == "sequence"
    assert [c.keyword for c in condition.items] == [
        "ScheduledProcedureStepID",
        "RequestedProcedureID",
    ]
    assert "RequestAttributesSequence" in query.return_keywords
    stored = [
        _request_item("RP-1", "X"),
        _request_item("RP-2", "SPS-2"),
        _request_item("RP-1", "SPS-1"),
    ]
    assert matches(condition, stored)
    assert not matches(condition, stored[:2])  # RP-1 and SPS-* only in different items
    assert not matches(condition, [])
    assert not matches(condition, ["not an item"])


def test_query_sequences_without_keys_or_with_two_items() -> None:
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    empty_item = Dataset()
    empty_item.ReferencedSOPInstanceUID = ""
    identifier.ReferencedStudySequence = [empty_item]
    assert query_from_identifier(identifier).conditions == ()
    identifier.ReferencedStudySequence = []
    assert query_from_identifier(identifier).conditions == ()
    identifier.ReferencedStudySequence = [Dataset(), Dataset()]
    with pytest.raises(InvalidQuery, match="one item"):
        query_from_identifier(identifier)
