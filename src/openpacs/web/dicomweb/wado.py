"""WADO-RS (PS3.18 10.4): instances, metadata, frames and bulk data.

Instances stream as multipart/related application/dicom: each in its stored transfer syntax
when the client accepts it (`transfer-syntax=*` accepts any), otherwise converted by the one
transcoding function C-GET and C-MOVE use; 406 before anything is sent when an instance can
be sent in none of the requested syntaxes.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydicom import dcmread

from openpacs.archive.records import StoredInstance
from openpacs.archive.service import Archive
from openpacs.dicom.frames import (
    check_frames,
    frame_media_type,
    native_frames,
    parse_frame_list,
    read_for_frames,
    stored_frames,
)
from openpacs.dicom.metadata import bulk_value, headers_query, instance_metadata, parse_bulk_path
from openpacs.dicom.transcode import choose_syntax, transcode
from openpacs.errors import NotFound
from openpacs.web.audit import audited
from openpacs.web.deps import ArchiveDep, require
from openpacs.web.dicomweb.common import (
    cut_short_on_error,
    dicomweb_url,
    instances_of,
)
from openpacs.web.dicomweb.negotiation import (
    ANY_SYNTAX,
    EXPLICIT_LITTLE,
    NotAcceptable,
    choose_media_type,
    frame_parts,
    multipart_syntaxes,
    parse_accept,
)
from openpacs.web.multipart import new_boundary, write_parts

DICOM_JSON = "application/dicom+json"
OCTET_STREAM = "application/octet-stream"
_CHUNK = 1 << 20

router = APIRouter(dependencies=[require("read")])


def _multipart(
    parts: Iterator[tuple[dict[str, str], Iterator[bytes]]], part_type: str
) -> StreamingResponse:
    boundary = new_boundary()
    return StreamingResponse(
        cut_short_on_error(write_parts(parts, boundary)),
        media_type=f'multipart/related; type="{part_type}"; boundary={boundary}',
    )


def _retrieve(
    request: Request,
    archive: Archive,
    study: str,
    series: str | None = None,
    instance: str | None = None,
) -> StreamingResponse:
    found = instances_of(archive, study, series, instance)
    syntaxes = multipart_syntaxes(parse_accept(request.headers.get("accept")), "application/dicom")
    if syntaxes is None:
        raise NotAcceptable('acceptable here: multipart/related; type="application/dicom"')
    plan = []
    for stored in found:
        target = (
            stored.transfer_syntax
            if ANY_SYNTAX in syntaxes
            else choose_syntax(stored.transfer_syntax, syntaxes)
        )
        if target is None:
            raise NotAcceptable(
                f"an instance is stored as {stored.transfer_syntax} and cannot be converted to "
                f"{', '.join(syntaxes)}"
            )
        plan.append((stored, target))
    parts = (
        (
            {"Content-Type": f"application/dicom; transfer-syntax={target}"},
            _instance_bytes(archive, stored, target),
        )
        for stored, target in plan
    )
    return _multipart(parts, "application/dicom")


def _instance_bytes(archive: Archive, stored: StoredInstance, target: str) -> Iterator[bytes]:
    """The stored file as it is (in chunks), or converted to `target`."""
    with archive.open_local(stored) as path:
        if target == stored.transfer_syntax:
            with path.open("rb") as file:
                while chunk := file.read(_CHUNK):
                    yield chunk
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dataset = transcode(dcmread(path), target)
            buffer = io.BytesIO()
            dataset.save_as(buffer, enforce_file_format=True)
    yield buffer.getvalue()


@router.get("/studies/{study}", summary="WADO-RS: retrieve a study")
@audited("download")
def retrieve_study(request: Request, archive: ArchiveDep, study: str) -> StreamingResponse:
    return _retrieve(request, archive, study)


@router.get("/studies/{study}/series/{series}", summary="WADO-RS: retrieve a series")
@audited("download")
def retrieve_series(
    request: Request, archive: ArchiveDep, study: str, series: str
) -> StreamingResponse:
    return _retrieve(request, archive, study, series)


@router.get(
    "/studies/{study}/series/{series}/instances/{instance}",
    summary="WADO-RS: retrieve an instance",
)
@audited("download")
def retrieve_instance(
    request: Request, archive: ArchiveDep, study: str, series: str, instance: str
) -> StreamingResponse:
    return _retrieve(request, archive, study, series, instance)


def _metadata(
    request: Request,
    archive: Archive,
    study: str,
    series: str | None = None,
    instance: str | None = None,
) -> JSONResponse:
    media_type = choose_media_type(
        parse_accept(request.headers.get("accept")), (DICOM_JSON, "application/json")
    )
    matches = archive.find(headers_query(study, series, instance))
    if not matches:
        raise NotFound("no such " + ("instance" if instance else "series" if series else "study"))
    base = dicomweb_url(request)
    content = [
        instance_metadata(
            m.header or {},
            instance_url=f"{base}/studies/{m.values['StudyInstanceUID']}/series/"
            f"{m.values['SeriesInstanceUID']}/instances/{m.values['SOPInstanceUID']}",
        )
        for m in matches
    ]
    return JSONResponse(content, media_type=media_type)


@router.get("/studies/{study}/metadata", summary="WADO-RS: a study's metadata")
@audited("view")
def study_metadata(request: Request, archive: ArchiveDep, study: str) -> JSONResponse:
    return _metadata(request, archive, study)


@router.get("/studies/{study}/series/{series}/metadata", summary="WADO-RS: a series' metadata")
@audited("view")
def series_metadata(request: Request, archive: ArchiveDep, study: str, series: str) -> JSONResponse:
    return _metadata(request, archive, study, series)


@router.get(
    "/studies/{study}/series/{series}/instances/{instance}/metadata",
    summary="WADO-RS: an instance's metadata",
)
@audited("view")
def instance_metadata_route(
    request: Request, archive: ArchiveDep, study: str, series: str, instance: str
) -> JSONResponse:
    return _metadata(request, archive, study, series, instance)


@router.get(
    "/studies/{study}/series/{series}/instances/{instance}/frames/{frames}",
    summary="WADO-RS: frames of an instance",
)
@audited("view")
def retrieve_frames(
    request: Request, archive: ArchiveDep, study: str, series: str, instance: str, frames: str
) -> StreamingResponse:
    indices = parse_frame_list(frames)
    [stored] = instances_of(archive, study, series, instance)
    stored_type = frame_media_type(stored.transfer_syntax)
    choices = frame_parts(parse_accept(request.headers.get("accept")), stored_type)
    chosen = next(
        (
            (part, syntax)
            for part, syntax in choices
            if syntax in (ANY_SYNTAX, EXPLICIT_LITTLE, stored.transfer_syntax)
        ),
        None,
    )
    if chosen is None:
        raise NotAcceptable(
            'acceptable here: multipart/related; type="application/octet-stream"'
            + (f' or type="{stored_type}"' if stored_type else "")
        )
    part_type, syntax = chosen
    native = part_type == OCTET_STREAM and (syntax == EXPLICIT_LITTLE or stored_type is None)
    with archive.open_local(stored) as path:
        ds = read_for_frames(path)
        check_frames(ds, indices)
        reader = native_frames if native else stored_frames
        data = list(reader(path, ds, indices))
    part_syntax = EXPLICIT_LITTLE if native else stored.transfer_syntax
    headers = {"Content-Type": f"{part_type}; transfer-syntax={part_syntax}"}
    return _multipart(((dict(headers), iter([frame])) for frame in data), part_type)


@router.get(
    "/studies/{study}/series/{series}/instances/{instance}/bulk/{path:path}",
    summary="WADO-RS: bulk data of an instance",
)
@audited("download")
def retrieve_bulk(
    request: Request, archive: ArchiveDep, study: str, series: str, instance: str, path: str
) -> StreamingResponse:
    steps = parse_bulk_path(path)
    syntaxes = multipart_syntaxes(parse_accept(request.headers.get("accept")), OCTET_STREAM)
    if syntaxes is None:
        raise NotAcceptable('acceptable here: multipart/related; type="application/octet-stream"')
    [stored] = instances_of(archive, study, series, instance)
    with archive.open_local(stored) as local, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = bulk_value(dcmread(local), steps)
    return _multipart(iter([({"Content-Type": OCTET_STREAM}, iter([value]))]), OCTET_STREAM)
