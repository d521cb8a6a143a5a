"""WADO-RS metadata from stored headers: bulk data markers become retrievable URIs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from openpacs.dicom.header import parse_header
from openpacs.dicom.levels import Level
from openpacs.dicom.metadata import bulk_value, headers_query, instance_metadata, parse_bulk_path
from openpacs.errors import InvalidQuery, NotFound
from tests.support.images import image_dataset, part10, ramp

URL = "http://h/dicom-web/studies/1/series/2/instances/3"


def _instance(tmp_path: Path) -> tuple[Path, bytes]:
    ds = image_dataset(np.stack([ramp(rows=32, columns=32)] * 3))
    blob = bytes(range(256)) * 20
    item = Dataset()
    item.add_new(0x00091010, "OB", blob)
    item.add_new(0x00090010, "LO", "OPENPACS TEST")
    ds.add_new(0x00089215, "SQ", Sequence([item]))
    path = tmp_path / "x.dcm"
    path.write_bytes(part10(ds))
    return path, blob


def test_bulk_data_becomes_uris(tmp_path: Path) -> None:
    path, blob = _instance(tmp_path)
    metadata = instance_metadata(parse_header(path).header().json, instance_url=URL)
    assert metadata["7FE00010"] == {"vr": "OW", "BulkDataURI": f"{URL}/frames/1,2,3"}
    nested = metadata["00089215"]["Value"][0]["00091010"]
    assert nested == {"vr": "OB", "BulkDataURI": f"{URL}/bulk/00089215/0/00091010"}
    assert metadata["00100010"]["Value"] == [{"Alphabetic": "Render^Test"}]
    steps = parse_bulk_path("00089215/0/00091010")
    assert bulk_value(dcmread(path), steps) == blob


def test_bulk_paths_are_checked(tmp_path: Path) -> None:
    path, _ = _instance(tmp_path)
    ds = dcmread(path)
    for bad in ["", "../etc/passwd", "00089215/0", "7FE0001", "00089215/x/00091010", "a/b/c"]:
        with pytest.raises(InvalidQuery):
            parse_bulk_path(bad)
    with pytest.raises(NotFound):
        bulk_value(ds, parse_bulk_path("00089215/5/00091010"))
    with pytest.raises(NotFound):
        bulk_value(ds, parse_bulk_path("00101010"))
    with pytest.raises(NotFound, match="binary"):
        bulk_value(ds, parse_bulk_path("00100010"))


def test_headers_query() -> None:
    query = headers_query("1.2", "1.2.3")
    assert query.level is Level.IMAGE
    assert [c.keyword for c in query.conditions] == ["StudyInstanceUID", "SeriesInstanceUID"]
    assert query.whole_headers  # the index returns each instance's whole header


def test_headers_stored_before_empty_values_were_normalized_are_answered_cleanly() -> None:
    """Headers written by pydicom's own conversion kept "" among values and empty PN groups;
    metadata answers them in the PS3.18 F.2.5 form (an empty value is null)."""
    old = {
        "00080008": {"vr": "CS", "Value": ["ORIGINAL", "", "AXIAL"]},
        "00081070": {"vr": "PN", "Value": [{"Alphabetic": "", "Ideographic": "Yamada"}]},
        "00081032": {"vr": "SQ", "Value": [{"00100010": {"vr": "PN", "Value": [{}]}}]},
    }
    metadata = instance_metadata(old, instance_url=URL)
    assert metadata["00080008"] == {"vr": "CS", "Value": ["ORIGINAL", None, "AXIAL"]}
    assert metadata["00081070"] == {"vr": "PN", "Value": [{"Ideographic": "Yamada"}]}
    assert metadata["00081032"] == {"vr": "SQ", "Value": [{"00100010": {"vr": "PN"}}]}
