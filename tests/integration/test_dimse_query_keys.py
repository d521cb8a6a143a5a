"""C-FIND answers over real sockets: return keys from the stored header, computed keys
(PS3.4 C.6.1.1.4, C.6.2.1.2), every level of both information models, character sets, and the
refusal of invalid identifiers.

The node holds the known archive of `tests.support.query_archive`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag
from pydicom.uid import ImplicitVRLittleEndian
from pynetdicom.association import Association

from tests.support import scu
from tests.support.corpus import (
    CT_IMAGE_STORAGE,
    ENHANCED_MR_IMAGE_STORAGE,
    SECONDARY_CAPTURE_IMAGE_STORAGE,
)
from tests.support.node import Node
from tests.support.query_archive import (
    PRIVATE_CREATOR,
    PRIVATE_VALUE,
    REFERENCED_STUDY,
    REFERENCED_STUDY_CLASS,
    SUCCESS,
    KnownArchive,
    find,
    find_studies,
    known_archive_node,
    study_names,
    values,
)

FIND = scu.MODELS["study"][0]
IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS = 0xA900


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


# -- return keys answered from the stored header ------------------------------------------


def test_return_keys_are_answered_from_the_stored_header(
    finder: Association, uids: KnownArchive
) -> None:
    identifier = scu.identifier(
        "STUDY", StudyInstanceUID=uids.studies["A1"], ReferencedStudySequence=[]
    )
    identifier.add_new(PRIVATE_CREATOR, "LO", None)
    identifier.add_new(PRIVATE_VALUE, "LO", None)
    matches, final = scu.find_on(finder, identifier)
    assert final.Status == SUCCESS
    (match,) = matches
    (item,) = match.ReferencedStudySequence
    assert item.ReferencedSOPInstanceUID == REFERENCED_STUDY
    assert item.ReferencedSOPClassUID == REFERENCED_STUDY_CLASS
    private = match[PRIVATE_VALUE].value
    text = private.decode("ascii") if isinstance(private, bytes) else str(private)
    assert text.rstrip(" \x00") == "secret-value"


# -- computed keys (PS3.4 C.6.1.1.4, C.6.2.1.2) ------------------------------------------------


@pytest.mark.parametrize(
    ("study", "series", "instances", "modalities", "sop_classes"),
    [
        ("A1", 2, 4, ["CT", "OT"], [CT_IMAGE_STORAGE, SECONDARY_CAPTURE_IMAGE_STORAGE]),
        ("A2", 1, 2, ["MR"], [ENHANCED_MR_IMAGE_STORAGE]),
        ("B1", 1, 2, ["CT"], [CT_IMAGE_STORAGE]),
        ("C1", 1, 1, ["US"], [CT_IMAGE_STORAGE]),
    ],
)
def test_computed_study_keys(
    finder: Association,
    uids: KnownArchive,
    study: str,
    series: int,
    instances: int,
    modalities: list[str],
    sop_classes: list[str],
) -> None:
    (match,) = find(
        finder,
        "STUDY",
        StudyInstanceUID=uids.studies[study],
        NumberOfStudyRelatedSeries="",
        NumberOfStudyRelatedInstances="",
        ModalitiesInStudy="",
        SOPClassesInStudy="",
    )
    assert int(match.NumberOfStudyRelatedSeries) == series
    assert int(match.NumberOfStudyRelatedInstances) == instances
    assert sorted(values(match.ModalitiesInStudy)) == modalities
    assert sorted(values(match.SOPClassesInStudy)) == sorted(sop_classes)


def test_computed_series_key(finder: Association, uids: KnownArchive) -> None:
    matches = find(
        finder,
        "SERIES",
        StudyInstanceUID=uids.studies["A1"],
        SeriesInstanceUID="",
        NumberOfSeriesRelatedInstances="",
    )
    counts = {str(m.SeriesInstanceUID): int(m.NumberOfSeriesRelatedInstances) for m in matches}
    assert counts == {uids.series["A1-CT"]: 3, uids.series["A1-OT"]: 1}


@pytest.mark.parametrize(
    ("patient", "studies", "series", "instances"),
    [("QP-A", 2, 3, 6), ("QP-B", 1, 1, 2), ("QP-C", 1, 1, 1)],
)
def test_computed_patient_keys(
    finder: Association, patient: str, studies: int, series: int, instances: int
) -> None:
    (match,) = find(
        finder,
        "PATIENT",
        model="patient",
        PatientID=patient,
        NumberOfPatientRelatedStudies="",
        NumberOfPatientRelatedSeries="",
        NumberOfPatientRelatedInstances="",
    )
    assert int(match.NumberOfPatientRelatedStudies) == studies
    assert int(match.NumberOfPatientRelatedSeries) == series
    assert int(match.NumberOfPatientRelatedInstances) == instances


# -- levels and models ----------------------------------------------------------------------------


def test_patient_root_at_every_level(finder: Association, uids: KnownArchive) -> None:
    patients = find(finder, "PATIENT", model="patient", PatientID="QP-?", PatientName="")
    assert {str(m.PatientID) for m in patients} == {"QP-A", "QP-B", "QP-C"}
    studies = find(finder, "STUDY", model="patient", PatientID="QP-A", StudyInstanceUID="")
    assert study_names(uids, studies) == {"A1", "A2"}
    series = find(
        finder,
        "SERIES",
        model="patient",
        PatientID="QP-A",
        StudyInstanceUID=uids.studies["A1"],
        SeriesInstanceUID="",
        Modality="",
    )
    assert {str(m.Modality) for m in series} == {"CT", "OT"}
    images = find(
        finder,
        "IMAGE",
        model="patient",
        PatientID="QP-A",
        StudyInstanceUID=uids.studies["A1"],
        SeriesInstanceUID=uids.series["A1-CT"],
        SOPInstanceUID="",
    )
    assert {str(m.SOPInstanceUID) for m in images} == set(uids.instances["A1-CT"])


def test_series_and_image_levels_of_study_root(finder: Association, uids: KnownArchive) -> None:
    series = find(
        finder, "SERIES", StudyInstanceUID=uids.studies["A1"], SeriesInstanceUID="", Modality="CT"
    )
    assert [str(m.SeriesInstanceUID) for m in series] == [uids.series["A1-CT"]]
    images = find(
        finder,
        "IMAGE",
        StudyInstanceUID=uids.studies["A1"],
        SeriesInstanceUID=uids.series["A1-CT"],
        SOPInstanceUID="",
        InstanceNumber="2",
    )
    assert [str(m.SOPInstanceUID) for m in images] == [uids.instances["A1-CT"][1]]


# -- character sets (PS3.5 6.1; PS3.4 C.4.1.1.3.2) ----------------------------------------------


def test_non_ascii_names_are_returned_in_utf8(finder: Association) -> None:
    (match,) = find(finder, "PATIENT", model="patient", PatientID="QP-C", PatientName="")
    assert match.SpecificCharacterSet == "ISO_IR 192"
    assert str(match.PatientName) == "Müller^Jürgen"


@pytest.mark.parametrize("charset", ["ISO_IR 192", "ISO_IR 100"])
def test_a_non_ascii_query_value_is_decoded_from_its_character_set(
    finder: Association, uids: KnownArchive, charset: str
) -> None:
    keys = {"SpecificCharacterSet": charset, "PatientName": "Müller^Jürgen"}
    assert find_studies(finder, uids, **keys) == {"C1"}


# -- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "keys"),
    [
        ("FOO", {}),
        ("", {}),
        ("STUDY", {"StudyDate": "yesterday"}),
        ("STUDY", {"StudyDate": "2024-13"}),
        ("STUDY", {"StudyTime": "25:00-xx"}),
        ("SERIES", {"SeriesNumber": "one"}),
    ],
    ids=["bad-level", "no-level", "not-a-date", "malformed-date-range", "bad-time", "bad-int"],
)
def test_an_invalid_identifier_fails_and_the_node_keeps_serving(
    node: Node, finder: Association, uids: KnownArchive, level: str, keys: dict[str, str]
) -> None:
    identifier = scu.identifier(level, StudyInstanceUID="")
    for keyword, text in keys.items():
        # Raw bytes: pydicom would refuse to build an IS of "one", and the wire has no VR
        # in Implicit VR Little Endian, the one syntax this association proposes.
        tag = Tag(tag_for_keyword(keyword))
        value = text.encode("ascii") + b" " * (len(text) % 2)
        identifier[tag] = RawDataElement(tag, None, len(value), value, 0, True, True)
    with scu.association(node.port, [(FIND, [ImplicitVRLittleEndian])]) as assoc:
        matches, final = scu.find_on(assoc, identifier)
    assert matches == []
    assert final.Status == IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS
    assert scu.echo(node.port) == SUCCESS
    assert find_studies(finder, uids, PatientID="QP-B") == {"B1"}


def test_study_root_refuses_the_patient_level(finder: Association) -> None:
    matches, final = scu.find_on(finder, scu.identifier("PATIENT", PatientID="QP-A"))
    assert matches == []
    assert final.Status == IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS
    patients = find(finder, "PATIENT", model="patient", PatientID="QP-A")
    assert [str(m.PatientID) for m in patients] == ["QP-A"]
