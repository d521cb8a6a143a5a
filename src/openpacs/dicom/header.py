"""Read what the archive needs from a received Part 10 file, without decoding pixel data.

A header gives the identifying UIDs, the values of the indexed keys (decoded to Unicode from the
file's SpecificCharacterSet by pydicom) and the whole header as the DICOM JSON model with bulk
data left out (PS3.18 F.2). Building that JSON is the dearest part of ingest, so it can wait:
`ParsedHeader.summary()` converts only the elements the index keeps as columns, and
`ParsedHeader.header()` the whole header, later and from the same parse. Reading also proves
the file is complete: pydicom returns short values for a truncated file instead of failing, so
the end of the last element is checked against the file size.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

from openpacs.dicom.json_model import element_json
from openpacs.dicom.levels import INDEXED_KEYS, Level
from openpacs.dicom.matching import json_values
from openpacs.dicom.uids import is_valid_uid
from openpacs.dicom.values import normalize_date, normalize_int, normalize_name, normalize_time
from openpacs.errors import IdentifierMismatch, InvalidInstance

log = logging.getLogger(__name__)

# Values longer than this are not read into memory while parsing: pixel data, overlays, ...
_DEFER_BYTES = 16 * 1024
# Binary values longer than this are bulk data: left out of the JSON header (PS3.18 8.7.2).
BULK_DATA_THRESHOLD = 1024
_UNDEFINED_LENGTH = 0xFFFFFFFF
_VR_ENCODING_MISMATCH = "VR, but found"
_IDENTIFIERS = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")


@dataclass(frozen=True)
class Header:
    sop_class_uid: str
    sop_uid: str
    study_uid: str
    series_uid: str
    transfer_syntax: str
    columns: dict[Level, dict[str, Any]]
    """Column values for each level's index row (normalised for matching)."""
    json: dict[str, Any] | None
    """The whole header as DICOM JSON; None while it is not built yet (`summary`)."""
    summary: dict[str, Any] | None = None
    """Without `json`: the DICOM JSON of the indexed and identifying elements only, which
    the index keeps until the whole header is built."""

    @property
    def known(self) -> dict[str, Any]:
        """The elements built so far: the whole header, or its summary."""
        return self.json if self.json is not None else (self.summary or {})


@dataclass
class ParsedHeader:
    """A parsed and validated file whose index values are not built yet: the identifiers are
    known (enough to name the blob), and `header()` does the slower JSON conversion, so a
    caller can write the blob meanwhile."""

    sop_class_uid: str
    sop_uid: str
    study_uid: str
    series_uid: str
    transfer_syntax: str
    dataset: Dataset
    _summary: dict[str, Any] | None = field(default=None, repr=False)

    def header(self) -> Header:
        """The index values and the whole header as DICOM JSON. Consumes `dataset`."""
        header_json = dataset_json(self.dataset, converted=self._summary)
        return self._header(index_columns(header_json), header_json, None)

    def summary(self) -> Header:
        """The index values without the whole header (`json` None): the indexed elements
        alone are converted, exactly as `header()` converts them, so the columns are the
        same either way. `header()` may still be called afterwards."""
        summary = summary_json(self.dataset)
        self._summary = summary
        return self._header(index_columns(summary), None, summary)

    def _header(
        self,
        columns: dict[Level, dict[str, Any]],
        header_json: dict[str, Any] | None,
        summary: dict[str, Any] | None,
    ) -> Header:
        return Header(
            sop_class_uid=self.sop_class_uid,
            sop_uid=self.sop_uid,
            study_uid=self.study_uid,
            series_uid=self.series_uid,
            transfer_syntax=self.transfer_syntax,
            columns=columns,
            json=header_json,
            summary=summary,
        )


def parse_header(
    path: Path, *, sop_class_uid: str | None = None, sop_uid: str | None = None
) -> ParsedHeader:
    """Parse and validate the Part 10 file at `path`: completeness and identifiers.

    `sop_class_uid` and `sop_uid` are what the sender announced (the C-STORE request); the
    dataset must agree with them. Raises InvalidInstance or IdentifierMismatch with a reason.
    """
    dataset = _parse(path)
    transfer_syntax = str(dataset.file_meta.get("TransferSyntaxUID", "") or "")
    if not transfer_syntax:
        raise InvalidInstance("the file meta information has no Transfer Syntax UID")
    if transfer_syntax != DeflatedExplicitVRLittleEndian:
        _check_complete(dataset, path, UID(transfer_syntax).is_little_endian)
    uids = _identifiers(dataset)
    if sop_class_uid is not None and uids["SOPClassUID"] != sop_class_uid:
        raise IdentifierMismatch(
            f"SOP Class UID {uids['SOPClassUID']} differs from the requested {sop_class_uid}"
        )
    if sop_uid is not None and uids["SOPInstanceUID"] != sop_uid:
        raise IdentifierMismatch(
            f"SOP Instance UID {uids['SOPInstanceUID']} differs from the requested {sop_uid}"
        )
    return ParsedHeader(
        sop_class_uid=uids["SOPClassUID"],
        sop_uid=uids["SOPInstanceUID"],
        study_uid=uids["StudyInstanceUID"],
        series_uid=uids["SeriesInstanceUID"],
        transfer_syntax=transfer_syntax,
        dataset=dataset,
    )


def _parse(path: Path) -> Dataset:
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            dataset = dcmread(path, defer_size=_DEFER_BYTES)
    except (InvalidDicomError, EOFError, ValueError, KeyError, OSError, TypeError) as exc:
        raise InvalidInstance(f"not a readable DICOM dataset: {exc}") from exc
    except Exception as exc:  # pydicom raises a variety of errors on corrupt input
        raise InvalidInstance(f"not a readable DICOM dataset: {type(exc).__name__}") from exc
    for warning in caught:
        # pydicom reads on in the VR encoding it finds, but the dataset then contradicts the
        # negotiated transfer syntax (PS3.5 10.1): stored as is it would mislead every reader.
        if _VR_ENCODING_MISMATCH in str(warning.message):
            raise InvalidInstance(f"encoded against its transfer syntax: {warning.message}")
    return dataset


def _check_complete(dataset: Dataset, path: Path, little_endian: bool) -> None:
    """The last top-level element must end exactly at the end of the file."""
    elements = list(dataset._dict.values())
    if not elements:
        raise InvalidInstance("the dataset is empty")
    last = elements[-1]
    if not isinstance(last, RawDataElement):
        return
    size = os.path.getsize(path)
    if last.length == _UNDEFINED_LENGTH:
        delimiter = b"\xfe\xff\xdd\xe0" if little_endian else b"\xff\xfe\xe0\xdd"
        with open(path, "rb") as file:
            file.seek(max(size - 8, 0))
            tail = file.read(8)
        if tail != delimiter + b"\x00\x00\x00\x00":
            raise InvalidInstance(f"truncated: {last.tag} has no sequence delimiter")
        return
    end = last.value_tell + last.length
    if end != size:
        raise InvalidInstance(
            f"truncated or malformed: element {last.tag} ends at byte {end}, file has {size}"
        )


def _identifiers(dataset: Dataset) -> dict[str, str]:
    found: dict[str, str] = {}
    for keyword in _IDENTIFIERS:
        try:
            value = dataset.get(keyword)
        except Exception as exc:
            raise IdentifierMismatch(f"{keyword} cannot be read: {exc}") from exc
        text = str(value or "").strip().rstrip("\x00")
        if not text:
            raise IdentifierMismatch(f"{keyword} is missing")
        if not is_valid_uid(text):
            raise IdentifierMismatch(f"{keyword} {text!r} is not a valid UID")
        found[keyword] = text
    return found


def dataset_json(dataset: Dataset, *, converted: dict[str, Any] | None = None) -> dict[str, Any]:
    """The DICOM JSON model of `dataset` with bulk data replaced by BulkDataURI markers.

    `converted`: elements of this dataset already converted by `summary_json` (the same
    conversion), taken as they are; an element it lacks is converted (again).

    The marker is the element's tag in hex; the web layer turns it into a retrievable URL.
    Values that were deferred while parsing (large ones) are never read: they are removed
    from `dataset`, which the caller must not use for anything else afterwards.
    """
    deferred: dict[str, dict[str, str]] = {}
    for tag, element in list(dataset._dict.items()):
        if tag.element == 0x0000:
            del dataset._dict[tag]  # group lengths are not part of the JSON model
        elif isinstance(element, RawDataElement) and element.value is None and element.length:
            vr = element.VR or _dictionary_vr(tag)
            deferred[f"{tag:08X}"] = {"vr": vr, "BulkDataURI": f"{tag:08X}"}
            del dataset._dict[tag]
    done = converted or {}
    converted = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for tag in list(dataset.keys()):
            key = f"{tag:08X}"
            if key in done:
                converted[key] = done[key]
                continue
            # Element by element, so one unconvertible value costs only its own element.
            try:
                converted[key] = element_json(
                    dataset[tag], bulk_handler=_bulk_marker, bulk_threshold=BULK_DATA_THRESHOLD
                )
            except Exception as exc:
                log.warning("header element %08X left out of the index: %s", tag, exc)
    converted.update(deferred)
    return dict(sorted(converted.items()))


def summary_json(dataset: Dataset) -> dict[str, Any]:
    """The DICOM JSON of the elements a summary keeps (`SUMMARY_TAGS`), each converted as
    `dataset_json` converts it; `dataset` stays usable."""
    converted: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for tag in SUMMARY_TAGS:
            if tag not in dataset._dict:
                continue
            try:
                converted[f"{tag:08X}"] = element_json(
                    dataset[tag], bulk_handler=_bulk_marker, bulk_threshold=BULK_DATA_THRESHOLD
                )
            except Exception as exc:
                log.warning("header element %08X left out of the index: %s", tag, exc)
    return converted


def _bulk_marker(element: DataElement) -> str:
    return f"{element.tag:08X}"


def _dictionary_vr(tag: int) -> str:
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return "UN"
    return "OB" if "OB" in vr else vr.split(" or ")[0]


def index_columns(header_json: dict[str, Any]) -> dict[Level, dict[str, Any]]:
    """The indexed key values of each level, in the form the index stores and matches."""
    columns: dict[Level, dict[str, Any]] = {level: {} for level in Level}
    for key in INDEXED_KEYS.values():
        values = json_values(header_json, _tag(key.keyword))
        raw = values[0] if values else None
        text = None if raw is None else str(raw).strip()
        row = columns[key.level]
        if key.kind == "name":
            row[key.column] = text or ""
            row[f"{key.column}_norm"] = normalize_name(text or "")
        elif key.kind == "date":
            row[key.column] = normalize_date(text) if text else None
        elif key.kind == "time":
            row[key.column] = normalize_time(text) if text else None
        elif key.kind == "int":
            row[key.column] = raw if isinstance(raw, int) else normalize_int(text or "")
        else:
            row[key.column] = text or ("" if key.keyword == "PatientID" else None)
    return columns


def _tag(keyword: str) -> int:
    from pydicom.datadict import tag_for_keyword

    tag = tag_for_keyword(keyword)
    assert tag is not None, keyword  # the keywords above are all in the dictionary
    return int(tag)


# What a summary keeps: the character set, the identifiers, InstitutionName (visibility) and
# every indexed key.
SUMMARY_TAGS = tuple(
    sorted(
        {_tag(keyword) for keyword in ("SpecificCharacterSet", "InstitutionName", *_IDENTIFIERS)}
        | {_tag(key.keyword) for key in INDEXED_KEYS.values()}
    )
)
