"""Jobs: send a study or series to a remote (C-STORE), move a study from a remote into
openpacs (C-MOVE). The job row and its progress live in the database; the work runs on a
background thread of the server that accepted it. A job whose server stopped while it ran
stays `running`: the row says when it was last updated."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

from openpacs.archive.audit import AuditTrail
from openpacs.archive.ports import DicomClient, Index, JobStore
from openpacs.dicom.levels import Level
from openpacs.dicom.query import Condition, Equals, Query
from openpacs.errors import NotFound, OpenPacsError
from openpacs.index.records import AuditEvent, Job, RemoteNode

log = logging.getLogger("openpacs.jobs")

_WORKERS = 2
_UNIQUE_TAG = {Level.STUDY: 0x0020000D, Level.SERIES: 0x0020000E}


class JobRunner:
    def __init__(
        self, store: JobStore, index: Index, client: DicomClient, audit: AuditTrail
    ) -> None:
        self._store = store
        self._index = index
        self._client = client
        self._audit = audit
        self._pool: ThreadPoolExecutor | None = None

    def get(self, job_id: str) -> Job:
        job = self._store.get(job_id)
        if job is None:
            raise NotFound(f"no job {job_id!r}")
        return job

    def send(
        self, remote: RemoteNode, level: Literal["study", "series"], uid: str, user: str
    ) -> Job:
        """Queue a C-STORE of every instance of a study or series to `remote`."""
        lvl = Level.STUDY if level == "study" else Level.SERIES
        keyword = lvl.unique_key
        query = Query(lvl, (Condition(keyword, _UNIQUE_TAG[lvl], "uid", (Equals(uid),)),))
        instances = self._index.instances_for(query)
        if not instances:
            raise NotFound(f"no {level} {uid}")
        job = self._store.create("store", {"remote": remote.aet, "level": level, "uid": uid}, user)
        self._store.update(job.job_id, total=len(instances))

        def run() -> None:
            _done, failed = self._client.send(
                remote,
                instances,
                lambda d, f: self._store.update(job.job_id, done=d, failed=f),
            )
            if failed:
                raise OpenPacsError(f"{failed} of {len(instances)} instances were not stored")

        self._submit(job, run, remote, "send", uid if lvl is Level.STUDY else None, user)
        return job

    def move(self, remote: RemoteNode, study_uid: str, user: str) -> Job:
        """Queue a C-MOVE of a study from `remote` to openpacs."""
        job = self._store.create("move", {"remote": remote.aet, "uid": study_uid}, user)

        def run() -> None:
            done, failed = self._client.move(
                remote,
                study_uid,
                lambda d, t, f: self._store.update(job.job_id, done=d, total=t, failed=f),
            )
            self._store.update(job.job_id, done=done, total=done + failed, failed=failed)
            if failed:
                raise OpenPacsError(f"{failed} instances were not moved")

        self._submit(job, run, remote, "move", study_uid, user)
        return job

    def _submit(
        self,
        job: Job,
        run: object,
        remote: RemoteNode,
        action: str,
        study_uid: str | None,
        user: str,
    ) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(_WORKERS, thread_name_prefix="job")

        def execute() -> None:
            self._store.update(job.job_id, state="running")
            outcome, error = "success", ""
            try:
                run()  # type: ignore[operator]
            except OpenPacsError as exc:
                outcome, error = "failure", exc.reason
            except Exception as exc:
                log.exception("job %s failed", job.job_id)
                outcome, error = "failure", f"internal error: {type(exc).__name__}"
            state = "succeeded" if outcome == "success" else "failed"
            self._store.update(job.job_id, state=state, error=error)
            log.info("job=%s kind=%s state=%s", job.job_id, job.kind, state)
            self._audit.record(
                AuditEvent(
                    channel="dimse",
                    actor=user,
                    peer=f"{remote.host}:{remote.port}",
                    action=action,
                    outcome=outcome,
                    resource=f"job={job.job_id} remote={remote.aet}",
                    study_uid=study_uid,
                    detail=error,
                )
            )

        self._pool.submit(execute)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=False)
            self._pool = None
