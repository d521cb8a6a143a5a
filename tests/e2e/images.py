"""Images with known pixel values for the browser tests: what the canvas must show can be
computed from them."""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset

from tests.support.corpus import synthetic_ct_series

BAND_WIDTH = 8
BAND_STEP = 500
INTERCEPT = -1024


def ramp_pixels(rows: int, columns: int) -> np.ndarray:
    """Vertical bands BAND_WIDTH columns wide, stored value band * BAND_STEP (12-bit)."""
    band = np.arange(columns) // BAND_WIDTH
    return np.tile((band * BAND_STEP).astype(np.uint16), (rows, 1))


def band_hu(column: int) -> int:
    """The modality value (HU) of a column of the ramp."""
    return (column // BAND_WIDTH) * BAND_STEP + INTERCEPT


def ramp_ct_series(count: int, *, rows: int = 64, columns: int = 64, **names: str) -> list[Dataset]:
    """A CT series (rescale -1024/1, stored window 40/400) whose every slice is the ramp."""
    series = synthetic_ct_series(count, rows=rows, columns=columns, **names)
    pixels = ramp_pixels(rows, columns).tobytes()
    for ds in series:
        ds.PixelData = pixels
    return series


def linear_voi(value: float, center: float, width: float) -> float:
    """PS3.3 C.11.2.1.2.1: the grey level 0..255 a linear window gives a modality value."""
    c, w = center - 0.5, width - 1
    if value <= c - w / 2:
        return 0.0
    if value > c + w / 2:
        return 255.0
    return ((value - c) / w + 0.5) * 255
