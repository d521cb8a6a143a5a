"""Jobs (send to a remote, move from a remote) and their progress, in the database so any
server can report on a job another one runs."""

from __future__ import annotations

import json
import uuid
from typing import Any, cast

from sqlalchemy import Connection, Engine, select, update

from openpacs.index import schema
from openpacs.index.records import Job, JobState
from openpacs.index.transaction import Transactions, now_iso

_jobs = schema.jobs


def _job(row: Any) -> Job:
    return Job(
        row.job_id,
        row.kind,
        cast(JobState, row.state),
        json.loads(row.params),
        row.created_by,
        row.created_at,
        row.updated_at,
        row.done,
        row.total,
        row.failed,
        row.error,
    )


class SqlJobs:
    def __init__(self, engine: Engine) -> None:
        self._tx = Transactions(engine)

    def create(self, kind: str, params: dict[str, Any], created_by: str) -> Job:
        now = now_iso()
        row = {
            "job_id": uuid.uuid4().hex,
            "kind": kind,
            "state": "pending",
            "params": json.dumps(params),
            "created_by": created_by,
            "created_at": now,
            "updated_at": now,
            "done": 0,
            "total": 0,
            "failed": 0,
            "error": "",
        }
        self._tx.write(lambda conn: conn.execute(_jobs.insert().values(row)))
        return Job(row["job_id"], kind, "pending", params, created_by, now, now)

    def get(self, job_id: str) -> Job | None:
        def work(conn: Connection) -> Job | None:
            row = conn.execute(select(_jobs).where(_jobs.c.job_id == job_id)).first()
            return _job(row) if row is not None else None

        return self._tx.read(work)

    def update(
        self,
        job_id: str,
        *,
        state: JobState | None = None,
        done: int | None = None,
        total: int | None = None,
        failed: int | None = None,
        error: str | None = None,
    ) -> None:
        values: dict[str, Any] = {"updated_at": now_iso()}
        for name, value in (
            ("state", state),
            ("done", done),
            ("total", total),
            ("failed", failed),
            ("error", error),
        ):
            if value is not None:
                values[name] = value
        statement = update(_jobs).where(_jobs.c.job_id == job_id).values(values)
        self._tx.write(lambda conn: conn.execute(statement))
