"""C-FIND matching over real sockets (PS3.4 C.2.2.2): single values, universal matching,
wildcards, person names, date and time ranges, UID lists, Modalities in Study, and attributes
that are not index columns, matched on the stored header.

The node holds the known archive of `tests.support.query_archive`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pynetdicom.association import Association

from tests.support import scu
from tests.support.node import Node
from tests.support.query_archive import (
    KnownArchive,
    find,
    find_studies,
    known_archive_node,
    study_names,
)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, KnownArchive]]:
    with known_archive_node(tmp_path_factory.mktemp("query-node")) as running:
        yield running


@pytest.fixture(scope="module")
def node(archive: tuple[Node, KnownArchive]) -> Node:
    return archive[0]


@pytest.fixture(scope="module")
def uids(archive: tuple[Node, KnownArchive]) -> KnownArchive:
    return archive[1]


@pytest.fixture(scope="module")
def finder(node: Node) -> Iterator[Association]:
    """One association for the queries that should succeed, in both information models."""
    with scu.association(node.port, [scu.MODELS["study"][0], scu.MODELS["patient"][0]]) as assoc:
        yield assoc


# -- the basic kinds of matching (PS3.4 C.2.2.2.1-C.2.2.2.5) -------------------------------------


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"PatientID": "QP-A"}, {"A1", "A2"}),
        ({"AccessionNumber": "ACC-B1"}, {"B1"}),
        ({"PatientSex": "F"}, {"B1"}),
        ({"PatientBirthDate": "19700101"}, {"A1", "A2", "C1"}),
        ({"PatientID": "QP-Z"}, set()),
    ],
)
def test_single_value_matching(
    finder: Association, uids: KnownArchive, keys: dict[str, str], expected: set[str]
) -> None:
    assert find_studies(finder, uids, **keys) == expected


def test_universal_matching_returns_every_study_with_the_requestedvalues(
    finder: Association, uids: KnownArchive
) -> None:
    matches = find(finder, "STUDY", StudyInstanceUID="", PatientName="", StudyDate="")
    assert study_names(uids, matches) == {"A1", "A2", "B1", "C1"}
    dates = {str(m.PatientName): str(m.StudyDate) for m in matches if m.StudyDate < "2024"}
    assert dates == {"Doe^Jane": "20230605", "Müller^Jürgen": "20221231"}


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"StudyDescription": "CT*"}, {"A1", "B1"}),
        ({"StudyDescription": "*ABDOMEN"}, {"B1", "C1"}),
        ({"StudyDescription": "*"}, {"A1", "A2", "B1", "C1"}),
        ({"AccessionNumber": "ACC-?1"}, {"A1", "B1", "C1"}),
        ({"AccessionNumber": "ACC-A?"}, {"A1", "A2"}),
        ({"AccessionNumber": "AC?"}, set()),  # "?" is exactly one character
        ({"StudyDescription": "ct*"}, set()),  # case-sensitive outside PN (C.2.2.2.4)
    ],
)
def test_wildcard_matching(
    finder: Association, uids: KnownArchive, keys: dict[str, str], expected: set[str]
) -> None:
    assert find_studies(finder, uids, **keys) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("doe*", {"A1", "A2", "B1"}),
        ("doe^john", {"A1", "A2"}),
        ("DOE^J*", {"A1", "A2", "B1"}),
        ("d?e^jane", {"B1"}),
        ("müller*", {"C1"}),
    ],
)
def test_person_name_matching_ignores_case(
    finder: Association, uids: KnownArchive, name: str, expected: set[str]
) -> None:
    keys = {"SpecificCharacterSet": "ISO_IR 192", "PatientName": name}
    assert find_studies(finder, uids, **keys) == expected


@pytest.mark.parametrize(
    ("dates", "expected"),
    [
        ("20240110", {"A1"}),
        ("20240101-20241231", {"A1", "A2"}),
        ("-20231231", {"B1", "C1"}),
        ("20240301-", {"A2"}),
        ("20221231-20230605", {"B1", "C1"}),  # both ends inclusive
        ("20250101-", set()),
    ],
)
def test_date_range_matching(
    finder: Association, uids: KnownArchive, dates: str, expected: set[str]
) -> None:
    assert find_studies(finder, uids, StudyDate=dates) == expected


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        ("080000-090000", {"A1"}),
        ("2300-", {"B1"}),
        ("-1000", {"A1", "C1"}),  # "10" as an upper bound means up to 10:00:59.999999
        ("141500", {"A2"}),
        ("235959.5-235959.6", {"B1"}),
    ],
)
def test_time_range_matching(
    finder: Association, uids: KnownArchive, times: str, expected: set[str]
) -> None:
    assert find_studies(finder, uids, StudyTime=times) == expected


def test_list_of_uid_matching(finder: Association, uids: KnownArchive) -> None:
    wanted = [uids.studies["A1"], uids.studies["B1"]]
    assert study_names(uids, find(finder, "STUDY", StudyInstanceUID=wanted)) == {"A1", "B1"}
    first, _, third = uids.instances["A1-CT"]
    matches = find(
        finder,
        "IMAGE",
        StudyInstanceUID=uids.studies["A1"],
        SeriesInstanceUID=uids.series["A1-CT"],
        SOPInstanceUID=[first, third],
    )
    assert {str(m.SOPInstanceUID) for m in matches} == {first, third}


@pytest.mark.parametrize(
    ("modalities", "expected"),
    [
        ("MR", {"A2"}),
        ("OT", {"A1"}),
        (["CT", "US"], {"A1", "B1", "C1"}),
        ("XA", set()),
    ],
)
def test_modalities_in_study_matching(
    finder: Association, uids: KnownArchive, modalities: object, expected: set[str]
) -> None:
    assert find_studies(finder, uids, ModalitiesInStudy=modalities) == expected


# -- attributes that are not index columns: matched and returned from the stored header ---------


@pytest.mark.parametrize(
    ("institution", "expected"),
    [("General Hospital", {"A1", "A2"}), ("Other*", {"B1"}), ("Nowhere", set())],
)
def test_a_non_indexed_attribute_matches_the_stored_header(
    finder: Association, uids: KnownArchive, institution: str, expected: set[str]
) -> None:
    matches = find(finder, "STUDY", StudyInstanceUID="", InstitutionName=institution)
    assert study_names(uids, matches) == expected
    assert all(str(m.InstitutionName).startswith(institution.rstrip("*")) for m in matches)


def test_a_non_indexed_attribute_matches_at_series_level(
    finder: Association, uids: KnownArchive
) -> None:
    matches = find(finder, "SERIES", StudyInstanceUID="", SeriesInstanceUID="", StationName="CT0?")
    by_uid = {str(m.SeriesInstanceUID): str(m.StationName) for m in matches}
    assert by_uid == {uids.series["A1-CT"]: "CT01", uids.series["B1-CT"]: "CT02"}
