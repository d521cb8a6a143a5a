"""dicom/transcode.py: converting Explicit VR Big Endian to little endian (PS3.5 7.3, A.3)."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from openpacs.dicom.transcode import choose_syntax, transcode
from tests.support.corpus import PYDICOM_TEST_FILES


def _read(data: bytes | str) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dcmread(io.BytesIO(data) if isinstance(data, bytes) else PYDICOM_TEST_FILES / data)


def _encoded(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.mark.parametrize("target", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_big_endian_converts_to_the_little_endian_encoding_of_the_same_instance(
    target: str,
) -> None:
    converted = _read(_encoded(transcode(_read("MR_small_bigendian.dcm"), target)))
    reference = _read("MR_small.dcm")  # the same instance, written little endian
    assert converted.file_meta.TransferSyntaxUID == target
    np.testing.assert_array_equal(converted.pixel_array, reference.pixel_array)
    assert converted.PixelData == reference.PixelData
    for element in reference:
        if element.tag not in (0x7FE00010, 0xFFFCFFFC):  # trailing padding is not kept
            assert converted[element.tag].value == element.value, element.keyword


def test_other_word_values_are_swapped_per_word() -> None:
    ds = _read("MR_small_bigendian.dcm")
    words = np.array([1, 256, 0x1234, 0xFFFE], dtype=">u2")
    ds.add_new(0x00283006, "OW", words.tobytes())  # LUT Data
    ds.add_new(0x00091010, "OF", np.array([1.5, -2.0], dtype=">f4").tobytes())
    ds.add_new(0x00091020, "OB", b"\x01\x02\x03\x04")  # bytes: never swapped
    data = _encoded(ds)  # as stored: big endian
    converted = _read(_encoded(transcode(_read(data), ExplicitVRLittleEndian)))
    assert converted[0x00283006].value == words.astype("<u2").tobytes()
    assert np.frombuffer(converted[0x00091010].value, "<f4").tolist() == [1.5, -2.0]
    assert converted[0x00091020].value == b"\x01\x02\x03\x04"


def test_big_endian_is_sent_as_stored_when_accepted_and_converted_otherwise() -> None:
    assert choose_syntax(ExplicitVRBigEndian, {ExplicitVRBigEndian}) == ExplicitVRBigEndian
    accepted = {ExplicitVRLittleEndian, ImplicitVRLittleEndian}
    assert choose_syntax(ExplicitVRBigEndian, accepted) == ExplicitVRLittleEndian


@pytest.mark.parametrize(
    "source", ["MR_small.dcm", "MR_small_implicit.dcm", "MR_small_RLE.dcm", "SC_rgb_small_odd.dcm"]
)
def test_little_endian_and_compressed_data_convert_to_big_endian(source: str) -> None:
    """For a receiver that accepts Explicit VR Big Endian only."""
    original = _read(source)
    converted = _read(_encoded(transcode(_read(source), ExplicitVRBigEndian)))
    assert converted.file_meta.TransferSyntaxUID == ExplicitVRBigEndian
    np.testing.assert_array_equal(converted.pixel_array, original.pixel_array)
    assert converted.Rows == original.Rows
    assert converted.PatientName == original.PatientName


def test_little_endian_converts_to_the_big_endian_encoding_of_the_same_instance() -> None:
    converted = transcode(_read("MR_small.dcm"), ExplicitVRBigEndian)
    reference = _read("MR_small_bigendian.dcm")
    assert converted.PixelData == reference.PixelData
    assert choose_syntax(ExplicitVRLittleEndian, {ExplicitVRBigEndian}) == ExplicitVRBigEndian
