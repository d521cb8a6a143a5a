"""STOW-RS (PS3.18 10.5): store instances sent as multipart/related application/dicom.

The whole body is read first, each part spooled to a file in the store's staging folder, so
a malformed or truncated body is refused (4xx) before anything is stored. Each part is then
stored through `Archive.store_file`, the same validation and durability as a C-STORE, and the
response lists every stored instance (ReferencedSOPSequence) and every failure with its
reason (FailedSOPSequence, FailureReason: the DIMSE status C-STORE would have answered).
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
from openpacs.dicom.uids import checked_uid
from openpacs.errors import OpenPacsError
from openpacs.web.deps import ArchiveDep, require
from openpacs.web.dicomweb.common import dicomweb_url
from openpacs.web.multipart import (
    BodyTooLarge,
    MultipartError,
    MultipartReader,
    PartData,
    PartStart,
    UnsupportedMediaType,
    boundary_of,
    parse_media_type,
)

log = logging.getLogger(__name__)

DICOM_JSON = "application/dicom+json"
_PREFIX_BYTES = 132
_PROCESSING_FAILURE = 0x0110
_STUDY_MISMATCH = 0xA900
_UNSUPPORTED_PART = 0xC000  # not application/dicom: cannot understand

router = APIRouter(dependencies=[require("store")])


@dataclass
class _Part:
    content_type: str
    path: Path
    file: BinaryIO
    head: bytearray | None = field(default_factory=bytearray)
    """The first bytes, held until it is known whether the preamble is missing."""

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


async def _spool(request: Request, staging: Path | None, limit: int) -> list[_Part]:
    """Read the body into one staging file per part; raise before anything is stored."""
    content_type = request.headers.get("content-type")
    boundary = boundary_of(content_type)
    root_type = parse_media_type(content_type or "").params.get("type", "application/dicom")
    if root_type.lower() != "application/dicom":
        raise UnsupportedMediaType(
            f"multipart type {root_type!r} is not supported: send application/dicom parts"
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
                    part = _Part(event.content_type, Path(name), os.fdopen(descriptor, "wb"))
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
    return parts


def _discard(part: _Part) -> None:
    part.file.close()
    with suppress(FileNotFoundError):
        part.path.unlink()


def _identifiers(path: Path) -> dict[str, str]:
    """The instance's UIDs for the response, read without the pixel data (best effort)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = dcmread(
                path,
                stop_before_pixels=True,
                specific_tags=[
                    "SOPClassUID",
                    "SOPInstanceUID",
                    "StudyInstanceUID",
                    "SeriesInstanceUID",
                ],
            )
        return {
            k: str(ds.get(k, "") or "")
            for k in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
        }
    except Exception:
        return {}


def _store_part(
    archive: Archive, part: _Part, study: str | None, base: str
) -> tuple[bool, Dataset, str | None]:
    """Store one part: (stored?, its response item, the reason it was refused)."""
    uids = _identifiers(part.path)
    item = Dataset()
    item.ReferencedSOPClassUID = uids.get("SOPClassUID", "")
    item.ReferencedSOPInstanceUID = uids.get("SOPInstanceUID", "")
    media = parse_media_type(part.content_type).type
    try:
        if media != "application/dicom":
            raise _PartRefused(_UNSUPPORTED_PART, f"part type {media!r} is not application/dicom")
        if study is not None and uids.get("StudyInstanceUID") != study:
            raise _PartRefused(_STUDY_MISMATCH, "the instance is not in the study of the URL")
        archive.store_file(part.path, consume=True)
    except _PartRefused as exc:
        log.warning("STOW-RS part refused reason=%s", exc.reason)
        item.FailureReason = exc.status
        return False, item, exc.reason
    except OpenPacsError as exc:
        log.warning("STOW-RS part refused reason=%s", exc.reason)
        item.FailureReason = exc.dimse_status if exc.dimse_status else _PROCESSING_FAILURE
        return False, item, exc.reason
    except Exception:
        log.exception("STOW-RS part failed unexpectedly")
        item.FailureReason = _PROCESSING_FAILURE
        return False, item, "internal error"
    finally:
        _discard(part)
    item.RetrieveURL = (
        f"{base}/studies/{uids['StudyInstanceUID']}/series/{uids['SeriesInstanceUID']}"
        f"/instances/{uids['SOPInstanceUID']}"
    )
    return True, item, None


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
    parts = await _spool(request, staging, limit)
    base = dicomweb_url(request)
    outcome = _Outcome()
    try:
        for part in parts:
            ok, item, reason = await run_in_threadpool(_store_part, archive, part, study, base)
            (outcome.stored if ok else outcome.failed).append(item)
            if reason:
                outcome.reasons.append(reason)
    finally:
        for part in parts:
            _discard(part)
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
        text = "; ".join(dict.fromkeys(outcome.reasons))[:500]
        safe = text.encode("ascii", "replace").decode().replace('"', "'")
        headers["Warning"] = f'299 openpacs "{safe}"'
    return JSONResponse(content, status_code=status, media_type=DICOM_JSON, headers=headers)


@router.post("/studies", summary="STOW-RS: store instances")
async def store_instances(request: Request, archive: ArchiveDep) -> JSONResponse:
    return await _stow(request, archive, None)


@router.post("/studies/{study}", summary="STOW-RS: store instances of one study")
async def store_study_instances(request: Request, archive: ArchiveDep, study: str) -> JSONResponse:
    return await _stow(request, archive, study)
