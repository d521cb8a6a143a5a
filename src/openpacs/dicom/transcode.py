"""Choose and apply the transfer syntax an instance is sent in (PS3.5 Section 10).

The stored transfer syntax is always preferred: sending what was received is both faithful and
cheapest. Otherwise the instance is converted to an uncompressed syntax the receiver accepts,
decoding compressed pixel data with pydicom's pixel handlers (pylibjpeg and its plugins).
"""

from __future__ import annotations

from collections.abc import Collection

from pydicom.dataset import Dataset
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from openpacs.errors import TranscodeError

UNCOMPRESSED = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
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
    elif source == ExplicitVRBigEndian:
        raise TranscodeError("converting Explicit VR Big Endian pixel data is not supported")
    elif source not in _NATIVE_LITTLE:
        raise TranscodeError(f"cannot convert from {source.name}")
    # A fresh dataset has no original encoding, so encoding it in `target` converts every
    # element instead of copying raw bytes that were encoded for another syntax.
    converted = Dataset(dataset)
    converted.file_meta = dataset.file_meta
    converted.file_meta.TransferSyntaxUID = UID(target)
    return converted


def _decompress(dataset: Dataset) -> None:
    """Decode the pixel data in place; the instance keeps its identity (PS3.5 10.1).

    pydicom's `decompress` fails on some valid input that `pixel_array` decodes (a sign
    correction written into a read-only buffer, pydicom 3.0), so that path is the fallback.
    """
    try:
        dataset.decompress(generate_instance_uid=False)
        return
    except ValueError:
        pixels = dataset.pixel_array
    photometric = str(dataset.PhotometricInterpretation)
    if photometric.startswith("YBR") and dataset.SamplesPerPixel == 3:
        photometric = "RGB"  # pixel_array converts YBR to RGB
    dataset.set_pixel_data(
        pixels,
        photometric_interpretation=photometric,
        bits_stored=int(dataset.BitsStored),
        generate_instance_uid=False,
    )
