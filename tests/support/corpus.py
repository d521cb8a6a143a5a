"""Test corpus: synthetic instances, pydicom's shipped test files and hand-made bad inputs.

Everything here feeds the archive's round-trip tests: store over C-STORE (PS3.4 B.2), find by
C-FIND, fetch with C-GET and compare bytes. Nothing touches the network; pydicom's test files are
listed from the installed package folder, never through ``pydicom.data.get_testdata_file``.
"""

from __future__ import annotations

import copy
import functools
import io
import os
import random
import tempfile
import warnings
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pydicom
from pydicom import config, dcmread
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    ExplicitVRLittleEndian,
    generate_uid,
)
from pydicom.valuerep import format_number_as_ds

if TYPE_CHECKING:
    from openpacs.archive.service import Archive, StoreOutcome

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
ENHANCED_MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4.1"
US_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.6.1"
CR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.1"
SECONDARY_CAPTURE_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.7"

PYDICOM_TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"

# The four attributes that place an instance in the patient/study/series/instance hierarchy
# (PS3.4 C.6.1.1): an archive cannot index an instance without them.
IDENTIFYING_KEYWORDS = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
_PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)  # PixelData, FloatPixelData, DoubleFloat...
_UNDEFINED_LENGTH = 0xFFFFFFFF


# --- Part 10 encoding --------------------------------------------------------------------------


def to_part10_bytes(ds: Dataset) -> bytes:
    """Encode ``ds`` as a DICOM file (PS3.10 7.1: preamble, ``DICM``, file meta, dataset)."""
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def store_bytes(archive: Archive, data: bytes) -> StoreOutcome:
    """Store a Part 10 file given as bytes in ``archive``, spooled to its staging folder first
    as a front door spools what it receives."""
    descriptor, name = tempfile.mkstemp(suffix=".dcm", dir=archive.staging_dir())
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    return archive.store_file(Path(name), consume=True)


def write_part10(ds: Dataset, path: str | Path) -> Path:
    """Write ``ds`` as a DICOM file at ``path`` and return the path."""
    target = Path(path)
    ds.save_as(target, enforce_file_format=True)
    return target


def encode_dataset(ds: Dataset, transfer_syntax: str = ExplicitVRLittleEndian) -> bytes:
    """Encode the dataset body alone, as a C-STORE carries it (no preamble, no file meta).

    Values must already be in the byte order of ``transfer_syntax``: pydicom does not swap
    OB/OW pixel data between endiannesses.
    """
    syntax = UID(transfer_syntax)
    fp = DicomBytesIO()
    fp.is_implicit_VR = syntax.is_implicit_VR
    fp.is_little_endian = syntax.is_little_endian
    write_dataset(fp, ds)
    body = fp.getvalue()
    if syntax.is_deflated:  # PS3.5 A.5: raw deflate, no zlib header
        compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        body = compressor.compress(body) + compressor.flush()
    return body


def pixel_bytes(source: Dataset | str | Path) -> bytes:
    """Return the stored (Float/DoubleFloat) Pixel Data bytes, undecoded, or ``b""``."""
    ds = source if isinstance(source, Dataset) else dcmread(source)
    for tag in _PIXEL_TAGS:
        if tag in ds:
            return bytes(ds[tag].value or b"")
    return b""


# --- synthetic instances -----------------------------------------------------------------------


def _new_instance(sop_class_uid: str, modality: str) -> Dataset:
    """A dataset with file meta, SOP Common and the ISO_IR 100 character set."""
    sop_instance_uid = generate_uid()
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.FileMetaInformationVersion = b"\x00\x01"
    ds.file_meta.MediaStorageSOPClassUID = sop_class_uid
    ds.file_meta.MediaStorageSOPInstanceUID = sop_instance_uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta.ImplementationVersionName = "OPENPACS_TEST"
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = sop_instance_uid
    ds.Modality = modality
    ds.Manufacturer = "OpenPACS"
    ds.ManufacturerModelName = "Synthetic"
    ds.InstitutionName = "OpenPACS Test Hospital"
    ds.StationName = "SYNTH01"
    return ds


def _set_pixels(ds: Dataset, pixels: np.ndarray, *, bits_stored: int, photometric: str) -> None:
    """Image Pixel module (PS3.3 C.7.6.3) from an unsigned array (frames, rows, cols[, 3])."""
    colour = photometric == "RGB"
    frames = pixels.shape[0] if pixels.ndim == (4 if colour else 3) else 1
    rows, columns = pixels.shape[-3:-1] if colour else pixels.shape[-2:]
    ds.SamplesPerPixel = 3 if colour else 1
    ds.PhotometricInterpretation = photometric
    if colour:
        ds.PlanarConfiguration = 0  # interleaved R, G, B per pixel
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.Rows = int(rows)
    ds.Columns = int(columns)
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0  # unsigned throughout the corpus
    data = pixels.astype(pixels.dtype.newbyteorder("<"), copy=False).tobytes()
    ds.PixelData = data + b"\x00" if len(data) % 2 else data  # PS3.5 7.1.1: even length
    ds["PixelData"].VR = "OB" if pixels.dtype.itemsize == 1 else "OW"


def _set_patient_study(
    ds: Dataset, *, patient_name: str, patient_id: str, study_uid: str, study_date: str
) -> None:
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = study_uid
    ds.StudyDate = study_date
    ds.StudyTime = "093000"
    ds.ReferringPhysicianName = "Referrer^Rita"
    ds.StudyID = "1"
    ds.AccessionNumber = "ACC0001"


def _ct_phantom(rows: int, columns: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Body ellipse with a spine, a radius grid for the per-slice sphere, and seeded noise."""
    v, u = np.mgrid[-1 : 1 : rows * 1j, -1 : 1 : columns * 1j]
    base = np.full((rows, columns), 24, dtype=np.uint16)  # ~-1000 HU air
    base[(u / 0.85) ** 2 + (v / 0.65) ** 2 <= 1] = 1064  # 40 HU soft tissue
    base[u**2 + (v - 0.45) ** 2 <= 0.08**2] = 2024  # 1000 HU vertebra
    radius2 = (u + 0.3) ** 2 + v**2
    noise = np.random.default_rng(seed).integers(0, 32, size=(rows, columns), dtype=np.uint16)
    return base, radius2, noise


def synthetic_ct_series(
    count: int,
    *,
    rows: int = 512,
    columns: int = 512,
    patient_name: str = "Doe^Jane",
    patient_id: str = "PID-0001",
    study_uid: str | None = None,
    series_uid: str | None = None,
    study_date: str = "20240115",
    accession: str = "ACC0001",
    series_number: int = 1,
    modality: str = "CT",
    seed: int = 0,
) -> list[Dataset]:
    """One axial CT Image Storage series; ``modality`` only sets (0008,0060).

    Pixels are 12-bit unsigned stored values (Rescale -1024/1): a phantom with a sphere that
    grows and shrinks along z plus seeded noise rolled per slice, so every slice differs.
    """
    study_uid = study_uid or generate_uid()
    series_uid = series_uid or generate_uid()
    frame_of_reference = generate_uid()
    spacing, thickness = 0.7, 1.25
    origin_x, origin_y = -columns * spacing / 2, -rows * spacing / 2
    base, radius2, noise = _ct_phantom(rows, columns, seed)
    series_time = datetime(2024, 1, 15, 9, 35, 0)
    instances = []
    for index in range(count):
        ds = _new_instance(CT_IMAGE_STORAGE, modality)
        _set_patient_study(
            ds,
            patient_name=patient_name,
            patient_id=patient_id,
            study_uid=study_uid,
            study_date=study_date,
        )
        ds.AccessionNumber = accession
        ds.StudyDescription = "CT CHEST WITHOUT CONTRAST"
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = series_number
        ds.SeriesDate = study_date
        ds.SeriesTime = series_time.strftime("%H%M%S")
        ds.SeriesDescription = "AXIAL 1.25MM"
        ds.BodyPartExamined = "CHEST"
        ds.PatientPosition = "HFS"
        ds.FrameOfReferenceUID = frame_of_reference
        ds.PositionReferenceIndicator = ""
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.InstanceNumber = index + 1
        ds.AcquisitionNumber = 1
        ds.ContentDate = study_date
        ds.ContentTime = (series_time + timedelta(seconds=index)).strftime("%H%M%S")
        z = -index * thickness
        ds.ImagePositionPatient = [format_number_as_ds(v) for v in (origin_x, origin_y, z)]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.SliceLocation = format_number_as_ds(z)
        ds.SliceThickness = format_number_as_ds(thickness)
        ds.PixelSpacing = [format_number_as_ds(spacing)] * 2
        ds.KVP = 120
        ds.ConvolutionKernel = "STANDARD"
        ds.RescaleIntercept = -1024
        ds.RescaleSlope = 1
        ds.RescaleType = "HU"
        ds.WindowCenter = 40
        ds.WindowWidth = 400
        # a sphere of 60 HU centred mid-series, its radius following the slice position
        t = (index + 0.5) / count * 2 - 1
        pixels = base.copy()
        pixels[radius2 <= 0.09 * max(0.0, 1 - t * t)] = 1084
        pixels += np.roll(noise, index * 7, axis=1)
        _set_pixels(ds, pixels, bits_stored=12, photometric="MONOCHROME2")
        instances.append(ds)
    return instances


_FAMILY_NAMES = (
    "Smith", "Sanchez", "Schulz", "Brown", "Baker", "Nguyen",
    "Müller", "Martin", "Okafor", "Olsen", "Kowalski", "Kim",
)  # fmt: skip
_GIVEN_NAMES = ("Anna", "John", "Maria", "Peter", "Linh", "Jürgen", "Ada", "Tom")
_MODALITIES = (
    ("CT", CT_IMAGE_STORAGE, "CHEST", 12),
    ("MR", MR_IMAGE_STORAGE, "HEAD", 12),
    ("US", US_IMAGE_STORAGE, "ABDOMEN", 8),
    ("CR", CR_IMAGE_STORAGE, "CHEST", 12),
)


def small_instances(
    studies: int,
    series_per_study: int,
    instances_per_series: int,
    *,
    rows: int = 64,
    columns: int = 64,
    seed: int = 0,
) -> Iterator[Dataset]:
    """Many small instances over many patients, for per-instance overhead and query tests.

    Each patient has two studies; names share first letters (Smith/Sanchez/Schulz...) and some
    need Latin-1; study dates spread over ten years; series cycle through CT, MR, US and CR.
    """
    pattern = np.add.outer(np.arange(rows), np.arange(columns)).astype(np.uint16)
    first_day = date(2014, 1, 1)
    for study_index in range(studies):
        patient = study_index // 2
        family = _FAMILY_NAMES[patient % len(_FAMILY_NAMES)]
        given = _GIVEN_NAMES[(patient + patient // len(_FAMILY_NAMES) + seed) % len(_GIVEN_NAMES)]
        study_date = first_day + timedelta(days=(study_index * 379 + seed * 53) % 3650)
        study_uid = generate_uid()
        for series_index in range(series_per_study):
            modality, sop_class, body_part, bits = _MODALITIES[
                (study_index + series_index + seed) % len(_MODALITIES)
            ]
            series_uid = generate_uid()
            for instance_index in range(instances_per_series):
                ds = _new_instance(sop_class, modality)
                _set_patient_study(
                    ds,
                    patient_name=f"{family}^{given}",
                    patient_id=f"SP{seed:03d}-{patient:05d}",
                    study_uid=study_uid,
                    study_date=study_date.strftime("%Y%m%d"),
                )
                ds.PatientBirthDate = f"{1940 + patient % 60}{1 + patient % 12:02d}15"
                ds.PatientSex = "FM"[patient % 2]
                ds.StudyTime = f"{8 + study_index % 10:02d}{study_index % 60:02d}00"
                ds.AccessionNumber = f"A{seed:03d}{study_index:07d}"
                ds.StudyID = str(study_index + 1)
                ds.StudyDescription = f"{modality} {body_part} {study_index % 3 + 1}"
                ds.SeriesInstanceUID = series_uid
                ds.SeriesNumber = series_index + 1
                ds.SeriesDescription = f"{modality} series {series_index + 1}"
                ds.BodyPartExamined = body_part
                ds.InstanceNumber = instance_index + 1
                value = pattern + (instance_index * 7 + series_index * 13 + seed)
                mask = (1 << bits) - 1
                pixels = (value & mask).astype(np.uint8 if bits == 8 else np.uint16)
                _set_pixels(ds, pixels, bits_stored=bits, photometric="MONOCHROME2")
                yield ds


def rgb_pattern(rows: int, columns: int, seed: int = 0) -> np.ndarray:
    """The (rows, columns, 3) uint8 pattern of :func:`secondary_capture_rgb`."""
    y, x = np.indices((rows, columns))
    red = x * 255 // max(columns - 1, 1)
    green = y * 255 // max(rows - 1, 1)
    blue = ((x ^ y) + seed) & 0xFF
    return np.stack([red, green, blue], axis=-1).astype(np.uint8)


def secondary_capture_rgb(
    *,
    rows: int = 64,
    columns: int = 64,
    patient_name: str = "Roe^Richard",
    patient_id: str = "PID-0002",
    study_uid: str | None = None,
    series_uid: str | None = None,
    seed: int = 0,
) -> Dataset:
    """An RGB Secondary Capture (PS3.3 A.8.1) holding :func:`rgb_pattern` interleaved."""
    ds = _new_instance(SECONDARY_CAPTURE_IMAGE_STORAGE, "OT")
    _set_patient_study(
        ds,
        patient_name=patient_name,
        patient_id=patient_id,
        study_uid=study_uid or generate_uid(),
        study_date="20240116",
    )
    ds.StudyDescription = "SCREEN CAPTURE"
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.SeriesNumber = 900
    ds.SeriesDescription = "RGB capture"
    ds.ConversionType = "WSD"
    ds.InstanceNumber = 1
    _set_pixels(ds, rgb_pattern(rows, columns, seed), bits_stored=8, photometric="RGB")
    return ds


def multiframe_pattern(frames: int, rows: int, columns: int, seed: int = 0) -> np.ndarray:
    """The (frames, rows, columns) 12-bit uint16 pattern of :func:`multiframe_mr`."""
    f, y, x = np.indices((frames, rows, columns))
    return ((x + 3 * y + 97 * f + 13 * seed) % 4096).astype(np.uint16)


def _item(**keywords: object) -> Dataset:
    item = Dataset()
    for keyword, value in keywords.items():
        setattr(item, keyword, value)
    return item


def multiframe_mr(
    frames: int = 8,
    *,
    rows: int = 64,
    columns: int = 64,
    patient_name: str = "Roe^Richard",
    patient_id: str = "PID-0002",
    study_uid: str | None = None,
    series_uid: str | None = None,
    seed: int = 0,
) -> Dataset:
    """An Enhanced MR instance: ``frames`` frames with shared and per-frame functional groups."""
    ds = _new_instance(ENHANCED_MR_IMAGE_STORAGE, "MR")
    _set_patient_study(
        ds,
        patient_name=patient_name,
        patient_id=patient_id,
        study_uid=study_uid or generate_uid(),
        study_date="20240117",
    )
    ds.StudyDescription = "MR BRAIN"
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.SeriesNumber = 1
    ds.SeriesDescription = "T1 3D"
    ds.FrameOfReferenceUID = generate_uid()
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    ds.InstanceNumber = 1
    ds.ContentDate = "20240117"
    ds.ContentTime = "101500"
    ds.AcquisitionDateTime = "20240117101500"
    ds.DimensionOrganizationType = "3D"
    dimension_uid = generate_uid()
    ds.DimensionOrganizationSequence = Sequence([_item(DimensionOrganizationUID=dimension_uid)])
    ds.DimensionIndexSequence = Sequence(
        [
            _item(
                DimensionOrganizationUID=dimension_uid,
                DimensionIndexPointer=0x00209057,  # In-Stack Position Number
                FunctionalGroupPointer=0x00209111,  # Frame Content Sequence
            )
        ]
    )
    ds.SharedFunctionalGroupsSequence = Sequence(
        [
            _item(
                PixelMeasuresSequence=Sequence(
                    [_item(PixelSpacing=["1", "1"], SliceThickness="1.5")]
                ),
                PlaneOrientationSequence=Sequence(
                    [_item(ImageOrientationPatient=[1, 0, 0, 0, 1, 0])]
                ),
            )
        ]
    )
    ds.PerFrameFunctionalGroupsSequence = Sequence(
        [
            _item(
                FrameContentSequence=Sequence(
                    [_item(StackID="1", InStackPositionNumber=n + 1, DimensionIndexValues=n + 1)]
                ),
                PlanePositionSequence=Sequence(
                    [_item(ImagePositionPatient=["-32", "-32", format_number_as_ds(n * 1.5)])]
                ),
            )
            for n in range(frames)
        ]
    )
    pixels = multiframe_pattern(frames, rows, columns, seed)
    _set_pixels(ds, pixels, bits_stored=12, photometric="MONOCHROME2")
    return ds


# --- strict reading policy ---------------------------------------------------------------------


def _dictionary_vr(tag: int) -> str | None:
    try:
        return dictionary_VR(tag)
    except KeyError:  # private or unknown: a defined-length value stays raw bytes
        return None


def _short_element(ds: Dataset) -> str | None:
    """The first element, at any depth, whose value holds fewer bytes than its length says."""
    for tag in list(ds.keys()):  # iterating the Dataset itself would convert every value
        raw = ds.get_item(tag, keep_deferred=True)
        if isinstance(raw, RawDataElement):
            value = raw.value
            if value is not None and raw.length not in (len(value), _UNDEFINED_LENGTH):
                return f"element {tag} holds {len(value)} of its {raw.length} bytes"
            if (raw.VR or _dictionary_vr(tag)) != "SQ":
                continue  # converting other values would validate them, which is not our job
        element = ds[tag]
        if element.VR == "SQ":
            for item in element.value:
                found = _short_element(item)
                if found:
                    return found
    return None


def _invalid_uid(value: object) -> bool:
    text = str(value or "")
    return not text or not UID(text, validation_mode=config.IGNORE).is_valid


def dataset_problem(ds: Dataset) -> str | None:
    """Why a strict archive must refuse ``ds``: a truncated value or a bad identifier.

    Structural checks only (value lengths and the PS3.4 C.6.1.1 identifiers); odd values in other
    attributes (an IS of "1A", an over-long UID elsewhere) are the archive's to tolerate.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        short = _short_element(ds)
    if short:
        return short
    if caught:  # parsing a nested sequence warned: the encoding is inconsistent
        return f"sequence parsing warned: {caught[0].message}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns when converting an invalid UID value
        for keyword in IDENTIFYING_KEYWORDS:
            if keyword not in ds:
                return f"missing {keyword}"
            if _invalid_uid(ds[keyword].value):
                return f"invalid {keyword}"
    return None


def file_problem(path: str | Path) -> str | None:
    """Why a strict archive must refuse the DICOM file at ``path``, or ``None`` if storable."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = dcmread(path)  # no force: PS3.10 preamble and "DICM" prefix are required
        except (InvalidDicomError, EOFError, ValueError, KeyError) as error:
            return f"not readable without force: {type(error).__name__}: {error}"
    if caught:  # e.g. "Expected explicit VR, but found implicit VR"
        return f"reading warned: {caught[0].message}"
    meta = ds.file_meta
    for keyword in ("TransferSyntaxUID", "MediaStorageSOPClassUID"):
        if _invalid_uid(meta.get(keyword)):
            return f"file meta lacks a valid {keyword}"
    return dataset_problem(ds)


# --- pydicom's shipped test files --------------------------------------------------------------


@dataclass(frozen=True)
class CorpusFile:
    """A storable file and the attributes tests need to send it (presentation context...)."""

    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    character_sets: tuple[str, ...]
    frames: int | None  # None when NumberOfFrames is not an integer (badVR.dcm: "1A")


@dataclass(frozen=True)
class _Classification:
    valid: tuple[CorpusFile, ...]
    duplicates: tuple[CorpusFile, ...]
    malformed: tuple[tuple[Path, str], ...]


def _candidate_paths() -> list[Path]:
    """DICOM-like files: ``.dcm`` or no suffix; READMEs, JSON, dumps, ICC and .gz are skipped."""
    return sorted(
        path
        for path in PYDICOM_TEST_FILES.rglob("*")
        if path.is_file() and path.suffix in ("", ".dcm") and not path.name.startswith("README")
    )


def _describe(path: Path) -> CorpusFile:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # odd values are tolerated; file_problem judged already
        ds = dcmread(path, stop_before_pixels=True)
        charsets = ds.get("SpecificCharacterSet") or ()
        frames_value = ds.get("NumberOfFrames")
        try:
            frames: int | None = int(frames_value) if frames_value not in (None, "") else 1
        except (TypeError, ValueError):
            frames = None
        return CorpusFile(
            path=path,
            sop_class_uid=str(ds.SOPClassUID),
            sop_instance_uid=str(ds.SOPInstanceUID),
            transfer_syntax_uid=str(ds.file_meta.TransferSyntaxUID),
            character_sets=(charsets,) if isinstance(charsets, str) else tuple(charsets),
            frames=frames,
        )


@functools.cache
def _classify() -> _Classification:
    """Sort pydicom's test files once per process into valid, duplicate and malformed.

    Several files are re-encodings of one instance (MR_small*, rtdose*, SC_rgb_*) and share a
    SOP Instance UID, which an archive stores once. One file is kept per UID, in path order;
    within a UID the file whose transfer syntax has been kept least so far wins (then the
    rarer syntax overall, then the first path). Plain "first path" would drop every RLE and
    JPEG-LS file, since MR_small.dcm sorts before MR_small_RLE.dcm and its other encodings.
    """
    storable: list[CorpusFile] = []
    malformed: list[tuple[Path, str]] = []
    for path in _candidate_paths():
        problem = file_problem(path)
        if problem is None:
            storable.append(_describe(path))
        else:
            malformed.append((path, problem))
    overall = Counter(entry.transfer_syntax_uid for entry in storable)
    groups: dict[str, list[CorpusFile]] = {}
    for entry in storable:
        groups.setdefault(entry.sop_instance_uid, []).append(entry)
    kept: Counter[str] = Counter()
    valid: list[CorpusFile] = []
    duplicates: list[CorpusFile] = []
    for members in groups.values():
        best = min(
            members,
            key=lambda e: (kept[e.transfer_syntax_uid], overall[e.transfer_syntax_uid], e.path),
        )
        kept[best.transfer_syntax_uid] += 1
        valid.append(best)
        duplicates.extend(entry for entry in members if entry is not best)
    return _Classification(
        valid=tuple(sorted(valid, key=lambda e: e.path)),
        duplicates=tuple(sorted(duplicates, key=lambda e: e.path)),
        malformed=tuple(malformed),
    )


def pydicom_valid_entries() -> list[CorpusFile]:
    """Storable files with their SOP class, transfer syntax, character sets and frame count."""
    return list(_classify().valid)


def pydicom_valid_files() -> list[Path]:
    """Storable pydicom test files, sorted, no two sharing a SOP Instance UID."""
    return [entry.path for entry in _classify().valid]


def pydicom_duplicate_files() -> list[Path]:
    """Storable files left out because a kept file has the same SOP Instance UID."""
    return [entry.path for entry in _classify().duplicates]


# pydicom_malformed_files(), as found by reading each file (pydicom 3.0.2):
#   ExplVR_BigEndNoMeta.dcm, ExplVR_LitEndNoMeta.dcm, no_meta.dcm, rtstruct.dcm:
#       no preamble/"DICM" prefix, so unreadable without force=True (PS3.10 7.1).
#   meta_missing_tsyntax.dcm: file meta without Transfer Syntax UID (PS3.10 7.1 type 1).
#   empty_charset_LEI.dcm, nested_priv_SQ.dcm: no Media Storage SOP Class UID, no identifiers.
#   no_meta_group_length.dcm, priv_SQ.dcm, UN_sequence.dcm: fragments without SOP Class,
#       SOP Instance, Study or Series Instance UID.
#   JPEGLSNearLossless_08/16.dcm, SC_rgb_jls_lossy_line/sample.dcm: no Study/Series UID.
#   dicomdirtests/DICOMDIR*, dicomdirtests/TINY_ALPHA/DICOMDIR: Media Storage Directory files
#       (PS3.10 8), not composite instances: no SOP Class/Instance UID in the dataset.
#   MR_truncated.dcm: Pixel Data holds 8130 of its 8192 bytes.
#   rtplan_truncated.dcm: Beam Sequence (300A,00B0) holds 711 of its 976 bytes.
#   SC_rgb_jpeg.dcm: Transfer Syntax says Explicit VR but the dataset is Implicit VR encoded.
def pydicom_malformed_files() -> list[Path]:
    """pydicom test files a strict archive must refuse (see the list above)."""
    return [path for path, _ in _classify().malformed]


def pydicom_malformed_reasons() -> dict[Path, str]:
    """Each malformed file with the first problem found in it."""
    return dict(_classify().malformed)


# --- hand-made bad inputs for C-STORE ----------------------------------------------------------


def _with_raw_uid(ds: Dataset, keyword: str, value: str) -> Dataset:
    """Copy of ``ds`` with a UID value pydicom would refuse to set (validation off)."""
    bad = copy.deepcopy(ds)
    tag = tag_for_keyword(keyword)
    bad[tag] = DataElement(tag, "UI", value, validation_mode=config.IGNORE)
    return bad


def bad_datasets() -> list[tuple[str, bytes]]:
    """(name, dataset body in Explicit VR Little Endian) pairs a strict C-STORE SCP must refuse."""
    (good,) = synthetic_ct_series(1, rows=16, columns=16)
    good.StudyDescription = "X" * 40
    cases: list[tuple[str, bytes]] = []
    for keyword in IDENTIFYING_KEYWORDS[::-1]:
        missing = copy.deepcopy(good)
        del missing[keyword]
        cases.append((f"missing_{keyword}", encode_dataset(missing)))
    for name, uid in (
        ("uid_with_letters", "1.2.abc"),
        ("uid_leading_dot", ".1.2"),
        ("uid_too_long", "1.2." + "3" * 66),  # 70 characters, PS3.5 9.1 allows 64
    ):
        cases.append((name, encode_dataset(_with_raw_uid(good, "SOPInstanceUID", uid))))
    body = encode_dataset(good)
    pixel_header = (0x7FE0).to_bytes(2, "little") + (0x0010).to_bytes(2, "little") + b"OW"
    pixel_value = body.index(pixel_header) + 12  # tag, VR, 2 reserved, 4-byte length
    cases.append(("truncated_in_value", body[: pixel_value + 100]))
    description = body.index(b"X" * 40) - 2  # the 2-byte length of (0008,1030) LO
    overrun = body[:description] + (0xFFF0).to_bytes(2, "little") + body[description + 2 :]
    cases.append(("length_past_end", overrun))
    cases.append(("garbage", random.Random(0x0BAD).randbytes(1024)))
    return cases


def parse_dataset_body(data: bytes, transfer_syntax: str = ExplicitVRLittleEndian) -> Dataset:
    """Parse a dataset body as a C-STORE SCP receives it (no file meta)."""
    syntax = UID(transfer_syntax)
    return read_dataset(
        io.BytesIO(data),
        is_implicit_VR=syntax.is_implicit_VR,
        is_little_endian=syntax.is_little_endian,
    )
