"""Patients, studies, series and instances: search with paging and sort, one resource with
its children, Part 10 download, streamed ZIP of a study or series, delete, statistics."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from openpacs.archive.records import MAX_CURSOR_LENGTH, TEXT_COUNT_LIMIT
from openpacs.archive.service import Archive
from openpacs.dicom.levels import Level
from openpacs.dicom.uids import MAX_UID_LENGTH, UID_PATTERN
from openpacs.dicom.unique_keys import unique_condition
from openpacs.errors import NotFound
from openpacs.web.audit import audited
from openpacs.web.deps import ArchiveDep, require
from openpacs.web.rest.search import MAX_LIMIT, conditions, sort_key
from openpacs.web.rest.zipstream import zip_stream

router = APIRouter(prefix="/api", tags=["resources"])
READ = [require("read")]
DELETE = [require("delete")]
ADMIN = [require("admin")]

Uid = Annotated[
    str, Path(max_length=MAX_UID_LENGTH, pattern=UID_PATTERN, description="A DICOM UID.")
]
PatientId = Annotated[str, Path(min_length=1, max_length=64, description="The Patient ID.")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
Sort = Annotated[
    str | None,
    Query(
        max_length=40,
        pattern=r"^[+-]?[A-Za-z]+$",
        description="An indexed keyword, e.g. StudyDate; a leading - sorts descending.",
    ),
]
PageCursor = Annotated[
    str | None,
    Query(
        max_length=MAX_CURSOR_LENGTH,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The `next` or `previous` of a page of the same search and sort.",
    ),
]
FreeText = Annotated[
    str | None,
    Query(
        max_length=512,
        description="Free text: every word begins a word of some value in the stored headers "
        "(names, descriptions, protocol, institution, ...), e.g. `q=doe chest`.",
    ),
]
_CHUNK = 1024 * 1024
_CHILDREN = 100_000
_LEVELS = {
    "patients": Level.PATIENT,
    "studies": Level.STUDY,
    "series": Level.SERIES,
    "instances": Level.IMAGE,
}
_CHILD_SORT = {
    Level.PATIENT: "StudyDate",
    Level.STUDY: "SeriesNumber",
    Level.SERIES: "InstanceNumber",
}


def _search(
    archive: Archive,
    level: Level,
    request: Request,
    limit: int,
    offset: int,
    sort: str | None,
    cursor: str | None,
    text: str | None = None,
) -> dict[str, Any]:
    key, descending = sort_key(sort)
    page = archive.page(
        level,
        conditions(level, request.query_params),
        sort=key,
        descending=descending,
        limit=limit,
        offset=offset,
        cursor=cursor,
        label=request.query_params.get("label") or None,
        text=text,
    )
    return {
        "total": page.total,
        "offset": page.offset,
        "next": page.next,
        "previous": page.previous,
        "last": page.last,
        "more": page.more,
        "items": page.items,
    }


def _one(archive: Archive, level: Level, uid: str) -> dict[str, Any]:
    page = archive.page(level, [unique_condition(level, uid)], limit=1)
    if not page.items:
        raise NotFound(f"no {level.value.lower()} {uid}")
    item = page.items[0]
    child = {Level.PATIENT: Level.STUDY, Level.STUDY: Level.SERIES, Level.SERIES: Level.IMAGE}
    if level in child:
        below = archive.page(
            child[level], [unique_condition(level, uid)], sort=_CHILD_SORT[level], limit=_CHILDREN
        )
        name = {Level.STUDY: "studies", Level.SERIES: "series", Level.IMAGE: "instances"}
        item[name[child[level]]] = below.items
    if level is Level.STUDY:
        item["labels"] = archive.labels(uid)
    return item


def _search_route(path: str, level: Level) -> None:
    def search(
        archive: ArchiveDep,
        request: Request,
        limit: Limit = 100,
        offset: Offset = 0,
        sort: Sort = None,
        cursor: PageCursor = None,
        q: FreeText = None,
    ) -> dict[str, Any]:
        return _search(archive, level, request, limit, offset, sort, cursor, q)

    search.__doc__ = (
        f"Search {path}: indexed DICOM keywords as parameters (e.g. PatientName=DOE*, "
        "StudyDate=20200101-20201231, ModalitiesInStudy=CT), C-FIND value syntax; "
        '`{"total": N, "offset": first item\'s position, "next", "previous", "last": cursors, '
        '"more": whether more than N match, "items": [...]}`. Page on with `cursor=` a cursor '
        "of the last answer (same search and sort): a cursor seeks, where a deep offset counts "
        f"every row before it. A free-text search (`q`) counts up to {TEXT_COUNT_LIMIT:,} "
        "matches: beyond, `total` is that many and `more` is true."
    )
    router.add_api_route(
        f"/{path}", audited("query")(search), methods=["GET"], dependencies=READ, name=path
    )


for _path, _level in _LEVELS.items():
    _search_route(_path, _level)


Label = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$",
        description="A label: letters, digits, space, dot, underscore and hyphen.",
    ),
]


@router.get("/studies/{uid}/labels", dependencies=READ)
@audited("query")
def study_labels(archive: ArchiveDep, uid: Uid) -> dict[str, list[str]]:
    """The study's labels (`GET /api/studies?label=...` finds studies by label)."""
    return {"labels": archive.labels(uid)}


@router.put("/studies/{uid}/labels/{label}", dependencies=ADMIN)
@audited("admin")
def add_study_label(archive: ArchiveDep, uid: Uid, label: Label) -> dict[str, list[str]]:
    """Label a study (admins: labels decide what restricted users see)."""
    return {"labels": archive.set_label(uid, label, True)}


@router.delete("/studies/{uid}/labels/{label}", dependencies=ADMIN)
@audited("admin")
def remove_study_label(archive: ArchiveDep, uid: Uid, label: Label) -> dict[str, list[str]]:
    """Remove a label from a study."""
    return {"labels": archive.set_label(uid, label, False)}


@router.get("/patients/{patient_id}", dependencies=READ)
@audited("view")
def patient(archive: ArchiveDep, patient_id: PatientId) -> dict[str, Any]:
    """A patient's indexed attributes and studies."""
    return _one(archive, Level.PATIENT, patient_id)


@router.get("/studies/{uid}", dependencies=READ)
@audited("view")
def study(archive: ArchiveDep, uid: Uid) -> dict[str, Any]:
    """A study's main attributes and its series."""
    return _one(archive, Level.STUDY, uid)


@router.get("/series/{uid}", dependencies=READ)
@audited("view")
def series(archive: ArchiveDep, uid: Uid) -> dict[str, Any]:
    """A series' main attributes and its instances."""
    return _one(archive, Level.SERIES, uid)


@router.get("/instances/{uid}", dependencies=READ)
@audited("view")
def instance(archive: ArchiveDep, uid: Uid) -> dict[str, Any]:
    """An instance's indexed attributes."""
    return _one(archive, Level.IMAGE, uid)


def _blob_chunks(archive: Archive, key: str) -> Iterator[bytes]:
    with archive.store.open(key) as source:
        while chunk := source.read(_CHUNK):
            yield chunk


@router.get(
    "/instances/{uid}/file",
    dependencies=READ,
    response_class=Response,
    responses={200: {"content": {"application/dicom": {}}}},
)
@audited("download")
def instance_file(archive: ArchiveDep, uid: Uid) -> StreamingResponse:
    """The instance as stored (DICOM Part 10), streamed from the blob store."""
    stored = archive.instance(uid)
    if stored is None:
        raise NotFound(f"no instance {uid}")
    return StreamingResponse(
        _blob_chunks(archive, stored.blob_key),
        media_type="application/dicom",
        headers={
            "Content-Length": str(stored.blob_size),
            "Content-Disposition": f'attachment; filename="{uid}.dcm"',
        },
    )


def _archive_response(archive: Archive, level: Level, uid: str) -> StreamingResponse:
    instances = archive.instances_for_uid(level, uid)
    if not instances:
        raise NotFound(f"no {level.value.lower()} {uid}")
    entries = (
        (f"{i.study_uid}/{i.series_uid}/{i.sop_uid}.dcm", archive.store.open(i.blob_key))
        for i in instances
    )
    return StreamingResponse(
        zip_stream(entries),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{uid}.zip"'},
    )


_ZIP = {"response_class": Response, "responses": {200: {"content": {"application/zip": {}}}}}


@router.get("/studies/{uid}/archive", dependencies=READ, **_ZIP)  # type: ignore[arg-type]
@audited("download")
def study_archive(archive: ArchiveDep, uid: Uid) -> StreamingResponse:
    """Every instance of the study in a ZIP (streamed: study/series/instance.dcm)."""
    return _archive_response(archive, Level.STUDY, uid)


@router.get("/series/{uid}/archive", dependencies=READ, **_ZIP)  # type: ignore[arg-type]
@audited("download")
def series_archive(archive: ArchiveDep, uid: Uid) -> StreamingResponse:
    """Every instance of the series in a ZIP (streamed)."""
    return _archive_response(archive, Level.SERIES, uid)


def _delete(archive: Archive, level: Level, uid: str) -> dict[str, int]:
    deleted = archive.delete(level, uid)
    if not deleted:
        raise NotFound(f"no {level.value.lower()} {uid}")
    return {"deleted_instances": deleted}


@router.delete("/patients/{patient_id}", dependencies=DELETE)
@audited("delete")
def delete_patient(archive: ArchiveDep, patient_id: PatientId) -> dict[str, int]:
    """Delete a patient and everything below."""
    return _delete(archive, Level.PATIENT, patient_id)


@router.delete("/studies/{uid}", dependencies=DELETE)
@audited("delete")
def delete_study(archive: ArchiveDep, uid: Uid) -> dict[str, int]:
    """Delete a study."""
    return _delete(archive, Level.STUDY, uid)


@router.delete("/series/{uid}", dependencies=DELETE)
@audited("delete")
def delete_series(archive: ArchiveDep, uid: Uid) -> dict[str, int]:
    """Delete a series."""
    return _delete(archive, Level.SERIES, uid)


@router.delete("/instances/{uid}", dependencies=DELETE)
@audited("delete")
def delete_instance(archive: ArchiveDep, uid: Uid) -> dict[str, int]:
    """Delete an instance."""
    return _delete(archive, Level.IMAGE, uid)


@router.get("/statistics", dependencies=READ)
@audited(None)
def statistics(archive: ArchiveDep) -> dict[str, int]:
    """Counts per level and the bytes stored."""
    totals = archive.totals()
    return {
        "patients": totals.patients,
        "studies": totals.studies,
        "series": totals.series,
        "instances": totals.instances,
        "bytes": totals.bytes,
    }
