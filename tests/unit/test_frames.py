"""Frames of stored instances: native bytes read by offset, compressed bitstreams as stored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom.encaps import generate_frames
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
)

from openpacs.dicom.frames import (
    frame_media_type,
    native_frames,
    parse_frame_list,
    read_for_frames,
    stored_frames,
)
from openpacs.errors import InvalidQuery, NotFound
from tests.support.images import compressed, image_dataset, part10, ramp


def _frames() -> np.ndarray:
    return np.stack([ramp(rows=64, columns=64, high=100 * (k + 1)) for k in range(4)])


def _write(tmp_path: Path, ds: object, name: str = "x.dcm") -> Path:
    path = tmp_path / name
    path.write_bytes(part10(ds))  # type: ignore[arg-type]
    return path


def test_native_frames_from_an_uncompressed_file(tmp_path: Path) -> None:
    pixels = _frames()
    path = _write(tmp_path, image_dataset(pixels))
    ds = read_for_frames(path)
    got = list(native_frames(path, ds, [2, 0]))
    assert got == [pixels[2].astype("<u2").tobytes(), pixels[0].astype("<u2").tobytes()]


@pytest.mark.parametrize("syntax", [ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian])
def test_native_frames_of_other_uncompressed_syntaxes(tmp_path: Path, syntax: str) -> None:
    pixels = _frames()
    ds = image_dataset(pixels)
    ds.file_meta.TransferSyntaxUID = syntax
    path = _write(tmp_path, ds)
    assert list(native_frames(path, read_for_frames(path), [1])) == [
        pixels[1].astype("<u2").tobytes()
    ]


def test_big_endian_frames_come_out_little_endian(tmp_path: Path) -> None:
    pixels = _frames()
    ds = image_dataset(pixels)
    ds.PixelData = pixels.astype(">u2").tobytes()
    ds.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
    path = _write(tmp_path, ds)
    assert list(native_frames(path, read_for_frames(path), [3])) == [
        pixels[3].astype("<u2").tobytes()
    ]


@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless])
def test_compressed_frames(tmp_path: Path, syntax: str) -> None:
    pixels = _frames()
    ds = compressed(image_dataset(pixels), syntax)
    expected = list(generate_frames(ds.PixelData, number_of_frames=4))
    path = _write(tmp_path, ds)
    header = read_for_frames(path)
    assert list(stored_frames(path, header, [3, 1])) == [expected[3], expected[1]]
    assert list(native_frames(path, header, [3])) == [pixels[3].astype("<u2").tobytes()]
    assert frame_media_type(syntax) in ("image/dicom-rle", "image/jp2")


def test_small_compressed_frame_read_with_the_header(tmp_path: Path) -> None:
    ds = compressed(image_dataset(ramp(rows=4, columns=4)), RLELossless)
    path = _write(tmp_path, ds)
    [frame] = stored_frames(path, read_for_frames(path), [0])
    assert frame == next(generate_frames(ds.PixelData, number_of_frames=1))


def test_missing_frame_and_missing_pixels(tmp_path: Path) -> None:
    path = _write(tmp_path, image_dataset(_frames()))
    with pytest.raises(NotFound, match="frame 5"):
        list(native_frames(path, read_for_frames(path), [4]))
    ds = image_dataset(_frames())
    del ds.PixelData
    path = _write(tmp_path, ds, "nopixels.dcm")
    with pytest.raises(NotFound, match="no pixel data"):
        list(stored_frames(path, read_for_frames(path), [0]))


def test_frame_list() -> None:
    assert parse_frame_list("1,3, 2") == [0, 2, 1]
    for bad in ["", "0", "1,,2", "a", "-1", "1;2", "../1"]:
        with pytest.raises(InvalidQuery):
            parse_frame_list(bad)
