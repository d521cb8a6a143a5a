"""Choose and apply the transfer syntax an instance is sent in (PS3.5 Section 10).

The stored transfer syntax is always preferred: sending what was received is both faithful and
cheapest. Otherwise the instance is converted to an uncompressed syntax the receiver accepts,
decoding compressed pixel data with pydicom's pixel handlers (pylibjpeg and its plugins) and
swapping the byte order of big endian data.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from openpacs.errors import TranscodeError

PIXEL_DATA = 0x7FE00010
# Bytes per word of the "other" VRs whose byte order follows the transfer syntax (PS3.5 6.2).
_WORD_BYTES = {"OW": 2, "OL": 4, "OF": 4, "OD": 8, "OV": 8}

# Conversion targets, in order of preference: Explicit VR Big Endian (retired) only for a
# receiver that accepts nothing else.
UNCOMPRESSED = (ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian)
# Syntaxes whose pixel data is little-endian native: converting between them re-encodes
# the dataset but never touches pixel bytes.
_NATIVE_LITTLE = frozenset(
    {ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian}
)


def choose_syntax(stored: str, accepted: Collection[str]) -> str | None:
    """The syntax to send an instance stored as `stored` in, or None when none fits."""
    if stored in accepted:
        return stored
    return next((syntax for syntax in UNCOMPRESSED if syntax in accepted), None)


def transcode(dataset: Dataset, target: str) -> Dataset:
    """Convert `dataset` (read from a Part 10 file) so it can be encoded in `target`."""
    source = UID(str(dataset.file_meta.TransferSyntaxUID))
    if source == target:
        return dataset
    if target not in UNCOMPRESSED:
        raise TranscodeError(f"cannot convert {source.name} to {UID(target).name}")
    if source.is_compressed and source != DeflatedExplicitVRLittleEndian:
        try:
            _decompress(dataset)
        except Exception as exc:  # pixel handlers raise many types for unsupported data
            raise TranscodeError(
                f"cannot decode {source.name} pixel data: {type(exc).__name__}: {exc}"
            ) from exc
    elif source not in _NATIVE_LITTLE and source != ExplicitVRBigEndian:
        raise TranscodeError(f"cannot convert from {source.name}")
    if (source == ExplicitVRBigEndian) != (target == ExplicitVRBigEndian):
        _swap_words(dataset)  # the same words, in the other byte order
    # A fresh dataset has no original encoding, so encoding it in `target` converts every
    # element instead of copying raw bytes that were encoded for another syntax.
    converted = Dataset(dataset)
    converted.file_meta = dataset.file_meta
    converted.file_meta.TransferSyntaxUID = UID(target)
    return converted


def _swap_words(dataset: Dataset) -> None:
    """Reverse the bytes of every word of OW, OL, OF, OD and OV values and of native Pixel
    Data (words of Bits Allocated, at least 16 bits in OW), at every depth, between little
    and big endian (PS3.5 7.3, 8.1.1). Values pydicom parses (numbers, AT) are re-encoded
    when written; these byte strings hold words in the byte order they were read in."""
    for element in dataset:  # converts raw elements while their encoding is known
        if element.VR == "SQ":
            for item in element.value:
                _swap_words(item)
            continue
        if not isinstance(element.value, bytes):
            continue
        width = _WORD_BYTES.get(element.VR, 0)
        if element.tag == PIXEL_DATA:  # OW holds 16-bit words even for 8-bit pixels
            bits = int(dataset.get("BitsAllocated") or 8)
            width = max(bits // 8, 2 if element.VR == "OW" else 1)
        if width > 1:
            element.value = _swapped(element.value, width)


def _swapped(value: bytes, width: int) -> bytes:
    whole = len(value) - len(value) % width
    words = np.frombuffer(value[:whole], dtype=f">u{width}")
    return words.astype(f"<u{width}").tobytes() + value[whole:]


def _decompress(dataset: Dataset) -> None:
    """Decode the pixel data in place; the instance keeps its identity (PS3.5 10.1).

    pydicom's `decompress` fails on some valid input that `pixel_array` decodes (a sign
    correction written into a read-only buffer, pydicom 3.0), so that path is the fallback.
    """
    try:
        dataset.decompress(generate_instance_uid=False)
        return
    except ValueError:
        _set_native_pixels(dataset, dataset.pixel_array)


def _set_native_pixels(dataset: Dataset, pixels: np.ndarray) -> None:
    """Replace Pixel Data by `pixels` as native little endian bytes."""
    photometric = str(dataset.PhotometricInterpretation)
    if photometric.startswith("YBR") and dataset.SamplesPerPixel == 3:
        photometric = "RGB"  # pixel_array converts YBR to RGB
    dataset.set_pixel_data(
        pixels,
        photometric_interpretation=photometric,
        bits_stored=int(dataset.BitsStored),
        generate_instance_uid=False,
    )
