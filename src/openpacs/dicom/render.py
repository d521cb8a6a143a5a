"""Rendered images of frames (PS3.18 8.3.5, 9.5): 8-bit PNG or JPEG, scaled to a viewport.

`openpacs.dicom.pixels` gives display values; this module scales and compresses them. PNG uses
a low zlib level and JPEG Pillow's default encoder: both are meant for scrolling through a
series, where encoding time matters more than a few percent of size. A small LRU cache keeps
recent renderings, keyed by the caller's blob key, the frame and the options.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset

from openpacs.dicom.pixels import Window, display_frame
from openpacs.errors import InvalidQuery

MediaType = Literal["image/jpeg", "image/png"]
MEDIA_TYPES: tuple[MediaType, ...] = ("image/jpeg", "image/png")
THUMBNAIL_VIEWPORT = (128, 128)
_MAX_VIEWPORT = 4096
_PNG_LEVEL = 1


@dataclass(frozen=True)
class RenderOptions:
    media_type: MediaType = "image/jpeg"
    window: Window | None = None
    viewport: tuple[int, int] | None = None
    """Width and height to fit the image in, keeping its aspect ratio."""
    quality: int = 90


def render_frame(ds: Dataset, index: int, options: RenderOptions) -> bytes:
    """The frame `index` (0-based) of `ds` encoded as `options.media_type`."""
    pixels = display_frame(ds, index, options.window)
    image = Image.fromarray(np.ascontiguousarray(pixels))
    if options.viewport is not None:
        image = _fit(image, options.viewport)
    buffer = io.BytesIO()
    if options.media_type == "image/png":
        image.save(buffer, format="PNG", compress_level=_PNG_LEVEL)
    else:
        image.save(buffer, format="JPEG", quality=options.quality)
    return buffer.getvalue()


def _fit(image: Image.Image, viewport: tuple[int, int]) -> Image.Image:
    width, height = viewport
    scale = min(width / image.width, height / image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    if size == image.size:
        return image
    resample = Image.Resampling.BILINEAR if scale > 1 else Image.Resampling.BOX
    return image.resize(size, resample=resample)


def parse_window(text: str | None) -> Window | None:
    """`window=center,width[,function]` (PS3.18 8.3.5.1.4)."""
    if text is None or text == "":
        return None
    parts = [part.strip() for part in text.split(",")]
    if len(parts) not in (2, 3):
        raise InvalidQuery(f"window={text!r}: expected center,width[,function]")
    try:
        center, width = float(parts[0]), float(parts[1])
    except ValueError:
        raise InvalidQuery(f"window={text!r}: centre and width must be numbers") from None
    function = parts[2].upper() if len(parts) == 3 else "LINEAR"
    return Window(center, width, function)


def parse_viewport(text: str | None) -> tuple[int, int] | None:
    """`viewport=width,height` (PS3.18 8.3.5.1.3); source-region forms are not supported."""
    if text is None or text == "":
        return None
    parts = [part.strip() for part in text.split(",")]
    if len(parts) != 2 or not all(part.isdigit() for part in parts):
        raise InvalidQuery(f"viewport={text!r}: expected width,height as positive integers")
    width, height = int(parts[0]), int(parts[1])
    if not (0 < width <= _MAX_VIEWPORT and 0 < height <= _MAX_VIEWPORT):
        raise InvalidQuery(f"viewport={text!r}: width and height must be 1 to {_MAX_VIEWPORT}")
    return width, height


def parse_quality(text: str | None) -> int:
    """`quality=1..100` (PS3.18 8.3.5.1.2); 90 when not given."""
    if text is None or text == "":
        return 90
    if not text.strip().isdigit() or not 1 <= int(text) <= 100:
        raise InvalidQuery(f"quality={text!r}: expected an integer from 1 to 100")
    return int(text)


class RenderCache:
    """A thread-safe LRU of rendered bytes, bounded by their total size."""

    def __init__(self, max_bytes: int = 32 * 1024 * 1024) -> None:
        self._max_bytes = max_bytes
        self._items: OrderedDict[tuple[object, ...], bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[object, ...]) -> bytes | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: tuple[object, ...], value: bytes) -> None:
        if len(value) > self._max_bytes:
            return
        with self._lock:
            previous = self._items.pop(key, None)
            if previous is not None:
                self._size -= len(previous)
            self._items[key] = value
            self._size += len(value)
            while self._size > self._max_bytes:
                _, dropped = self._items.popitem(last=False)
                self._size -= len(dropped)
