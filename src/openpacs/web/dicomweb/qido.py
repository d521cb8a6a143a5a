"""QIDO-RS (PS3.18 10.6): the six search resources, answered as application/dicom+json."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from openpacs.dicom.qido import MAX_RESULTS, Resource, qido_query, qido_result
from openpacs.web.audit import audited
from openpacs.web.deps import ArchiveDep, require
from openpacs.web.dicomweb.common import dicomweb_url
from openpacs.web.dicomweb.negotiation import choose_media_type, parse_accept

DICOM_JSON = "application/dicom+json"
_TOO_MANY = (
    '299 openpacs "The number of results exceeded the maximum supported by the server. '
    'Additional results can be requested."'
)

router = APIRouter(dependencies=[require("read")])


def _search(
    request: Request,
    archive: ArchiveDep,
    resource: Resource,
    study: str | None = None,
    series: str | None = None,
) -> JSONResponse:
    media_type = choose_media_type(
        parse_accept(request.headers.get("accept")), (DICOM_JSON, "application/json")
    )
    qido = qido_query(
        resource,
        list(request.query_params.multi_items()),
        study_uid=study,
        series_uid=series,
    )
    matches = archive.find(qido.query)
    headers = {}
    if len(matches) > MAX_RESULTS:
        matches = matches[:MAX_RESULTS]
        headers["Warning"] = _TOO_MANY
    base = dicomweb_url(request)
    content: list[dict[str, Any]] = [qido_result(qido, m, base_url=base) for m in matches]
    return JSONResponse(content, media_type=media_type, headers=headers)


@router.get("/studies", summary="QIDO-RS: search for studies")
@audited("query")
def search_studies(request: Request, archive: ArchiveDep) -> JSONResponse:
    return _search(request, archive, Resource.STUDIES)


@router.get("/studies/{study}/series", summary="QIDO-RS: search for a study's series")
@audited("query")
def search_study_series(request: Request, archive: ArchiveDep, study: str) -> JSONResponse:
    return _search(request, archive, Resource.STUDY_SERIES, study)


@router.get("/series", summary="QIDO-RS: search for series")
@audited("query")
def search_series(request: Request, archive: ArchiveDep) -> JSONResponse:
    return _search(request, archive, Resource.SERIES)


@router.get("/studies/{study}/instances", summary="QIDO-RS: search for a study's instances")
@audited("query")
def search_study_instances(request: Request, archive: ArchiveDep, study: str) -> JSONResponse:
    return _search(request, archive, Resource.STUDY_INSTANCES, study)


@router.get(
    "/studies/{study}/series/{series}/instances",
    summary="QIDO-RS: search for a series' instances",
)
@audited("query")
def search_series_instances(
    request: Request, archive: ArchiveDep, study: str, series: str
) -> JSONResponse:
    return _search(request, archive, Resource.STUDY_SERIES_INSTANCES, study, series)


@router.get("/instances", summary="QIDO-RS: search for instances")
@audited("query")
def search_instances(request: Request, archive: ArchiveDep) -> JSONResponse:
    return _search(request, archive, Resource.INSTANCES)
