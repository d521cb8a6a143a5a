"""Imports started from the web (admins): a server folder below `[archive] import_folders`,
an s3:// prefix, or a ZIP archive uploaded in the request body; each runs as a job whose
progress `/api/jobs/{id}` shows, through the same store path as C-STORE."""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from openpacs.errors import InvalidQuery, NotFound, PermissionDenied
from openpacs.web.audit import audited
from openpacs.web.deps import ArchiveDep, SettingsDep, require
from openpacs.web.multipart import BodyTooLarge
from openpacs.web.rest.remotes import job_view

router = APIRouter(prefix="/api", tags=["import"])


class ImportRequest(BaseModel):
    source: str = Field(
        min_length=1,
        max_length=4096,
        description="An absolute folder or file path below one of `[archive] import_folders`,"
        " or s3://bucket/prefix.",
    )


def checked_source(source: str, import_folders: tuple[str, ...]) -> str:
    """The source if an admin may import it from the web: s3:// prefixes, and paths that
    resolve (links followed) below an import folder."""
    if source.startswith("s3://"):
        if not source.removeprefix("s3://").split("/", 1)[0]:
            raise InvalidQuery("an s3:// source names a bucket: s3://bucket/prefix")
        return source
    if not source.startswith("/") or "\x00" in source:
        raise InvalidQuery("give an absolute server path or s3://bucket/prefix")
    real = Path(os.path.realpath(source))
    allowed = [Path(os.path.realpath(folder)) for folder in import_folders]
    if not any(real == root or real.is_relative_to(root) for root in allowed):
        raise PermissionDenied(
            "the path is not below a folder of [archive] import_folders"
            if allowed
            else "no server folder may be imported from the web ([archive] import_folders)"
        )
    if not real.exists():
        raise NotFound(f"no file or folder {source}")
    return str(real)


@router.post("/import", status_code=202)
@audited("store")
def start_import(
    archive: ArchiveDep,
    settings: SettingsDep,
    request: ImportRequest,
    user: Annotated[Any, require("admin")],
) -> dict[str, Any]:
    """Import a server folder or file, or an s3:// prefix, as a job (see /api/jobs/{id})."""
    source = checked_source(request.source.strip(), settings.archive.import_folders)
    return job_view(archive.jobs.import_files(source, user.name))


@router.post("/import/zip", status_code=202)
@audited("store")
async def upload_zip(
    archive: ArchiveDep,
    settings: SettingsDep,
    request: Request,
    user: Annotated[Any, require("admin")],
    name: Annotated[str, Query(max_length=255)] = "upload.zip",
) -> dict[str, Any]:
    """Import the ZIP archive sent as the request body, as a job; at most
    `[http] stow_max_mb`."""
    runner = archive.jobs
    limit = settings.http.stow_max_mb * 1024 * 1024
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"the body is larger than {limit} bytes")
    descriptor, spooled = tempfile.mkstemp(suffix=".zip", dir=archive.staging_dir())
    path = Path(spooled)
    try:
        size = 0
        with os.fdopen(descriptor, "wb") as file:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge(f"the body is larger than {limit} bytes")
                file.write(chunk)
        if not zipfile.is_zipfile(path):
            raise InvalidQuery("the body is not a ZIP archive")
        job = runner.import_files(str(path), user.name, upload_name=name)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return job_view(job)
