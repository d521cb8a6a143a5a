"""QIDO-RS parameters compile to the C-FIND query model; results are DICOM JSON."""

from __future__ import annotations

import pytest
from pydicom.datadict import tag_for_keyword

from openpacs.archive.records import Match
from openpacs.dicom.levels import Level
from openpacs.dicom.qido import (
    MAX_RESULTS,
    STUDY_DEFAULTS,
    Resource,
    qido_query,
    qido_result,
)
from openpacs.dicom.query import Equals, Pattern, Range
from openpacs.errors import InvalidQuery


def _tag(keyword: str) -> int:
    tag = tag_for_keyword(keyword)
    assert tag is not None
    return int(tag)


def test_keyword_and_tag_matching() -> None:
    qido = qido_query(
        Resource.STUDIES,
        [("PatientName", "doe*"), ("00080020", "20200101-20201231"), ("limit", "5")],
    )
    query = qido.query
    assert query.level is Level.STUDY
    name = query.condition("PatientName")
    assert name is not None
    assert name.alternatives == (Pattern("DOE*"),)
    date = query.condition("StudyDate")
    assert date is not None
    assert date.alternatives == (Range("20200101", "20201231"),)
    assert query.limit == 5
    assert qido_query(Resource.STUDIES, []).query.limit == MAX_RESULTS + 1
    assert set(STUDY_DEFAULTS) <= set(query.return_tags)


def test_path_uids_and_uid_lists() -> None:
    qido = qido_query(
        Resource.STUDY_SERIES_INSTANCES,
        [("SOPInstanceUID", "1.2.3,1.2.4\\1.2.5")],
        study_uid="1.2",
        series_uid="1.2.9",
    )
    query = qido.query
    assert query.level is Level.IMAGE
    sop = query.condition("SOPInstanceUID")
    assert sop is not None
    assert sop.alternatives == (Equals("1.2.3"), Equals("1.2.4"), Equals("1.2.5"))
    study = query.condition("StudyInstanceUID")
    assert study is not None
    assert study.alternatives == (Equals("1.2"),)
    with pytest.raises(InvalidQuery, match="given by the path"):
        qido_query(Resource.STUDY_SERIES, [("StudyInstanceUID", "1.3")], study_uid="1.2")


def test_includefield_empty_values_and_all() -> None:
    qido = qido_query(
        Resource.STUDIES,
        [("includefield", "00081030,InstitutionName"), ("includefield", "all"), ("Modality", "")],
    )
    tags = qido.query.return_tags
    assert _tag("InstitutionName") in tags
    assert _tag("Modality") not in tags  # a series key: no value at study level
    assert qido.query.conditions == ()
    assert qido.include_all
    series = qido_query(Resource.SERIES, [("Modality", ""), ("includefield", "SOPClassUID")])
    assert _tag("Modality") in series.query.return_tags  # an empty value is a return key
    assert _tag("SOPClassUID") not in series.query.return_tags


def test_ohif_study_search_gets_no_empty_modality() -> None:
    """OHIF's study search asks for Modality (00080060) at study level and reads its Value
    whenever the element is there; ModalitiesInStudy is the study's answer to it."""
    qido = qido_query(
        Resource.STUDIES,
        [("limit", "25"), ("fuzzymatching", "true"), ("includefield", "00081030,00080060")],
    )
    match = Match(
        level=Level.STUDY,
        values={
            "StudyInstanceUID": "1.2",
            "PatientID": "",
            "PatientName": "",
            "ReferringPhysicianName": "",
            "AccessionNumber": None,
            "StudyDescription": "",
            "StudyDate": "20240115",
            "ModalitiesInStudy": ["CT", "SR"],
            "NumberOfStudyRelatedSeries": 2,
        },
        header={"00080090": {"vr": "PN", "Value": [{}]}, "00101000": {"vr": "LO", "Value": [""]}},
    )
    result = qido_result(qido, match, base_url="http://h/dicom-web")
    assert "00080060" not in result
    assert result["00080061"] == {"vr": "CS", "Value": ["CT", "SR"]}
    assert result["00100010"] == {"vr": "PN"}  # an empty name: no Value, never [{}]
    assert result["00080090"] == {"vr": "PN"}
    assert result["00100020"] == {"vr": "LO"}
    assert result["00080050"] == {"vr": "SH"}
    assert result["00081030"] == {"vr": "LO"}
    assert result["00201206"] == {"vr": "IS", "Value": [2]}


def test_fuzzy_matching_matches_any_part_of_a_name() -> None:
    query = qido_query(Resource.STUDIES, [("PatientName", "john"), ("fuzzymatching", "true")])
    name = query.query.condition("PatientName")
    assert name is not None
    assert name.alternatives == (Pattern("*JOHN*"),)
    assert query.query.fuzzy


def test_limit_is_capped() -> None:
    query = qido_query(Resource.SERIES, [("limit", "999999")]).query
    assert query.limit == MAX_RESULTS + 1
    assert qido_query(Resource.SERIES, [("offset", "7")]).query.offset == 7


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ([("NotAKeyword", "1")], "not a DICOM attribute"),
        ([("StudyDate", "2020")], "not a date"),
        ([("StudyDate", "x'; DROP TABLE studies; --")], "not a date"),
        ([("SeriesNumber", "1 OR 1=1")], "not an integer"),
        ([("limit", "-1")], "limit"),
        ([("limit", "0")], "limit"),
        ([("offset", "ten")], "offset"),
        ([("fuzzymatching", "yes")], "fuzzymatching"),
        ([("includefield", "Nope")], "not a DICOM attribute"),
        ([("NumberOfStudyRelatedInstances", "3")], "computed"),
        ([("RequestAttributesSequence", "x")], "its item"),
        ([("StudyDate.RequestedProcedureID", "1")], "not a sequence"),
        (
            [("RequestAttributesSequence", "x"), ("RequestAttributesSequence.StudyID", "1")],
            "its item",
        ),
        ([("A.B.C.D.E", "1")], "keyword"),
        ([("RequestAttributesSequence.", "1")], "keyword"),
        ([("00020010", "1.2")], "can be queried"),
        ([("PatientName", "x" * 2000)], "longer"),
        ([("PatientID", "1")] * 201, "too many"),
    ],
)
def test_malformed_parameters(params: list[tuple[str, str]], reason: str) -> None:
    with pytest.raises(InvalidQuery, match=reason):
        qido_query(Resource.STUDIES, params)


def test_result_json_with_retrieve_url() -> None:
    qido = qido_query(Resource.SERIES, [("includefield", "InstitutionName")])
    match = Match(
        level=Level.SERIES,
        values={
            "StudyInstanceUID": "1.2",
            "SeriesInstanceUID": "1.2.3",
            "Modality": "CT",
            "SeriesNumber": 4,
            "PatientName": "Doe^Jöhn",
            "NumberOfSeriesRelatedInstances": 2,
        },
        header={"00080080": {"vr": "LO", "Value": ["Hospital"]}},
    )
    result = qido_result(qido, match, base_url="http://h/dicom-web/")
    assert result["00081190"] == {
        "vr": "UR",
        "Value": ["http://h/dicom-web/studies/1.2/series/1.2.3"],
    }
    assert result["00080060"]["Value"] == ["CT"]
    assert result["00200011"]["Value"] == [4]
    assert result["00201209"]["Value"] == [2]
    assert result["00080080"]["Value"] == ["Hospital"]
    assert result["00100010"]["Value"] == [{"Alphabetic": "Doe^Jöhn"}]
    assert "00080005" not in result  # JSON is UTF-8: no character set is declared
    assert result["00080056"]["Value"] == ["ONLINE"]


def test_json_results_equal_the_c_find_datasets() -> None:
    """QIDO-RS builds JSON directly; it must say what the C-FIND dataset says."""
    from openpacs.dicom.results import result_dataset, result_json

    match = Match(
        level=Level.STUDY,
        values={
            "StudyInstanceUID": "1.2",
            "PatientID": "P1",
            "PatientName": "Yamada^Tarou=山田^太郎=やまだ^たろう",
            "StudyDate": "20240115",
            "StudyTime": "093000.500000",
            "AccessionNumber": None,
            "NumberOfStudyRelatedInstances": 7,
            "ModalitiesInStudy": ["CT", "MR"],
        },
        header={
            "00080080": {"vr": "LO", "Value": ["Hospital"]},
            "00081032": {"vr": "SQ", "Value": [{"00080100": {"vr": "SH", "Value": ["X1"]}}]},
            "00181030": {"vr": "LO"},
            "00280030": {"vr": "DS", "Value": [0.5, 0.5]},
        },
    )
    keywords = [
        "PatientName",
        "StudyDate",
        "StudyTime",
        "AccessionNumber",
        "ModalitiesInStudy",
        "NumberOfStudyRelatedInstances",
        "InstitutionName",
        "ProcedureCodeSequence",
        "ProtocolName",
        "PixelSpacing",
        "StationName",
        "InstanceAvailability",
        "SeriesNumber",
    ]
    tags = [_tag(k) for k in keywords]
    expected = result_dataset(match, tags).to_json_dict()
    assert result_json(match, tags) == expected


def test_c_find_encodes_empty_values_among_others_as_empty() -> None:
    """A stored header keeps an empty value among several as null (PS3.18 F.2.5); a C-FIND
    response writes it as an empty value, never as the text "None"."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    from openpacs.dicom.results import result_dataset

    match = Match(
        level=Level.IMAGE,
        values={"StudyInstanceUID": "1.2", "SeriesInstanceUID": "1.2.3", "SOPInstanceUID": "1.4"},
        header={
            "00081060": {"vr": "PN", "Value": [{"Alphabetic": "Doe^J"}, None]},
            "00101000": {"vr": "LO", "Value": ["A", None, "B"]},
            "00181088": {"vr": "IS", "Value": [None, 72]},
            "00280030": {"vr": "DS", "Value": [0.5, None]},
        },
    )
    tags = [_tag(k) for k in ("NameOfPhysiciansReadingStudy", "OtherPatientIDs", "HeartRate")]
    dataset = result_dataset(match, [*tags, _tag("PixelSpacing")])
    encoded = DicomBytesIO()
    encoded.is_little_endian, encoded.is_implicit_VR = True, False
    write_dataset(encoded, dataset)
    data = encoded.getvalue()
    assert b"None" not in data
    for text in (b"PN\x06\x00Doe^J\\", b"LO\x04\x00A\\\\B", b"IS\x04\x00\\72", b"DS\x04\x000.5\\"):
        assert text in data
