"""WADO-RS rendered resources and thumbnails (PS3.18 10.4.1.1.3, 10.4.1.1.4).

An instance or one frame renders to one image; several frames, a series or a study to a
multipart/related body of images (an instance's first frame each). A thumbnail is one image:
the instance's first frame, the middle instance of a series, the middle instance of a study's
first series. Parameters: `window=center,width[,function]`, `viewport=width,height`,
`quality=1..100` and `accept=image/png` as an alternative to the Accept header.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from pydicom import dcmread

from openpacs.archive.records import StoredInstance
from openpacs.archive.service import Archive
from openpacs.dicom.frames import parse_frame_list
from openpacs.dicom.render import (
    MEDIA_TYPES,
    THUMBNAIL_VIEWPORT,
    MediaType,
    RenderOptions,
    parse_quality,
    parse_viewport,
    parse_window,
    render_frame,
)
from openpacs.errors import InvalidQuery
from openpacs.web.audit import audited
from openpacs.web.deps import ArchiveDep, require
from openpacs.web.dicomweb.common import cut_short_on_error, instances_of, render_cache
from openpacs.web.dicomweb.negotiation import choose_media_type, parse_accept
from openpacs.web.multipart import new_boundary, write_parts

router = APIRouter(dependencies=[require("read")])
_KNOWN = frozenset({"window", "viewport", "quality", "accept", "annotation", "charset"})


def _options(request: Request, *, thumbnail: bool = False) -> RenderOptions:
    params = request.query_params
    unknown = sorted(set(params) - _KNOWN)
    if unknown:
        raise InvalidQuery(f"unknown rendering parameter {unknown[0][:32]!r}")
    accept = params.get("accept") or request.headers.get("accept")
    media_type: MediaType = choose_media_type(parse_accept(accept), MEDIA_TYPES)  # type: ignore[assignment]
    viewport = parse_viewport(params.get("viewport"))
    return RenderOptions(
        media_type=media_type,
        window=parse_window(params.get("window")),
        viewport=viewport or (THUMBNAIL_VIEWPORT if thumbnail else None),
        quality=parse_quality(params.get("quality")),
    )


def rendered_bytes(
    request: Request, archive: Archive, stored: StoredInstance, frame: int, options: RenderOptions
) -> bytes:
    cache = render_cache(request)
    key = (stored.blob_key, frame, options)
    cached = cache.get(key)
    if cached is not None:
        return cached
    with archive.open_local(stored) as path, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = dcmread(path)
    data = render_frame(dataset, frame, options)
    cache.put(key, data)
    return data


def _image(data: bytes, options: RenderOptions) -> Response:
    return Response(data, media_type=options.media_type, headers={"Cache-Control": "private"})


def _images(
    request: Request,
    archive: Archive,
    items: Sequence[tuple[StoredInstance, int]],
    options: RenderOptions,
) -> StreamingResponse:
    boundary = new_boundary()

    def parts() -> Iterator[tuple[dict[str, str], Iterator[bytes]]]:
        for stored, frame in items:
            data = rendered_bytes(request, archive, stored, frame, options)
            yield {"Content-Type": options.media_type}, iter([data])

    return StreamingResponse(
        cut_short_on_error(write_parts(parts(), boundary)),
        media_type=f'multipart/related; type="{options.media_type}"; boundary={boundary}',
    )


@router.get("/studies/{study}/rendered", summary="WADO-RS: a study rendered")
@audited("view")
def study_rendered(request: Request, archive: ArchiveDep, study: str) -> StreamingResponse:
    options = _options(request)
    return _images(request, archive, [(s, 0) for s in instances_of(archive, study)], options)


@router.get("/studies/{study}/series/{series}/rendered", summary="WADO-RS: a series rendered")
@audited("view")
def series_rendered(
    request: Request, archive: ArchiveDep, study: str, series: str
) -> StreamingResponse:
    options = _options(request)
    found = instances_of(archive, study, series)
    return _images(request, archive, [(s, 0) for s in found], options)


@router.get(
    "/studies/{study}/series/{series}/instances/{instance}/rendered",
    summary="WADO-RS: an instance rendered (its first frame)",
)
@audited("view")
def instance_rendered(
    request: Request, archive: ArchiveDep, study: str, series: str, instance: str
) -> Response:
    options = _options(request)
    [stored] = instances_of(archive, study, series, instance)
    return _image(rendered_bytes(request, archive, stored, 0, options), options)


@router.get(
    "/studies/{study}/series/{series}/instances/{instance}/frames/{frames}/rendered",
    summary="WADO-RS: frames rendered",
)
@audited("view")
def frames_rendered(
    request: Request, archive: ArchiveDep, study: str, series: str, instance: str, frames: str
) -> Response:
    options = _options(request)
    indices = parse_frame_list(frames)
    [stored] = instances_of(archive, study, series, instance)
    if len(indices) == 1:
        return _image(rendered_bytes(request, archive, stored, indices[0], options), options)
    return _images(request, archive, [(stored, index) for index in indices], options)


def _middle(instances: Sequence[StoredInstance]) -> StoredInstance:
    first_series = [s for s in instances if s.series_uid == instances[0].series_uid]
    return first_series[len(first_series) // 2]


@router.get("/studies/{study}/thumbnail", summary="WADO-RS: a study's thumbnail")
@audited("view")
def study_thumbnail(request: Request, archive: ArchiveDep, study: str) -> Response:
    options = _options(request, thumbnail=True)
    stored = _middle(instances_of(archive, study))
    return _image(rendered_bytes(request, archive, stored, 0, options), options)


@router.get("/studies/{study}/series/{series}/thumbnail", summary="WADO-RS: a series' thumbnail")
@audited("view")
def series_thumbnail(request: Request, archive: ArchiveDep, study: str, series: str) -> Response:
    options = _options(request, thumbnail=True)
    stored = _middle(instances_of(archive, study, series))
    return _image(rendered_bytes(request, archive, stored, 0, options), options)


@router.get(
    "/studies/{study}/series/{series}/instances/{instance}/thumbnail",
    summary="WADO-RS: an instance's thumbnail",
)
@audited("view")
def instance_thumbnail(
    request: Request, archive: ArchiveDep, study: str, series: str, instance: str
) -> Response:
    options = _options(request, thumbnail=True)
    [stored] = instances_of(archive, study, series, instance)
    return _image(rendered_bytes(request, archive, stored, 0, options), options)
