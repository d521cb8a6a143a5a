"""Decode one frame and map it to 8-bit display values (PS3.3 C.11, the grayscale pipeline).

Stored values go through the modality LUT (rescale slope and intercept, or a Modality LUT
Sequence), then the VOI transform (a requested window, else the stored VOI LUT or window, else
the frame's own range), then MONOCHROME1 or an INVERSE presentation LUT is inverted. Colour
images (RGB, YBR converted by pydicom's decoders, palette colour) are scaled to 8 bits.

Integer frames are mapped through a lookup table built once over the frame's value range, so
the per-pixel work is one numpy indexing operation whatever the transforms are.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut, pixel_array

from openpacs.errors import InvalidQuery, OpenPacsError

_LUT_SPAN_LIMIT = 1 << 17  # build a table when the frame spans at most this many values
_VOI_FUNCTIONS = frozenset({"LINEAR", "LINEAR_EXACT", "SIGMOID"})


class PixelDecodeError(OpenPacsError):
    """The instance has no pixel data, or it cannot be decoded with the installed codecs."""

    http_status = 406


@dataclass(frozen=True)
class Window:
    """A VOI window (PS3.3 C.11.2.1.2): centre, width and the VOI LUT function."""

    center: float
    width: float
    function: str = "LINEAR"

    def __post_init__(self) -> None:
        if self.function not in _VOI_FUNCTIONS:
            raise InvalidQuery(
                f"window function {self.function!r} is not one of LINEAR, LINEAR_EXACT, SIGMOID"
            )
        if not (math.isfinite(self.center) and math.isfinite(self.width)):
            raise InvalidQuery("window centre and width must be finite numbers")
        minimum = 1.0 if self.function == "LINEAR" else 0.0
        if self.width < minimum or (self.function != "LINEAR" and self.width == 0):
            raise InvalidQuery(f"window width {self.width:g} is too small for {self.function}")


def frame_count(ds: Dataset) -> int:
    try:
        return max(int(ds.get("NumberOfFrames", 1) or 1), 1)
    except (TypeError, ValueError):
        return 1


def decode_frame(ds: Dataset, index: int) -> np.ndarray:
    """The frame's stored values (colour as RGB), decoding compressed data with pydicom."""
    if "PixelData" not in ds:
        raise PixelDecodeError("the instance has no pixel data")
    if not 0 <= index < frame_count(ds):
        raise InvalidQuery(f"frame {index + 1} does not exist (the instance has {frame_count(ds)})")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pixel_array(ds, index=index)
    except Exception as exc:  # decoders raise many types on unsupported or corrupt data
        raise PixelDecodeError(
            f"cannot decode the pixel data: {type(exc).__name__}: {exc}"
        ) from exc


def display_frame(ds: Dataset, index: int, window: Window | None = None) -> np.ndarray:
    """The frame as uint8 display values: (rows, columns) grey or (rows, columns, 3) RGB."""
    stored = decode_frame(ds, index)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    if photometric == "PALETTE COLOR":
        return _to_uint8(apply_color_lut(stored, ds))
    if stored.ndim == 3 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
        return _colour_to_uint8(stored, ds)
    invert = photometric == "MONOCHROME1"
    if str(ds.get("PresentationLUTShape", "")).strip() == "INVERSE":
        invert = not invert
    if stored.dtype.kind in "iu" and stored.size:
        low, high = int(stored.min()), int(stored.max())
        if high - low < _LUT_SPAN_LIMIT:
            domain = np.arange(low, high + 1, dtype=np.int64)
            table = _grey(domain, ds, index, window, invert)
            return table[stored.astype(np.int64, copy=False) - low]
    return _grey(stored, ds, index, window, invert)


def _grey(
    values: np.ndarray, ds: Dataset, index: int, window: Window | None, invert: bool
) -> np.ndarray:
    modality = _modality(values, ds, index)
    if window is not None:
        grey = apply_window(modality, window)
    elif "VOILUTSequence" in ds and _per_frame(ds, index, "FrameVOILUTSequence") is None:
        grey = _stored_voi_lut(modality, ds)
    else:
        grey = apply_window(modality, stored_window(ds, index) or _auto_window(modality))
    if invert:
        grey = 255 - grey
    return grey


def _modality(values: np.ndarray, ds: Dataset, index: int) -> np.ndarray:
    """PS3.3 C.11.1: rescale slope/intercept (per frame in enhanced objects) or a LUT."""
    transform = _per_frame(ds, index, "PixelValueTransformationSequence")
    source = transform if transform is not None else ds
    if "ModalityLUTSequence" in ds and transform is None:
        return np.asarray(apply_modality_lut(values, ds), dtype=np.float64)
    slope = _number(source.get("RescaleSlope"), 1.0)
    intercept = _number(source.get("RescaleIntercept"), 0.0)
    result = values.astype(np.float64)
    if slope != 1.0:
        result *= slope
    if intercept != 0.0:
        result += intercept
    return result


def stored_window(ds: Dataset, index: int = 0) -> Window | None:
    """The first window stored for the frame (per-frame VOI in enhanced objects), if valid."""
    voi = _per_frame(ds, index, "FrameVOILUTSequence")
    source = voi if voi is not None else ds
    center = _first(source.get("WindowCenter"))
    width = _first(source.get("WindowWidth"))
    if center is None or width is None:
        return None
    function = str(source.get("VOILUTFunction", "LINEAR") or "LINEAR").strip().upper()
    try:
        return Window(center, width, function if function in _VOI_FUNCTIONS else "LINEAR")
    except InvalidQuery:
        return None  # a stored window that is not usable falls back to the frame's range


def _auto_window(values: np.ndarray) -> Window:
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    width = max(high - low, 0.0)
    return Window(low + width / 2 + 0.5, width + 1, "LINEAR")


def apply_window(values: np.ndarray, window: Window) -> np.ndarray:
    """PS3.3 C.11.2.1.2 (and C.11.2.1.3 for the other functions) into 0..255, as uint8."""
    c, w = window.center, window.width
    x = values.astype(np.float64, copy=False)
    if window.function == "LINEAR":
        y = ((x - (c - 0.5)) / (w - 1) + 0.5) * 255 if w > 1 else np.where(x > c - 0.5, 255, 0)
    elif window.function == "LINEAR_EXACT":
        y = ((x - c) / w + 0.5) * 255
    else:
        y = 255 / (1 + np.exp(np.clip(-4 * (x - c) / w, -700, 700)))
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def _stored_voi_lut(values: np.ndarray, ds: Dataset) -> np.ndarray:
    item = ds.VOILUTSequence[0]
    descriptor = item.get("LUTDescriptor")
    bits = int(descriptor[2]) if descriptor and len(descriptor) == 3 else 16
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mapped = apply_voi_lut(values.astype(np.int64), ds, index=0, prefer_lut=True)
    top = float((1 << bits) - 1) or 1.0
    return np.clip(np.rint(mapped.astype(np.float64) * (255 / top)), 0, 255).astype(np.uint8)


def _colour_to_uint8(stored: np.ndarray, ds: Dataset) -> np.ndarray:
    bits = int(ds.get("BitsStored", 8) or 8)
    if stored.dtype == np.uint8 and bits <= 8:
        return stored
    if stored.dtype.kind == "f":
        return _to_uint8(stored)
    top = float((1 << bits) - 1)
    return np.clip(np.rint(stored * (255 / top)), 0, 255).astype(np.uint8)


def _to_uint8(values: np.ndarray) -> np.ndarray:
    if values.dtype == np.uint8:
        return values
    if values.dtype.kind in "iu":
        return (values.astype(np.uint32) >> 8).astype(np.uint8)
    low, high = float(values.min()), float(values.max())
    scale = 255 / (high - low) if high > low else 0.0
    return np.clip(np.rint((values - low) * scale), 0, 255).astype(np.uint8)


def _per_frame(ds: Dataset, index: int, keyword: str) -> Dataset | None:
    """An item of a functional group macro for the frame (PS3.3 C.7.6.16): per-frame first."""
    for groups_keyword, item_index in (
        ("PerFrameFunctionalGroupsSequence", index),
        ("SharedFunctionalGroupsSequence", 0),
    ):
        groups = ds.get(groups_keyword)
        if groups and len(groups) > item_index:
            nested = groups[item_index].get(keyword)
            if nested:
                item: Dataset = nested[0]
                return item
    return None


def _first(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str | bytes) and hasattr(value, "__getitem__"):
        value = value[0] if len(value) else None
    return _number(value, None)


@overload
def _number(value: Any, default: float) -> float: ...
@overload
def _number(value: Any, default: None) -> float | None: ...
def _number(value: Any, default: float | None) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if math.isfinite(number) else default
