"""Known remote AEs (configured and kept in the database), C-ECHO, and jobs that send a study
or series to a remote (C-STORE) or move a study from a remote into openpacs (C-MOVE)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from openpacs.archive.records import Job, RemoteNode
from openpacs.dicom.uids import MAX_UID_LENGTH, UID_PATTERN
from openpacs.web.audit import audited
from openpacs.web.deps import ArchiveDep, CurrentUser, require

router = APIRouter(prefix="/api", tags=["remotes"])
ADMIN = [require("admin")]
AE_PATTERN = r"^[ -\[\]-~]{1,16}$"  # PS3.5 AE: printable ASCII, no backslash
Aet = Annotated[str, Path(min_length=1, max_length=16, pattern=AE_PATTERN)]


class RemoteIn(BaseModel):
    host: str = Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9.:\-\[\]]+$")
    port: int = Field(ge=1, le=65535)
    tls: bool = False


class NewRemote(RemoteIn):
    aet: str = Field(min_length=1, max_length=16, pattern=AE_PATTERN)


class StoreRequest(BaseModel):
    level: Literal["study", "series"]
    uid: str = Field(max_length=MAX_UID_LENGTH, pattern=UID_PATTERN)


class MoveRequest(BaseModel):
    uid: str = Field(
        max_length=MAX_UID_LENGTH, pattern=UID_PATTERN, description="Study Instance UID."
    )


def _remote(node: RemoteNode) -> dict[str, Any]:
    return asdict(node)


def job_view(job: Job, servers: dict[str, str] | None = None) -> dict[str, Any]:
    """A job as the API shows it; `server` is the `host:pid` of the server holding it (None
    while none does), `note` what happened to it besides its progress (a takeover)."""
    server = None
    if job.owner is not None:
        server = (servers or {}).get(job.owner, job.owner)
    return {
        "id": job.job_id,
        "kind": job.kind,
        "state": job.state,
        "params": job.params,
        "progress": {"done": job.done, "total": job.total, "failed": job.failed},
        "error": job.error or None,
        "created_by": job.created_by,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "server": server,
        "takeovers": job.takeovers,
        "note": job.note or None,
    }


@router.get("/remotes", dependencies=[require("read")])
@audited(None)
def list_remotes(archive: ArchiveDep) -> list[dict[str, Any]]:
    """Configured remotes (`source: "config"`, read-only) and those kept in the database."""
    return [_remote(r) for r in archive.remotes.list()]


@router.post("/remotes", dependencies=ADMIN, status_code=201)
@audited("admin")
def add_remote(archive: ArchiveDep, remote: NewRemote) -> dict[str, Any]:
    """Add a remote AE (kept in the database, known to every server at once)."""
    node = RemoteNode(remote.aet.strip(), remote.host, remote.port, remote.tls)
    archive.remotes.add(node)
    return _remote(node)


@router.put("/remotes/{aet}", dependencies=ADMIN)
@audited("admin")
def change_remote(archive: ArchiveDep, aet: Aet, remote: RemoteIn) -> dict[str, Any]:
    """Change a remote's address (not one from the configuration file: 403)."""
    node = RemoteNode(aet.strip(), remote.host, remote.port, remote.tls)
    archive.remotes.update(node)
    return _remote(node)


@router.delete("/remotes/{aet}", dependencies=ADMIN, status_code=204)
@audited("admin")
def remove_remote(archive: ArchiveDep, aet: Aet) -> None:
    """Remove a remote kept in the database."""
    archive.remotes.remove(aet.strip())


@router.post("/remotes/{aet}/echo", dependencies=[require("read")])
@audited("admin")
def echo_remote(archive: ArchiveDep, aet: Aet) -> dict[str, Any]:
    """C-ECHO the remote: `{"status": 0}` when it answers Success; 502 when unreachable."""
    remote = archive.remotes.require(aet.strip())
    status = archive.dicom.echo(remote)
    return {"aet": remote.aet, "status": status, "success": status == 0}


@router.post("/remotes/{aet}/store", status_code=202)
@audited("send")
def send_to_remote(
    archive: ArchiveDep,
    aet: Aet,
    request: StoreRequest,
    user: Annotated[Any, require("admin")],
) -> dict[str, Any]:
    """Send a study or series to the remote with C-STORE, as a job (see /api/jobs/{id})."""
    remote = archive.remotes.require(aet.strip())
    return job_view(archive.jobs.send(remote, request.level, request.uid, user.name))


@router.post("/remotes/{aet}/move", status_code=202)
@audited("move")
def move_from_remote(
    archive: ArchiveDep,
    aet: Aet,
    request: MoveRequest,
    user: Annotated[Any, require("admin")],
) -> dict[str, Any]:
    """Ask the remote to C-MOVE a study to openpacs, as a job; the remote must know our AE
    title and address."""
    remote = archive.remotes.require(aet.strip())
    return job_view(archive.jobs.move(remote, request.uid, user.name))


@router.get("/jobs", dependencies=ADMIN)
@audited(None)
def list_jobs(
    archive: ArchiveDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    """Every job, newest first: `{"total": N, "items": [...]}`."""
    jobs = archive.jobs
    total, found = jobs.recent(limit=limit, offset=offset)
    servers = jobs.server_labels()
    return {"total": total, "items": [job_view(job, servers) for job in found]}


@router.get("/jobs/{job_id}")
@audited(None)
def job(
    archive: ArchiveDep,
    job_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")],
    user: CurrentUser,
) -> dict[str, Any]:
    """A job's state and progress, which server holds it, and what happened to it."""
    jobs = archive.jobs
    return job_view(jobs.get(job_id), jobs.server_labels())
