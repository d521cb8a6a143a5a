"""Jobs: send a study or series to a remote (C-STORE), move a study from a remote into
openpacs (C-MOVE). The job row and its progress live in the database; the work runs on a
background thread of the server that holds the job (its owner).

A job outlives its server. A send records the SOP Instance UIDs it will send (its plan) and
its progress after each instance; when its server stops, another live server takes it over
(`reap`, on start-up and on every beat of its presence) and resumes it after the last
instance it knows was answered, so at most the instance in flight is sent twice. A move is
asked for again (the remote sends the study again; what is already stored is kept once, by
the duplicates policy). A job that cannot be resumed (its remote is gone, it has no plan, or
its servers stopped too often while it ran) fails with that reason. A server that stops
cleanly hands its unfinished jobs back at once, so another server need not wait for its lease
to run out.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

from openpacs.archive.audit import AuditTrail
from openpacs.archive.importing import ImportResult
from openpacs.archive.ports import DicomClient, FoundFile, ImportSources, Index, JobStore
from openpacs.archive.presence import Presence
from openpacs.archive.records import (
    AuditEvent,
    Job,
    JobState,
    RemoteNode,
    Server,
    StoredInstance,
)
from openpacs.archive.remotes import Remotes
from openpacs.dicom.levels import Level
from openpacs.dicom.query import Query
from openpacs.dicom.unique_keys import unique_condition
from openpacs.errors import NotFound, OpenPacsError

log = logging.getLogger("openpacs.jobs")

Importer = Callable[[ImportSources, Sequence[FoundFile]], list[ImportResult]]
"""Fetches and imports a batch of found files: `archive.importing.fetch_and_import`."""
_PROGRESS_SECONDS = 1.0
_IMPORT_BATCH = 16  # files stored together: one index commit, one folder fsync

_WORKERS = 2
MAX_TAKEOVERS = 3
"""A job whose servers stopped this many times while it ran is not resumed again: it may be
what stops them."""


class JobLost(Exception):
    """This server no longer holds the job (another took it over, or this one is stopping)."""


class JobRunner:
    def __init__(
        self,
        store: JobStore,
        index: Index,
        client: DicomClient,
        audit: AuditTrail,
        presence: Presence,
        remotes: Remotes,
        imports: tuple[ImportSources, Importer] | None = None,
    ) -> None:
        self._store = store
        self._imports = imports
        self._index = index
        self._client = client
        self._audit = audit
        self._presence = presence
        self._remotes = remotes
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    @property
    def _owner(self) -> str:
        return self._presence.server_id

    def get(self, job_id: str) -> Job:
        job = self._store.get(job_id)
        if job is None:
            raise NotFound(f"no job {job_id!r}")
        return job

    def recent(self, *, limit: int, offset: int) -> tuple[int, list[Job]]:
        return self._store.recent(limit=limit, offset=offset)

    def server_labels(self) -> dict[str, str]:
        """`host:pid` of every server in the servers table, by id (for the jobs view)."""
        return {server.server_id: server.label for server in self._presence.servers()}

    def send(
        self, remote: RemoteNode, level: Literal["study", "series"], uid: str, user: str
    ) -> Job:
        """Queue a C-STORE of every instance of a study or series to `remote`."""
        instances = self._index.instances_for(_query(level, uid))
        if not instances:
            raise NotFound(f"no {level} {uid}")
        params = {"remote": remote.aet, "level": level, "uid": uid}
        plan = [instance.sop_uid for instance in instances]
        job = self._store.create("store", params, user, owner=self._owner, plan=plan)
        self._submit(job, remote)
        return job

    def move(self, remote: RemoteNode, study_uid: str, user: str) -> Job:
        """Queue a C-MOVE of a study from `remote` to openpacs."""
        params = {"remote": remote.aet, "uid": study_uid}
        job = self._store.create("move", params, user, owner=self._owner)
        self._submit(job, remote)
        return job

    def import_files(self, source: str, user: str, *, upload_name: str | None = None) -> Job:
        """Queue an import of a folder, file, ZIP archive or s3:// prefix the caller may
        read (the REST API checks which). With `upload_name` the source is an uploaded file
        of this server, deleted once imported."""
        if self._imports is None:
            raise NotFound("this server cannot run imports")
        params: dict[str, object] = {"source": source, "name": upload_name or source}
        if upload_name is not None:
            params["upload"] = True
        job = self._store.create("import", params, user, owner=self._owner)
        self._submit(job, None)
        return job

    def reap(self) -> None:
        """Take over every pending or running job no live server holds: resume it, or fail
        it with the reason it cannot be resumed. Several servers may reap at once; each job
        goes to exactly one (`claim` compares and sets its owner)."""
        if self._stopping.is_set():
            return
        for job, last_server in self._store.orphans(time.time()):
            note = _takeover_note(job, last_server, self._presence.label)
            if not self._store.claim(job, self._owner, note):
                continue  # another server was quicker
            claimed = self._store.get(job.job_id)
            if claimed is None:
                continue
            log.info("job=%s taken over from=%s", job.job_id, job.owner or "-")
            remote = self._remotes.get(str(claimed.params.get("remote", "")))
            reason = _not_resumable(claimed, remote)
            if reason is not None or (remote is None and claimed.kind != "import"):
                self._finish(claimed, "failure", reason or "its remote is unknown")
                continue
            self._submit(claimed, remote)

    def close(self) -> None:
        """Stop: running jobs stop after the instance in flight, and every unfinished job of
        this server is handed back for the next live server."""
        self._stopping.set()
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        try:
            released = self._store.release(
                self._owner, f"handed back when server {self._presence.label} stopped"
            )
        except OpenPacsError as exc:  # its lease runs out; another server takes them then
            log.warning("could not hand back jobs reason=%s", exc.reason)
            return
        if released:
            log.info("handed back unfinished jobs count=%d", released)

    # -- running a job -----------------------------------------------------------------------

    def _submit(self, job: Job, remote: RemoteNode | None) -> None:
        with self._lock:
            if self._stopping.is_set():
                return  # the job stays with this server until close() hands it back
            if self._pool is None:
                self._pool = ThreadPoolExecutor(_WORKERS, thread_name_prefix="job")
            self._pool.submit(self._execute, job, remote)

    def _execute(self, job: Job, remote: RemoteNode | None) -> None:
        if self._stopping.is_set() or not self._update(job, "running"):
            return
        try:
            if job.kind == "import":
                self._run_import(job)
            elif remote is None:
                raise OpenPacsError("its remote is unknown")
            elif job.kind == "store":
                self._run_send(job, remote)
            else:
                self._run_move(job, remote)
        except JobLost:
            log.info("job=%s no longer held by this server", job.job_id)
            return
        except OpenPacsError as exc:
            self._finish(job, "failure", exc.reason)
            return
        except Exception as exc:
            log.exception("job %s failed", job.job_id)
            self._finish(job, "failure", f"internal error: {type(exc).__name__}")
            return
        self._finish(job, "success", "")

    def _run_send(self, job: Job, remote: RemoteNode) -> None:
        start = job.done + job.failed
        wanted = job.plan[start:]
        stored = {
            i.sop_uid: i
            for i in self._index.instances_for(_query(job.params["level"], job.params["uid"]))
        }
        todo: list[StoredInstance] = [stored[uid] for uid in wanted if uid in stored]
        gone = len(wanted) - len(todo)  # deleted since the job was made: not sent
        done, failed = job.done, job.failed + gone
        if todo:
            _sent, not_sent = self._client.send(
                remote,
                todo,
                lambda d, f: self._progress(job, done=job.done + d, failed=failed + f),
            )
            done, failed = done + _sent, failed + not_sent
        self._progress(job, done=done, failed=failed)
        if failed:
            deleted = f" ({gone} deleted meanwhile)" if gone else ""
            raise OpenPacsError(f"{failed} of {len(job.plan)} instances were not stored{deleted}")

    def _run_move(self, job: Job, remote: RemoteNode) -> None:
        done, failed = self._client.move(
            remote,
            job.params["uid"],
            lambda d, t, f: self._progress(job, done=d, total=t, failed=f),
        )
        self._progress(job, done=done, total=done + failed, failed=failed)
        if failed:
            raise OpenPacsError(f"{failed} instances were not moved")

    def _run_import(self, job: Job) -> None:
        """Every file of the source through the C-STORE path; done counts stored, already
        stored, duplicate and skipped files, failed the refused and unstorable ones. Run
        again after a takeover, it skips what is stored."""
        if self._imports is None:
            raise OpenPacsError("this server cannot run imports")
        sources, importer = self._imports
        try:
            items = sources.found(str(job.params["source"]))
            self._progress(job, done=0, failed=0, total=len(items))
            done = failed = 0
            refusals: list[str] = []
            last = time.monotonic()
            for start in range(0, len(items), _IMPORT_BATCH):
                if self._stopping.is_set():
                    raise JobLost(job.job_id)
                for result in importer(sources, items[start : start + _IMPORT_BATCH]):
                    if result.outcome in ("refused", "failed"):
                        failed += 1
                        if len(refusals) < 3:
                            refusals.append(f"{result.label}: {result.reason}")
                    else:
                        done += 1
                if time.monotonic() - last >= _PROGRESS_SECONDS:
                    self._progress(job, done=done, failed=failed)
                    last = time.monotonic()
            self._progress(job, done=done, failed=failed)
        finally:
            sources.finish()
            upload = job.params.get("upload")
            if upload:
                Path(str(job.params["source"])).unlink(missing_ok=True)
        if failed:
            raise OpenPacsError(
                f"{failed} of {len(items)} files not stored; " + "; ".join(refusals)
            )

    def _progress(self, job: Job, *, done: int, failed: int, total: int | None = None) -> None:
        """Record progress, or stop the job (JobLost) when this server no longer holds it
        or is stopping: the next holder resumes from what was recorded."""
        if self._stopping.is_set() or not self._store.update(
            job.job_id, owner=self._owner, done=done, failed=failed, total=total
        ):
            raise JobLost(job.job_id)

    def _update(self, job: Job, state: JobState, error: str | None = None) -> bool:
        return self._store.update(job.job_id, owner=self._owner, state=state, error=error)

    def _finish(self, job: Job, outcome: Literal["success", "failure"], error: str) -> None:
        state: JobState = "succeeded" if outcome == "success" else "failed"
        if not self._update(job, state, error):
            log.info("job=%s finished here but is held by another server now", job.job_id)
            return
        log.info("job=%s kind=%s state=%s", job.job_id, job.kind, state)
        remote = str(job.params.get("remote", ""))
        node = self._remotes.get(remote)
        self._audit.record(
            AuditEvent(
                channel="http" if job.kind == "import" else "dimse",
                actor=job.created_by,
                peer=f"{node.host}:{node.port}" if node is not None else remote,
                action={"store": "send", "import": "import"}.get(job.kind, "move"),
                outcome=outcome,
                resource=f"job={job.job_id} "
                + (
                    f"source={job.params.get('name')}"
                    if job.kind == "import"
                    else f"remote={remote}"
                ),
                study_uid=_study_of(job),
                detail=error,
            )
        )


def _query(level: str, uid: str) -> Query:
    lvl = Level.STUDY if level == "study" else Level.SERIES
    return Query(lvl, (unique_condition(lvl, uid),))


def _study_of(job: Job) -> str | None:
    if job.kind == "move" or job.params.get("level") == "study":
        return str(job.params.get("uid", "")) or None
    return None


def _not_resumable(job: Job, remote: RemoteNode | None) -> str | None:
    """Why a job taken over cannot run again, or None."""
    if job.kind == "import":
        # Run again, an import skips what is stored; an upload lived on its server only.
        if job.params.get("upload"):
            return "its server stopped and the uploaded archive was on that server"
        return None if job.takeovers <= MAX_TAKEOVERS else "its server stopped too often"
    if job.kind not in ("store", "move"):
        return f"its server stopped and a {job.kind!r} job cannot be resumed"
    if job.takeovers > MAX_TAKEOVERS:
        return f"its server stopped {job.takeovers} times while it ran; not resumed again"
    if job.kind == "store" and not job.plan:
        return "its server stopped and the job has no list of instances to resume from"
    if remote is None:
        return f"its server stopped and the remote {job.params.get('remote')!r} is no longer known"
    return None


def _takeover_note(job: Job, last: Server | None, me: str) -> str:
    if job.owner is None:  # handed back by a server that stopped cleanly, or made before
        return f"{job.note}; resumed by server {me}" if job.note else f"resumed by server {me}"
    was = last.label if last is not None else job.owner[:8]
    return f"taken over by server {me} after server {was} stopped"
