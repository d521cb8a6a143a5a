"""Instances from DICOM JSON metadata and bulk data parts (STOW-RS, PS3.18 10.5 and Annex F).

A STOW-RS request of `multipart/related; type="application/dicom+json"` carries the data sets
as DICOM JSON (an array, one object per instance) whose bulk data values are either inline
(InlineBinary, base64) or BulkDataURIs naming other parts of the request by their
Content-Location. Uncompressed bulk data and pixel data come as application/octet-stream in
little endian; compressed pixel data as the bitstream of its media type (image/jpeg,
image/jp2, ..., video/mp4), with an optional `transfer-syntax` parameter (PS3.18 Table
8.7.3-5). pydicom's `Dataset.from_json` builds the data set; this module resolves the bulk
data, encapsulates compressed pixel data, picks the transfer syntax and adds the file meta
information, so that the instance is an ordinary Part 10 file, stored and checked exactly like
one received by C-STORE.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom import dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian

from openpacs.errors import InvalidInstance

_PIXEL_DATA = "7FE00010"
_OCTETS = "application/octet-stream"
_IMAGE_PIXEL_DESCRIPTION = ("Rows", "Columns", "SamplesPerPixel", "BitsAllocated",
                            "BitsStored", "HighBit", "PixelRepresentation",
                            "PhotometricInterpretation")  # fmt: skip
_VIDEO = frozenset({"video/mpeg", "video/mp4", "video/h265"})

# PS3.18 Table 8.7.3-5: the transfer syntaxes of each compressed pixel data media type, the
# default first (image/jpeg without a parameter: read from the bitstream's frame header).
_SYNTAXES: dict[str, tuple[str, ...]] = {
    "image/jpeg": (
        "1.2.840.10008.1.2.4.70",
        "1.2.840.10008.1.2.4.50",
        "1.2.840.10008.1.2.4.51",
        "1.2.840.10008.1.2.4.57",
    ),
    "image/jls": ("1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"),
    "image/jp2": ("1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"),
    "image/jpx": ("1.2.840.10008.1.2.4.92", "1.2.840.10008.1.2.4.93"),
    "image/jphc": (
        "1.2.840.10008.1.2.4.201",
        "1.2.840.10008.1.2.4.202",
        "1.2.840.10008.1.2.4.203",
    ),
    "image/dicom-rle": ("1.2.840.10008.1.2.5",),
    "video/mpeg": ("1.2.840.10008.1.2.4.100", "1.2.840.10008.1.2.4.101"),
    "video/mp4": tuple(f"1.2.840.10008.1.2.4.{n}" for n in range(102, 109)),
    "video/h265": ("1.2.840.10008.1.2.4.107", "1.2.840.10008.1.2.4.108"),
}
_SYNTAXES["image/jhc"] = _SYNTAXES["image/jphc"]  # the name openpacs' frames resource uses


@dataclass(frozen=True)
class BulkPart:
    """One bulk data part of the request: its media type, `transfer-syntax` parameter and
    the file its bytes were spooled to."""

    media_type: str
    transfer_syntax: str | None
    path: Path


def metadata_objects(text: bytes) -> list[Any]:
    """The data sets of an application/dicom+json part: a JSON array (a single object is
    taken as an array of one). InvalidInstance when it is not JSON."""
    try:
        document = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInstance(f"the application/dicom+json part is not valid JSON: {exc}") from None
    if isinstance(document, dict):
        return [document]
    if not isinstance(document, list):
        raise InvalidInstance("the application/dicom+json part is not an array of data sets")
    return document


def identifiers(metadata: Any) -> tuple[str, str]:
    """(SOP Class UID, SOP Instance UID) as the JSON gives them, for the response ("" when
    missing or malformed): read without building the data set."""

    def value(tag: str) -> str:
        element = metadata.get(tag) if isinstance(metadata, dict) else None
        values = element.get("Value") if isinstance(element, dict) else None
        first = values[0] if isinstance(values, list) and values else ""
        return first if isinstance(first, str) else ""

    return value("00080016"), value("00080018")


def instance_from_json(metadata: Any, bulk: Mapping[str, BulkPart], target: Path) -> set[str]:
    """Write the instance `metadata` describes to `target` as a Part 10 file; the BulkDataURIs
    it used. InvalidInstance, with the reason, when it cannot be built."""
    if not isinstance(metadata, dict):
        raise InvalidInstance("a data set of the metadata is not a JSON object")
    used: set[str] = set()
    pixel_part: list[BulkPart] = []

    def resolve(tag: str, vr: str, uri: str) -> bytes:
        part = bulk.get(uri)
        if part is None:
            raise InvalidInstance(
                f"BulkDataURI {uri[:200]!r} of ({tag[:4]},{tag[4:]}) names no part of the"
                " request (no part has that Content-Location)"
            )
        used.add(uri)
        if tag.upper() == _PIXEL_DATA and part.media_type != _OCTETS:
            pixel_part.append(part)
        elif part.media_type.startswith(("image/", "video/")):
            raise InvalidInstance(
                f"bulk data of ({tag[:4]},{tag[4:]}) came as {part.media_type}: only Pixel Data"
                " may be sent compressed"
            )
        return part.path.read_bytes()

    try:
        dataset = Dataset.from_json(metadata, bulk_data_uri_handler=resolve)
    except InvalidInstance:
        raise
    except Exception as exc:  # pydicom's reasons for a malformed JSON model
        raise InvalidInstance(f"the data set is not valid DICOM JSON: {exc}") from None
    for element in list(dataset.group_dataset(0x0002)):
        del dataset[element.tag]  # file meta is written here, not taken from the JSON
    syntax: str = ExplicitVRLittleEndian
    if "PixelData" in dataset and pixel_part:
        syntax = _encapsulate(dataset, pixel_part[0])
    _write(dataset, syntax, target)
    return used


def _encapsulate(dataset: Dataset, part: BulkPart) -> str:
    """Put compressed pixel data in encapsulated form (PS3.5 A.4); its transfer syntax."""
    syntax = _syntax_of(part, dataset.PixelData)
    missing = [k for k in _IMAGE_PIXEL_DESCRIPTION if k not in dataset]
    if missing:
        raise InvalidInstance(
            f"compressed pixel data needs the Image Pixel Description attributes; missing:"
            f" {', '.join(missing)}"
        )
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    video = part.media_type in _VIDEO
    if frames > 1 and not video:
        raise InvalidInstance(
            f"{frames} frames in one {part.media_type} part: send a multi-frame instance as"
            " application/dicom or in a video media type"
        )
    dataset.PixelData = encapsulate([dataset.PixelData], has_bot=not video)
    element = dataset["PixelData"]
    element.VR = "OB"
    element.is_undefined_length = True
    return syntax


def _syntax_of(part: BulkPart, data: bytes) -> str:
    allowed = _SYNTAXES.get(part.media_type)
    if allowed is None:
        raise InvalidInstance(f"pixel data in {part.media_type} is not supported")
    if part.transfer_syntax:
        if part.transfer_syntax not in allowed:
            raise InvalidInstance(
                f"transfer-syntax {part.transfer_syntax[:64]} is not one of {part.media_type}"
            )
        return part.transfer_syntax
    if part.media_type == "image/jpeg":
        return jpeg_syntax(data)
    return allowed[0]


def jpeg_syntax(data: bytes) -> str:
    """The JPEG transfer syntax a bitstream's frame header says (ISO 10918-1 B.1.1.3):
    baseline (SOF0), extended (SOF1), lossless (SOF3, selection value 1 or another)."""
    position, frame = 2, None
    if not data.startswith(b"\xff\xd8"):
        raise InvalidInstance("the image/jpeg part is not a JPEG bitstream (no SOI marker)")
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            break
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            frame = marker
        elif marker == 0xDA:  # start of scan: the selection value follows the components
            if frame == 0xC3:
                components = data[position + 4]
                predictor = data[position + 5 + 2 * components]
                return "1.2.840.10008.1.2.4.70" if predictor == 1 else "1.2.840.10008.1.2.4.57"
            break
        position += 2 + length
    by_frame = {0xC0: "1.2.840.10008.1.2.4.50", 0xC1: "1.2.840.10008.1.2.4.51"}
    if frame in by_frame:
        return by_frame[frame]
    raise InvalidInstance(
        "the image/jpeg part is neither baseline, extended nor lossless JPEG: give its"
        " transfer-syntax parameter"
    )


def _write(dataset: Dataset, syntax: str, target: Path) -> None:
    for keyword in ("SOPClassUID", "SOPInstanceUID"):
        if not str(dataset.get(keyword, "") or ""):
            raise InvalidInstance(f"the data set has no {keyword}")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    meta.TransferSyntaxUID = UID(syntax)
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    dataset.file_meta = meta
    try:
        dcmwrite(target, dataset, enforce_file_format=True)
    except Exception as exc:  # a value pydicom cannot encode in its VR
        raise InvalidInstance(f"the data set cannot be encoded: {exc}") from None
