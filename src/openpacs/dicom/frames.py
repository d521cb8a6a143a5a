"""The bytes of single frames of a stored instance (PS3.18 8.7.3, WADO-RS frames).

A frame is sent either as native little-endian pixel bytes (application/octet-stream,
decompressing compressed data), or as the stored compressed bitstream of the frame, taken from
the encapsulated fragments without decoding (the frame's image/jpeg, image/jp2, ... type).
Native frames of uncompressed files are read from their offset in the file, so a frame of a
large multi-frame object costs one frame's read, not the whole pixel data.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.encaps import get_frame
from pydicom.pixels import pack_bits, pixel_array
from pydicom.tag import BaseTag
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from openpacs.dicom.pixels import PixelDecodeError, frame_count
from openpacs.errors import InvalidQuery, NotFound

_PIXEL_DATA = BaseTag(0x7FE00010)
_DEFER_BYTES = 4096
_MAX_FRAMES_LISTED = 10_000
_SEEKABLE = frozenset({ExplicitVRLittleEndian, ImplicitVRLittleEndian})

# PS3.18 Table 8.7.3-2: the media type of a frame in each compressed transfer syntax.
_FRAME_MEDIA_TYPES = {
    "1.2.840.10008.1.2.4.50": "image/jpeg",
    "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg",
    "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls",
    "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2",
    "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.4.92": "image/jpx",
    "1.2.840.10008.1.2.4.93": "image/jpx",
    "1.2.840.10008.1.2.4.201": "image/jhc",
    "1.2.840.10008.1.2.4.202": "image/jhc",
    "1.2.840.10008.1.2.4.203": "image/jhc",
    "1.2.840.10008.1.2.5": "image/dicom-rle",
}


def frame_media_type(transfer_syntax: str) -> str | None:
    """The media type of one compressed frame, None for uncompressed or video syntaxes."""
    return _FRAME_MEDIA_TYPES.get(transfer_syntax)


def parse_frame_list(text: str) -> list[int]:
    """`1,3,5` (1-based frame numbers, PS3.18 8.7.3.1.2) to 0-based indices."""
    parts = [part.strip() for part in text.split(",")]
    if not parts or len(parts) > _MAX_FRAMES_LISTED or not all(p.isdigit() for p in parts):
        raise InvalidQuery(f"frame list {text[:64]!r}: expected comma-separated frame numbers")
    numbers = [int(part) for part in parts]
    if any(number < 1 for number in numbers):
        raise InvalidQuery("frame numbers start at 1")
    return [number - 1 for number in numbers]


def read_for_frames(path: Path) -> Dataset:
    """The dataset with Pixel Data left unread (read later frame by frame)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dcmread(path, defer_size=_DEFER_BYTES)


def check_frames(ds: Dataset, indices: Sequence[int]) -> None:
    if _PIXEL_DATA not in ds:
        raise NotFound("the instance has no pixel data")
    count = frame_count(ds)
    missing = [index + 1 for index in indices if index >= count]
    if missing:
        raise NotFound(f"frame {missing[0]} does not exist (the instance has {count})")


def stored_frames(path: Path, ds: Dataset, indices: Sequence[int]) -> Iterator[bytes]:
    """Each frame's compressed bitstream as stored, from the encapsulated fragments."""
    check_frames(ds, indices)
    syntax = UID(str(ds.file_meta.TransferSyntaxUID))
    if not syntax.is_encapsulated:
        yield from native_frames(path, ds, indices)
        return
    offset = _pixel_offset(ds)
    count = frame_count(ds)
    with path.open("rb") as file:
        for index in indices:
            if offset is None:  # small enough to have been read with the header
                source: Any = ds.PixelData
            else:
                file.seek(offset)
                source = file
            try:
                yield get_frame(source, index, number_of_frames=count)
            except (ValueError, KeyError) as exc:
                raise PixelDecodeError(f"cannot split the pixel data into frames: {exc}") from exc


def native_frames(path: Path, ds: Dataset, indices: Sequence[int]) -> Iterator[bytes]:
    """Each frame as uncompressed little-endian pixel bytes (decoded when stored compressed)."""
    check_frames(ds, indices)
    syntax = UID(str(ds.file_meta.TransferSyntaxUID))
    length = _native_frame_length(ds)
    offset = _pixel_offset(ds)
    if syntax in _SEEKABLE and length is not None and offset is not None:
        with path.open("rb") as file:
            for index in indices:
                file.seek(offset + index * length)
                data = file.read(length)
                if len(data) != length:
                    raise PixelDecodeError(f"frame {index + 1} is truncated in the stored file")
                yield data
        return
    full = _read_fully(path)
    for index in indices:
        yield _decoded_frame(full, index)


def _decoded_frame(ds: Dataset, index: int) -> bytes:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            array = pixel_array(ds, index=index)
    except Exception as exc:  # decoders raise many types on unsupported or corrupt data
        raise PixelDecodeError(f"cannot decode frame {index + 1}: {exc}") from exc
    if int(ds.get("BitsAllocated", 8)) == 1:
        return pack_bits(array, pad=False)
    little = array.astype(array.dtype.newbyteorder("<"), copy=False)
    return np.ascontiguousarray(little).tobytes()


def _read_fully(path: Path) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dcmread(path)


def _native_frame_length(ds: Dataset) -> int | None:
    bits = int(ds.get("BitsAllocated", 0) or 0)
    if bits == 0 or bits % 8:
        return None
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    return int(ds.Rows) * int(ds.Columns) * samples * bits // 8


def _pixel_offset(ds: Dataset) -> int | None:
    """Where Pixel Data's value starts in the file, when it was left unread."""
    element = ds._dict.get(_PIXEL_DATA)  # the raw element: reading .value would load it
    if isinstance(element, RawDataElement) and element.value is None:
        return int(element.value_tell)
    return None
