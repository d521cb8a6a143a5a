"""Empty values in the DICOM JSON model (PS3.18 F.2.5) for every VR, and person names (F.2.2).

The elements are written to bytes and read back first, as ingest sees them.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset

from openpacs.dicom.header import dataset_json
from openpacs.dicom.json_model import element_json, normalized, value_array

# One attribute of each string and number VR; the value is written as raw text.
_TEXT_VRS = {
    "AE": 0x00080054,
    "AS": 0x00101010,
    "CS": 0x00080060,
    "DA": 0x00080020,
    "DS": 0x00281052,
    "DT": 0x0008002A,
    "IS": 0x00200013,
    "LO": 0x00080080,
    "LT": 0x00204000,
    "PN": 0x00100010,
    "SH": 0x00080050,
    "ST": 0x00080081,
    "TM": 0x00080030,
    "UC": 0x00080119,
    "UI": 0x00080016,
    "UR": 0x00080120,
    "UT": 0x00287FE0,
}
# Multi-valued attributes with an empty value in the middle.
_MULTI = {
    "CS": (0x00080008, "ORIGINAL\\\\AXIAL", ["ORIGINAL", None, "AXIAL"]),
    "LO": (0x00101000, "A\\\\B", ["A", None, "B"]),
    "DS": (0x00280030, "0.5\\", [0.5, None]),
    "IS": (0x00181088, "\\3", [None, 3]),
    "PN": (0x00081060, "Doe^J\\\\Roe^R", [{"Alphabetic": "Doe^J"}, None, {"Alphabetic": "Roe^R"}]),
    "DA": (0x00080023, "20200101\\", ["20200101", None]),
}


def _read_back(elements: list[DataElement]) -> Dataset:
    written = Dataset()
    for element in elements:
        written.add(element)
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_dataset(buffer, written)
    return read_dataset(io.BytesIO(buffer.getvalue()), False, True)


def _json(element: DataElement) -> dict[str, Any]:
    return element_json(element, bulk_handler=None, bulk_threshold=1024)


@pytest.mark.parametrize("vr", sorted(_TEXT_VRS))
def test_an_empty_value_has_no_value_key(vr: str) -> None:
    tag = _TEXT_VRS[vr]
    read = _read_back([DataElement(tag, vr, "")])
    assert _json(read[tag]) == {"vr": vr}


@pytest.mark.parametrize("vr", sorted(_MULTI))
def test_an_empty_value_among_several_is_null(vr: str) -> None:
    tag, raw, expected = _MULTI[vr]
    read = _read_back([DataElement(tag, vr, raw.encode())])
    assert _json(read[tag]) == {"vr": vr, "Value": expected}


@pytest.mark.parametrize("vr", ["US", "SS", "UL", "SL", "FL", "FD", "AT", "OB", "OW", "UN", "SQ"])
def test_empty_binary_and_sequence_values(vr: str) -> None:
    tag = {"US": 0x00280010, "SS": 0x00289503, "UL": 0x00081161, "SL": 0x00186020,
           "FL": 0x00186028, "FD": 0x00189327, "AT": 0x00209165, "OB": 0x00020102,
           "OW": 0x00283006, "UN": 0x00091010, "SQ": 0x00081032}[vr]  # fmt: skip
    read = _read_back([DataElement(tag, vr, [] if vr == "SQ" else None)])
    assert _json(read[tag]) == ({"vr": "SQ", "Value": []} if vr == "SQ" else {"vr": vr})


def test_person_names_keep_only_their_component_groups() -> None:
    read = _read_back(
        [
            DataElement(0x00100010, "PN", "=Yamada^Tarou"),
            DataElement(0x00081070, "PN", "Doe^J=="),
            DataElement(0x00080090, "PN", "=="),
        ]
    )
    assert _json(read[0x00100010]) == {"vr": "PN", "Value": [{"Ideographic": "Yamada^Tarou"}]}
    assert _json(read[0x00081070]) == {"vr": "PN", "Value": [{"Alphabetic": "Doe^J"}]}
    assert _json(read[0x00080090]) == {"vr": "PN"}  # no group has a value


def test_items_of_a_sequence_get_the_same_care() -> None:
    item = Dataset()
    item.add(DataElement(0x00081060, "PN", b"Doe^J\\"))
    item.add(DataElement(0x00080100, "SH", b""))
    read = _read_back([DataElement(0x00081032, "SQ", [item, Dataset()])])
    assert _json(read[0x00081032]) == {
        "vr": "SQ",
        "Value": [
            {
                "00080100": {"vr": "SH"},
                "00081060": {"vr": "PN", "Value": [{"Alphabetic": "Doe^J"}, None]},
            },
            {},
        ],
    }


def test_the_stored_header_keeps_elements_pydicom_cannot_convert() -> None:
    """pydicom raises on an empty value among several PN, DS or IS values; the header used to
    leave such an element out, so QIDO-RS and metadata lost it."""
    read = _read_back(
        [
            DataElement(0x00081060, "PN", b"Doe^J\\"),
            DataElement(0x00280030, "DS", b"0.5\\"),
            DataElement(0x00100010, "PN", b""),
        ]
    )
    header = dataset_json(read)
    assert header["00081060"] == {"vr": "PN", "Value": [{"Alphabetic": "Doe^J"}, None]}
    assert header["00280030"] == {"vr": "DS", "Value": [0.5, None]}
    assert header["00100010"] == {"vr": "PN"}


def test_normalized_and_value_array() -> None:
    assert normalized({"vr": "LO", "Value": [""]}) == {"vr": "LO"}
    assert normalized({"vr": "LO", "Value": ["A", ""]}) == {"vr": "LO", "Value": ["A", None]}
    assert normalized({"vr": "PN", "Value": [{}]}) == {"vr": "PN"}
    assert normalized({"vr": "PN", "Value": [{"Alphabetic": ""}]}) == {"vr": "PN"}
    assert normalized({"vr": "OB", "InlineBinary": "AA=="}) == {"vr": "OB", "InlineBinary": "AA=="}
    assert value_array("PN", [""]) is None
    assert value_array("PN", ["Doe^J=ド"]) == [{"Alphabetic": "Doe^J", "Ideographic": "ド"}]
    assert value_array("IS", ["12"]) == [12]
    assert value_array("CS", []) is None
