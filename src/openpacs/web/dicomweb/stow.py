"""STOW-RS (PS3.18 10.5): store instances sent as multipart/related, either one Part 10
instance per application/dicom part, or DICOM JSON metadata (an application/dicom+json part
holding an array of data sets) with bulk data parts named by their Content-Location.

The whole body is read first, each part spooled to a file in the server's staging folder, so
a malformed or truncated body is refused (4xx) before anything is stored. Each instance is
then stored through `Archive.store_file`, the same validation and durability as a C-STORE (an
instance described by metadata is first written as a Part 10 file by
`dicom/json_instances.py`), and the response lists every stored instance
(ReferencedSOPSequence) and every failure (FailedSOPSequence, FailureReason: the DIMSE status
C-STORE would have answered); the reasons in words are in a Warning header.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from starlette.concurrency import run_in_threadpool

from openpacs.archive.service import Archive
from openpacs.dicom.json_instances import (
    BulkPart,
    identifiers,
    instance_from_json,
    metadata_objects,
)
from openpacs.dicom.uids import checked_uid
from openpacs.errors import OpenPacsError
from openpacs.web.audit import audited
from openpacs.web.deps import ArchiveDep, require
from openpacs.web.dicomweb.common import dicomweb_url
from openpacs.web.multipart import (
    BodyTooLarge,
    MediaType,
    MultipartError,
    MultipartReader,
    PartData,
    PartStart,
    UnsupportedMediaType,
    boundary_of,
    parse_media_type,
)

log = logging.getLogger(__name__)

DICOM = "application/dicom"
DICOM_JSON = "application/dicom+json"
_PREFIX_BYTES = 132
_PROCESSING_FAILURE = 0x0110
_STUDY_MISMATCH = 0xA900
_IDENTIFIERS = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
_UNSUPPORTED_PART = 0xC000  # not application/dicom: cannot understand

router = APIRouter(dependencies=[require("store")])


@dataclass
class _Part:
    content_type: str
    location: str | None
    """Its Content-Location: how metadata's BulkDataURIs name a bulk data part."""
    path: Path
    file: BinaryIO
    head: bytearray | None = None
    """The first bytes of an application/dicom part, held until it is known whether the
    preamble is missing."""

    @property
    def media(self) -> MediaType:
        return parse_media_type(self.content_type)

    def write(self, data: bytes) -> None:
        if self.head is None:
            self.file.write(data)
            return
        self.head += data
        if len(self.head) >= _PREFIX_BYTES:
            self._flush_head()

    def _flush_head(self) -> None:
        head, self.head = self.head or b"", None
        if head[128:132] != b"DICM" and head[:2] == b"\x02\x00":
            # File meta without the 128-byte preamble and "DICM" prefix, as pydicom's
            # dcmwrite (which dicomweb-client uses) writes datasets that were never read
            # from a file: restore the PS3.10 header instead of refusing the instance.
            self.file.write(bytes(128) + b"DICM")
        self.file.write(head)

    def close(self) -> None:
        if not self.file.closed:
            if self.head is not None:
                self._flush_head()
            self.file.close()


@dataclass
class _Outcome:
    stored: list[Dataset] = field(default_factory=list)
    failed: list[Dataset] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def add(self, ok: bool, item: Dataset, reason: str | None) -> None:
        (self.stored if ok else self.failed).append(item)
        if reason:
            self.reasons.append(reason)


async def _spool(request: Request, staging: Path | None, limit: int) -> tuple[str, list[_Part]]:
    """Read the body into one staging file per part; raise before anything is stored.
    Returns the body's root type and its parts."""
    content_type = request.headers.get("content-type")
    boundary = boundary_of(content_type)
    root_type = parse_media_type(content_type or "").params.get("type", DICOM).lower()
    if root_type not in (DICOM, DICOM_JSON):
        raise UnsupportedMediaType(
            f"multipart type {root_type!r} is not supported: send application/dicom parts,"
            " or application/dicom+json metadata with its bulk data parts"
        )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"the body is larger than {limit} bytes")
    reader = MultipartReader(boundary, max_total_bytes=limit, max_part_bytes=limit)
    parts: list[_Part] = []
    try:
        async for chunk in request.stream():
            for event in reader.feed(chunk):
                if isinstance(event, PartStart):
                    descriptor, name = tempfile.mkstemp(suffix=".stow", dir=staging)
                    location = event.headers.get("content-location")
                    file = os.fdopen(descriptor, "wb")
                    part = _Part(event.content_type, location, Path(name), file)
                    if part.media.type == DICOM:
                        part.head = bytearray()
                    parts.append(part)
                elif isinstance(event, PartData):
                    parts[-1].write(event.data)
                else:
                    parts[-1].close()
        reader.finish()
    except BaseException:
        for part in parts:
            _discard(part)
        raise
    for part in parts:
        part.close()
    if not parts:
        raise MultipartError("the body has no parts")
    return root_type, parts


def _discard(part: _Part) -> None:
    part.file.close()
    with suppress(FileNotFoundError):
        part.path.unlink()


def _readable_identifiers(path: Path) -> dict[str, str]:
    """The UIDs a file refused as invalid still shows, for its failure item (best effort)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = dcmread(path, stop_before_pixels=True, specific_tags=list(_IDENTIFIERS))
        return {k: str(ds.get(k, "") or "") for k in _IDENTIFIERS}
    except Exception:
        return {}


def _store_part(
    archive: Archive, part: _Part, study: str | None, base: str
) -> tuple[bool, Dataset, str | None]:
    """Store one application/dicom part: (stored?, its response item, why it was refused)."""
    media = part.media.type
    if media != DICOM:
        reason = f"part type {media!r} is not application/dicom"
        log.warning("STOW-RS part refused reason=%s", reason)
        _discard(part)
        return False, _item({}, _UNSUPPORTED_PART), reason
    return _store_file(archive, part.path, study, base)


def _store_metadata(
    archive: Archive,
    metadata: object,
    bulk: dict[str, BulkPart],
    study: str | None,
    base: str,
) -> tuple[bool, Dataset, str | None, set[str]]:
    """Store one data set of DICOM JSON metadata with its bulk data; also returns the
    BulkDataURIs it used."""
    staging = archive.staging_dir()
    descriptor, name = tempfile.mkstemp(suffix=".dcm", dir=staging)
    os.close(descriptor)
    path = Path(name)
    try:
        used = instance_from_json(metadata, bulk, path)
    except OpenPacsError as exc:
        _remove(path)
        sop_class, sop_uid = identifiers(metadata)
        log.warning("STOW-RS data set refused reason=%s", exc.reason)
        uids = {"SOPClassUID": sop_class, "SOPInstanceUID": sop_uid}
        return False, _item(uids, exc.dimse_status), exc.reason, set()
    except Exception:
        _remove(path)
        log.exception("STOW-RS data set failed unexpectedly")
        return False, _item({}, _PROCESSING_FAILURE), "internal error", set()
    return (*_store_file(archive, path, study, base), used)


def _store_file(
    archive: Archive, path: Path, study: str | None, base: str
) -> tuple[bool, Dataset, str | None]:
    """Store a spooled Part 10 file (it is consumed): (stored?, response item, reason).
    The file is parsed once, for its identifiers and for storing."""
    uids: dict[str, str] = {}
    try:
        parsed = archive.read_header(path)
        uids = {
            "SOPClassUID": parsed.sop_class_uid,
            "SOPInstanceUID": parsed.sop_uid,
            "StudyInstanceUID": parsed.study_uid,
            "SeriesInstanceUID": parsed.series_uid,
        }
        if study is not None and parsed.study_uid != study:
            raise _PartRefused(_STUDY_MISMATCH, "the instance is not in the study of the URL")
        archive.store_file(path, consume=True, parsed=parsed)
    except _PartRefused as exc:
        log.warning("STOW-RS part refused reason=%s", exc.reason)
        return False, _item(uids, exc.status), exc.reason
    except OpenPacsError as exc:
        log.warning("STOW-RS part refused reason=%s", exc.reason)
        status = exc.dimse_status if exc.dimse_status else _PROCESSING_FAILURE
        return False, _item(uids or _readable_identifiers(path), status), exc.reason
    except Exception:
        log.exception("STOW-RS part failed unexpectedly")
        return False, _item(uids, _PROCESSING_FAILURE), "internal error"
    finally:
        _remove(path)
    item = _item(uids, None)
    item.RetrieveURL = (
        f"{base}/studies/{uids['StudyInstanceUID']}/series/{uids['SeriesInstanceUID']}"
        f"/instances/{uids['SOPInstanceUID']}"
    )
    return True, item, None


def _item(uids: dict[str, str], failure: int | None) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = uids.get("SOPClassUID", "")
    item.ReferencedSOPInstanceUID = uids.get("SOPInstanceUID", "")
    if failure is not None:
        item.FailureReason = failure
    return item


def _remove(path: Path) -> None:
    with suppress(FileNotFoundError):
        path.unlink()


class _PartRefused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


async def _stow(request: Request, archive: Archive, study: str | None) -> JSONResponse:
    if study is not None:
        checked_uid(study, "StudyInstanceUID")
    limit = int(request.app.state.settings.http.stow_max_mb) * 1024 * 1024
    staging = archive.staging_dir()
    if staging is not None:
        staging.mkdir(parents=True, exist_ok=True)
    root_type, parts = await _spool(request, staging, limit)
    base = dicomweb_url(request)
    outcome = _Outcome()
    try:
        if root_type == DICOM_JSON:
            await _store_described(archive, parts, study, base, outcome)
        else:
            for part in parts:
                ok, item, reason = await run_in_threadpool(_store_part, archive, part, study, base)
                outcome.add(ok, item, reason)
    finally:
        for part in parts:
            _discard(part)
    return _response(outcome, study, base)


async def _store_described(
    archive: Archive, parts: list[_Part], study: str | None, base: str, outcome: _Outcome
) -> None:
    """A metadata and bulk data request: each data set of the application/dicom+json parts
    built with the bulk data parts it names; application/dicom parts stored as they are."""
    metadata: list[object] = []
    bulk: dict[str, BulkPart] = {}
    instances: list[_Part] = []
    for number, part in enumerate(parts, start=1):
        media = part.media
        if media.type in (DICOM_JSON, "application/json"):
            metadata += metadata_objects(part.path.read_bytes())
        elif media.type == DICOM:
            instances.append(part)
        elif not part.location:
            outcome.reasons.append(f"part {number} ({media.type}) has no Content-Location")
        elif part.location in bulk:
            raise MultipartError(f"two parts have the Content-Location {part.location[:200]!r}")
        else:
            syntax = media.params.get("transfer-syntax")
            bulk[part.location] = BulkPart(media.type, syntax, part.path)
    if not metadata and not instances:
        raise MultipartError("the body has no application/dicom+json part with data sets")
    used: set[str] = set()
    for data_set in metadata:
        ok, item, reason, uris = await run_in_threadpool(
            _store_metadata, archive, data_set, bulk, study, base
        )
        outcome.add(ok, item, reason)
        used |= uris
    for part in instances:
        outcome.add(*await run_in_threadpool(_store_part, archive, part, study, base))
    for location in bulk.keys() - used:
        outcome.reasons.append(f"no data set names the part at {location[:200]!r}")


def _response(outcome: _Outcome, study: str | None, base: str) -> JSONResponse:
    response = Dataset()
    if study is not None:
        response.RetrieveURL = f"{base}/studies/{study}"
    if outcome.stored:
        response.ReferencedSOPSequence = Sequence(outcome.stored)
    if outcome.failed:
        response.FailedSOPSequence = Sequence(outcome.failed)
    # PS3.18 10.5.3: 200 all stored, 202 some failed, 409 none stored.
    status = 409 if not outcome.stored else 202 if outcome.failed else 200
    log.info("STOW-RS stored=%d failed=%d", len(outcome.stored), len(outcome.failed))
    content: dict[str, Any] = response.to_json_dict()
    headers = {}
    if outcome.reasons:  # FailureReason is a code: the words go in a Warning header
        text = "; ".join(dict.fromkeys(outcome.reasons))[:1000]
        safe = text.encode("ascii", "replace").decode().replace('"', "'")
        headers["Warning"] = f'299 openpacs "{safe}"'
    return JSONResponse(content, status_code=status, media_type=DICOM_JSON, headers=headers)


@router.post("/studies", summary="STOW-RS: store instances")
@audited("store")
async def store_instances(request: Request, archive: ArchiveDep) -> JSONResponse:
    return await _stow(request, archive, None)


@router.post("/studies/{study}", summary="STOW-RS: store instances of one study")
@audited("store")
async def store_study_instances(request: Request, archive: ArchiveDep, study: str) -> JSONResponse:
    return await _stow(request, archive, study)
