"""C-FIND response identifiers (`openpacs.dimse.find_response`): the bytes encoded straight
from a match are the bytes pydicom writes for the same response data set, in both
little-endian syntaxes, whatever the values; what is not text goes through pydicom."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from openpacs.archive.records import Match
from openpacs.dicom.levels import Level
from openpacs.dicom.query import query_from_identifier
from openpacs.dimse.datasets import decode, encode
from openpacs.dimse.find_response import FindResponse

TEXT = st.text(alphabet="AZaz09 ^-.é山ü", max_size=12)
UID = st.from_regex(r"[1-9][0-9]{0,5}(\.[0-9]{1,5}){1,5}", fullmatch=True)
PN = st.fixed_dictionaries(
    {},
    optional={"Alphabetic": TEXT, "Ideographic": TEXT, "Phonetic": TEXT},
)
# Stored header elements the index does not keep (text VRs, one to three values; LT single).
HEADER = {
    "00081090": ("LO", st.lists(TEXT, min_size=1, max_size=3)),
    "00081010": ("SH", st.lists(TEXT, min_size=1, max_size=2)),
    "00081060": ("PN", st.lists(PN, min_size=1, max_size=3)),
    "00104000": ("LT", st.lists(st.text(alphabet="Ab \\é", max_size=20), min_size=1, max_size=1)),
    "00321060": ("LO", st.lists(TEXT, min_size=1, max_size=1)),
}
NOT_TEXT = {
    "00180050": {"vr": "DS", "Value": [1.25]},
    "00280010": {"vr": "US", "Value": [512]},
    "00081032": {"vr": "SQ", "Value": [{"00080100": {"vr": "SH", "Value": ["CODE"]}}]},
}
RETURN_KEYS = [
    "PatientName", "PatientID", "StudyDate", "StudyTime", "AccessionNumber", "StudyDescription",
    "ModalitiesInStudy", "NumberOfStudyRelatedInstances", "ManufacturerModelName",
    "StationName", "NameOfPhysiciansReadingStudy", "PatientComments",
    "RequestedProcedureDescription", "SliceThickness", "Rows", "ProcedureCodeSequence",
    "InstitutionName",
]  # fmt: skip


@st.composite
def responses(draw: Any) -> FindResponse:
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = ""
    for keyword in draw(st.lists(st.sampled_from(RETURN_KEYS), unique=True, max_size=10)):
        setattr(identifier, keyword, None if keyword.endswith("Sequence") else "")
    if draw(st.booleans()):
        identifier.SpecificCharacterSet = "ISO_IR 192"
    values = {
        "StudyInstanceUID": draw(UID),
        "PatientID": draw(TEXT),
        "PatientName": draw(st.none() | TEXT),
        "StudyDate": draw(st.none() | st.sampled_from(["20150101", "19991231"])),
        "StudyTime": draw(st.none() | st.sampled_from(["101010.500000", "235959.000000"])),
        "AccessionNumber": draw(st.none() | TEXT),
        "StudyDescription": draw(st.none() | TEXT),
        "ModalitiesInStudy": draw(st.lists(st.sampled_from(["CT", "MR", "SR"]), unique=True)),
        "NumberOfStudyRelatedInstances": draw(st.integers(0, 5000)),
    }
    header = {}
    for tag, (vr, strategy) in HEADER.items():
        if draw(st.booleans()):
            header[tag] = {"vr": vr, "Value": draw(strategy)}
        elif draw(st.booleans()):
            header[tag] = {"vr": vr}
    for tag, element in NOT_TEXT.items():
        if draw(st.booleans()):
            header[tag] = element
    match = Match(Level.STUDY, values, header)
    return FindResponse(query_from_identifier(identifier), match, "OPENPACS")


@settings(max_examples=400, deadline=None)
@given(
    response=responses(), syntax=st.sampled_from([ExplicitVRLittleEndian, ImplicitVRLittleEndian])
)
def test_the_bytes_are_the_ones_pydicom_writes(response: FindResponse, syntax: str) -> None:
    assert response.encoded(syntax) == encode(response.dataset(), syntax)


def test_a_unicode_value_declares_utf8_and_reads_back() -> None:
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.PatientName = ""
    identifier.StudyInstanceUID = ""
    values = {"StudyInstanceUID": "1.2.3", "PatientName": "Müller^Jürgen"}
    response = FindResponse(
        query_from_identifier(identifier), Match(Level.STUDY, values), "OPENPACS"
    )
    back = decode(response.encoded(ExplicitVRLittleEndian), ExplicitVRLittleEndian)
    assert back.SpecificCharacterSet == "ISO_IR 192"
    assert str(back.PatientName) == "Müller^Jürgen"
    assert back.QueryRetrieveLevel == "STUDY"
    assert back.RetrieveAETitle == "OPENPACS"


def test_big_endian_goes_through_pydicom() -> None:
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = ""
    response = FindResponse(
        query_from_identifier(identifier), Match(Level.STUDY, {"StudyInstanceUID": "1.2"}), "A"
    )
    data = response.encoded(ExplicitVRBigEndian)
    assert data == encode(response.dataset(), ExplicitVRBigEndian)
    assert decode(data, ExplicitVRBigEndian).StudyInstanceUID == "1.2"


def test_a_text_only_response_is_encoded_without_pydicom(monkeypatch: Any) -> None:
    def refuse(*args: Any) -> bytes:
        raise AssertionError("pydicom encoded a text-only response")

    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = ""
    identifier.ModalitiesInStudy = ""
    identifier.NumberOfStudyRelatedInstances = ""
    identifier.StudyDate = ""
    identifier.NameOfPhysiciansReadingStudy = ""
    header = {"00081060": {"vr": "PN", "Value": [{"Alphabetic": "Doe^J", "Ideographic": "山"}]}}
    values = {
        "StudyInstanceUID": "1.2.3",
        "ModalitiesInStudy": ["CT", "MR"],
        "NumberOfStudyRelatedInstances": 12,
        "StudyDate": "20150101",
    }
    response = FindResponse(
        query_from_identifier(identifier), Match(Level.STUDY, values, header), "OPENPACS"
    )
    expected = encode(response.dataset(), ImplicitVRLittleEndian)
    monkeypatch.setattr("openpacs.dimse.find_response.encode", refuse)
    assert response.encoded(ImplicitVRLittleEndian) == expected
