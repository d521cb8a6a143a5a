"""Rendering checked by pixel values on synthetic images with known grey levels."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
)

from openpacs.dicom.pixels import PixelDecodeError, Window, apply_window, display_frame
from openpacs.dicom.render import (
    RenderCache,
    RenderOptions,
    parse_quality,
    parse_viewport,
    parse_window,
    render_frame,
)
from openpacs.errors import InvalidQuery
from tests.support.images import compressed, image_dataset, jpeg_baseline, part10, ramp


def _reread(ds: Dataset) -> Dataset:
    """As the archive reads it: a Part 10 file parsed back."""
    return dcmread(io.BytesIO(part10(ds)))


def _png(ds: Dataset, frame: int = 0, **options: object) -> np.ndarray:
    data = render_frame(ds, frame, RenderOptions(media_type="image/png", **options))  # type: ignore[arg-type]
    assert data.startswith(b"\x89PNG")
    return np.asarray(Image.open(io.BytesIO(data)))


def _expected_linear(hu: np.ndarray, center: float, width: float) -> np.ndarray:
    """PS3.3 C.11.2.1.2.1, written out case by case."""
    out = np.empty(hu.shape, dtype=np.float64)
    below = hu <= center - 0.5 - (width - 1) / 2
    above = hu > center - 0.5 + (width - 1) / 2
    inside = ~below & ~above
    out[below] = 0
    out[above] = 255
    out[inside] = ((hu[inside] - (center - 0.5)) / (width - 1) + 0.5) * 255
    return np.rint(out).astype(np.uint8)


def _ct_ramp() -> Dataset:
    ds = image_dataset(ramp(), bits_stored=12)
    ds.RescaleSlope = 1
    ds.RescaleIntercept = -1024
    ds.WindowCenter = 40
    ds.WindowWidth = 400
    return ds


def test_requested_window_maps_the_ramp_to_the_linear_function() -> None:
    ds = _reread(_ct_ramp())
    got = _png(ds, window=Window(-500, 1000))
    hu = ramp().astype(np.float64) - 1024
    np.testing.assert_array_equal(got, _expected_linear(hu, -500, 1000))
    # The window's edges: black below -1000 HU, white from 0 HU, mid-grey at the centre.
    assert got[0, 0] == 0
    assert got[0, -1] == 255
    centre_column = int(np.argmin(np.abs(hu[0] - (-500))))
    assert abs(int(got[0, centre_column]) - 128) <= 2


def test_stored_window_is_the_default() -> None:
    ds = _reread(_ct_ramp())
    hu = ramp().astype(np.float64) - 1024
    np.testing.assert_array_equal(_png(ds), _expected_linear(hu, 40, 400))


def test_no_window_uses_the_frames_range() -> None:
    ds = image_dataset(ramp(low=100, high=1123))
    got = _png(_reread(ds))
    assert got[0, 0] == 0
    assert got[0, -1] == 255
    assert np.all(np.diff(got[0].astype(int)) >= 0)


def test_signed_pixels_and_slope() -> None:
    values = (ramp(high=2000).astype(np.int32) - 1000).astype(np.int16)
    ds = image_dataset(values, signed=True)
    ds.RescaleSlope = 2
    ds.RescaleIntercept = 0
    got = _png(_reread(ds), window=Window(0, 2001))
    np.testing.assert_array_equal(got, _expected_linear(values.astype(np.float64) * 2, 0, 2001))


def test_monochrome1_is_inverted() -> None:
    ds = _ct_ramp()
    ds.PhotometricInterpretation = "MONOCHROME1"
    hu = ramp().astype(np.float64) - 1024
    np.testing.assert_array_equal(_png(_reread(ds)), 255 - _expected_linear(hu, 40, 400))


def test_other_voi_functions() -> None:
    x = np.array([-100.0, 0.0, 50.0, 100.0, 200.0])
    exact = apply_window(x, Window(50, 100, "LINEAR_EXACT"))
    assert exact.tolist() == [0, 0, 128, 255, 255]
    sigmoid = apply_window(x, Window(50, 100, "SIGMOID"))
    assert sigmoid[2] == 128
    assert sigmoid[0] < 10
    assert sigmoid[-1] > 245


def test_voi_lut_sequence() -> None:
    ds = image_dataset(ramp(high=255).astype(np.uint16), bits_stored=8)
    item = Dataset()
    item.LUTDescriptor = [256, 0, 8]
    item.LUTData = list(range(255, -1, -1))  # an inverting LUT
    item["LUTData"].VR = "US"
    ds.VOILUTSequence = Sequence([item])
    got = _png(_reread(ds))
    np.testing.assert_array_equal(got[0], 255 - ramp(high=255)[0].astype(np.uint8))


@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless, JPEGLSLossless])
def test_lossless_syntaxes_render_like_uncompressed(syntax: str) -> None:
    reference = _png(_reread(_ct_ramp()))
    ds = compressed(_ct_ramp(), syntax)
    assert str(_reread(ds).file_meta.TransferSyntaxUID) == syntax
    np.testing.assert_array_equal(_png(_reread(ds)), reference)


def test_jpeg_baseline_renders_within_tolerance() -> None:
    pixels = ramp(high=255).astype(np.uint8)
    got = _png(_reread(jpeg_baseline(pixels)))
    assert np.abs(got.astype(int) - pixels.astype(int)).max() <= 3


def test_rgb_and_ybr_jpeg() -> None:
    rgb = np.zeros((32, 48, 3), dtype=np.uint8)
    rgb[..., 0] = 200
    rgb[:, 24:, 1] = 150
    rgb[16:, :, 2] = 90
    ds = image_dataset(rgb, photometric="RGB", sop_class_uid="1.2.840.10008.5.1.4.1.1.7")
    np.testing.assert_array_equal(_png(_reread(ds)), rgb)
    got = _png(_reread(jpeg_baseline(rgb)))
    assert got.shape == rgb.shape
    # Away from the colour edges JPEG is near exact.
    assert np.abs(got[4:12, 4:20].astype(int) - rgb[4:12, 4:20].astype(int)).max() <= 4


def test_palette_colour() -> None:
    indices = (ramp(rows=4, columns=256, high=255)).astype(np.uint8)
    ds = image_dataset(indices, photometric="PALETTE COLOR", bits_stored=8)
    for colour, table in (
        ("Red", np.arange(256)),
        ("Green", 255 - np.arange(256)),
        ("Blue", np.full(256, 7)),
    ):
        setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [256, 0, 16])
        setattr(ds, f"{colour}PaletteColorLookupTableData", (table * 257).astype("<u2").tobytes())
        ds[f"{colour}PaletteColorLookupTableData"].VR = "OW"
    got = _png(_reread(ds))
    assert got.shape == (4, 256, 3)
    np.testing.assert_array_equal(got[0, :, 0], np.arange(256))
    np.testing.assert_array_equal(got[0, :, 1], 255 - np.arange(256))
    assert set(got[..., 2].ravel().tolist()) == {7}


def test_multiframe_selects_the_frame() -> None:
    frames = np.stack([np.full((8, 8), value, dtype=np.uint16) for value in (0, 500, 1000)])
    ds = image_dataset(frames)
    for index, value in enumerate((0, 500, 1000)):
        got = _png(_reread(ds), index, window=Window(500, 1001))
        assert set(got.ravel().tolist()) == {int(_expected_linear(np.array([value]), 500, 1001)[0])}
    with pytest.raises(InvalidQuery, match="frame 4"):
        _png(_reread(ds), 3)


def test_multiframe_rle() -> None:
    frames = np.stack([ramp(rows=8, columns=16, high=100 * (k + 1)) for k in range(3)])
    ds = image_dataset(frames)
    reference = [_png(_reread(ds), k) for k in range(3)]
    rle = _reread(compressed(ds, RLELossless))
    for k in range(3):
        np.testing.assert_array_equal(_png(rle, k), reference[k])


def test_viewport_keeps_the_aspect_ratio_and_jpeg_quality() -> None:
    ds = _reread(_ct_ramp())  # 256 x 64
    assert _png(ds, viewport=(128, 128)).shape == (32, 128)
    assert _png(ds, viewport=(1024, 64)).shape == (64, 256)
    small = render_frame(ds, 0, RenderOptions(quality=10))
    large = render_frame(ds, 0, RenderOptions(quality=100))
    assert small.startswith(b"\xff\xd8")
    assert large.startswith(b"\xff\xd8")
    assert len(small) < len(large)


def test_no_pixel_data() -> None:
    ds = image_dataset(ramp())
    del ds.PixelData
    with pytest.raises(PixelDecodeError, match="no pixel data"):
        display_frame(ds, 0)


@pytest.mark.parametrize(
    "text", ["40", "a,b", "40,0", "40,10,CUBIC", "nan,10", "1,2,3,4", "40,0.5,LINEAR"]
)
def test_bad_window(text: str) -> None:
    with pytest.raises(InvalidQuery):
        parse_window(text)


@pytest.mark.parametrize("text", ["10", "0,10", "-1,10", "a,b", "10,10,10", "99999,10"])
def test_bad_viewport(text: str) -> None:
    with pytest.raises(InvalidQuery):
        parse_viewport(text)


@pytest.mark.parametrize("text", ["0", "101", "x", "-5"])
def test_bad_quality(text: str) -> None:
    with pytest.raises(InvalidQuery):
        parse_quality(text)


def test_parameters() -> None:
    assert parse_window("40,400") == Window(40, 400)
    assert parse_window("40,400,sigmoid") == Window(40, 400, "SIGMOID")
    assert parse_viewport("512,256") == (512, 256)
    assert parse_quality(None) == 90


def test_cache_is_bounded_and_lru() -> None:
    cache = RenderCache(max_bytes=10)
    cache.put(("a",), b"1234")
    cache.put(("b",), b"1234")
    assert cache.get(("a",)) == b"1234"  # a is now the most recent
    cache.put(("c",), b"1234")
    assert cache.get(("b",)) is None
    assert cache.get(("a",)) == b"1234"
    cache.put(("huge",), b"x" * 11)
    assert cache.get(("huge",)) is None


_PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


@pytest.mark.parametrize(
    ("name", "reference"),
    [
        ("MR_small_RLE.dcm", "MR_small.dcm"),
        ("MR_small_jp2klossless.dcm", "MR_small.dcm"),
        ("MR_small_jpeg_ls_lossless.dcm", "MR_small.dcm"),
        ("MR_small_bigendian.dcm", "MR_small.dcm"),
        ("MR_small_implicit.dcm", "MR_small.dcm"),
        ("SC_rgb_jpeg_gdcm.dcm", "SC_rgb_rle.dcm"),  # JPEG lossless, process 14 SV1
    ],
)
def test_third_party_files_render_like_their_uncompressed_originals(
    name: str, reference: str
) -> None:
    expected = _png(dcmread(_PYDICOM_FILES / reference))
    np.testing.assert_array_equal(_png(dcmread(_PYDICOM_FILES / name)), expected)


def test_jpeg_extended_12_bit_renders() -> None:
    got = _png(dcmread(_PYDICOM_FILES / "JPGExtended.dcm"))
    assert got.dtype == np.uint8
    assert got.min() == 0
    assert got.max() > 200
