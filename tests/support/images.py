"""Synthetic images with known pixel values, in any transfer syntax we can encode.

Compressed inputs are made with pydicom's encoders (RLE, JPEG-LS, JPEG 2000) and, for JPEG
baseline, with Pillow's encoder wrapped in pydicom's encapsulation.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    generate_uid,
)

CT = "1.2.840.10008.5.1.4.1.1.2"
SC = "1.2.840.10008.5.1.4.1.1.7"


def image_dataset(
    pixels: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    signed: bool = False,
    sop_class_uid: str = CT,
    study_uid: str | None = None,
    series_uid: str | None = None,
) -> Dataset:
    """An instance whose Pixel Data is `pixels` (frames, rows, cols[, 3]) or (rows, cols[, 3])."""
    colour = pixels.shape[-1] == 3 and photometric in ("RGB", "YBR_FULL")
    frames = pixels.shape[0] if pixels.ndim == (4 if colour else 3) else 1
    rows, columns = pixels.shape[-3:-1] if colour else pixels.shape[-2:]
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class_uid
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.SOPClassUID = sop_class_uid
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.PatientName = "Render^Test"
    ds.PatientID = "RENDER1"
    ds.Modality = "CT" if sop_class_uid == CT else "OT"
    ds.SamplesPerPixel = 3 if colour else 1
    ds.PhotometricInterpretation = photometric
    if colour:
        ds.PlanarConfiguration = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.Rows, ds.Columns = int(rows), int(columns)
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = bits_stored or pixels.dtype.itemsize * 8
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if signed else 0
    data = pixels.astype(pixels.dtype.newbyteorder("<"), copy=False).tobytes()
    ds.PixelData = data + b"\x00" if len(data) % 2 else data
    ds["PixelData"].VR = "OB" if pixels.dtype.itemsize == 1 else "OW"
    return ds


def ramp(rows: int = 64, columns: int = 256, low: int = 0, high: int = 4095) -> np.ndarray:
    """A horizontal ramp from `low` to `high` (uint16), the same on every row."""
    line = np.linspace(low, high, columns).round().astype(np.uint16)
    return np.tile(line, (rows, 1))


def compressed(ds: Dataset, syntax: str, **kwargs: object) -> Dataset:
    """`ds` with its pixel data compressed to `syntax` by pydicom's encoders."""
    ds.compress(syntax, **kwargs)  # type: ignore[arg-type]
    return ds


def jpeg_baseline(pixels: np.ndarray, *, photometric: str = "MONOCHROME2") -> Dataset:
    """8-bit pixels encoded by Pillow as JPEG baseline (quality 95), encapsulated."""
    ds = image_dataset(pixels, photometric="RGB" if pixels.ndim == 3 else photometric)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95, subsampling=0)
    ds.PixelData = encapsulate([buffer.getvalue()])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    if pixels.ndim == 3:
        ds.PhotometricInterpretation = "YBR_FULL"
    return ds


def part10(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
