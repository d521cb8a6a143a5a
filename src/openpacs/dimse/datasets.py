"""Identifiers and data sets in a presentation context's transfer syntax, by pydicom."""

from __future__ import annotations

import zlib
from io import BytesIO

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
)


def _flags(transfer_syntax: str) -> tuple[bool, bool]:
    """(implicit VR, little endian); every syntax but two is Explicit VR Little Endian."""
    if transfer_syntax == ImplicitVRLittleEndian:
        return True, True
    return False, transfer_syntax != ExplicitVRBigEndian


def decode(data: bytes | memoryview, transfer_syntax: str) -> Dataset:
    """A data set received in `transfer_syntax`; raises on malformed bytes."""
    raw = bytes(data)
    if transfer_syntax == DeflatedExplicitVRLittleEndian:
        raw = zlib.decompressobj(-zlib.MAX_WBITS).decompress(raw, 64 * 1024 * 1024)
    implicit, little = _flags(transfer_syntax)
    dataset = read_dataset(BytesIO(raw), implicit, little)
    list(dataset)  # pydicom defers parsing: decode every element now, so errors raise here
    return dataset


def encode(dataset: Dataset, transfer_syntax: str) -> bytes:
    """`dataset` (no pixel data conversion: identifiers, responses) in `transfer_syntax`."""
    implicit, little = _flags(transfer_syntax)
    buffer = DicomBytesIO()
    buffer.is_implicit_VR = implicit
    buffer.is_little_endian = little
    write_dataset(buffer, dataset)
    data = buffer.getvalue()
    if transfer_syntax == DeflatedExplicitVRLittleEndian:
        compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        data = compressor.compress(data) + compressor.flush()
    return data
