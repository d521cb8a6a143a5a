"""Jobs (send to a remote, move from a remote) and their progress, in the database so any
server can report on a job another one runs, and take it over when that server stops.

Every change a running job makes names its owner: once another server has taken the job
over, the old owner's updates match no row, so it learns that it lost the job and stops.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Connection, Engine, and_, func, or_, select, update

from openpacs.archive.records import Job, JobState, Server
from openpacs.index import schema
from openpacs.index.transaction import Transactions, now_iso

_jobs = schema.jobs
_servers = schema.servers
_ACTIVE = ("pending", "running")
_SERVER_COLUMNS = ("server_id", "host", "pid", "started_at", "lease_until")


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
        row.owner,
        tuple(json.loads(row.plan)) if row.plan else (),
        row.takeovers,
        row.note,
    )


class SqlJobs:
    def __init__(self, engine: Engine) -> None:
        self._tx = Transactions(engine)

    def create(
        self,
        kind: str,
        params: dict[str, Any],
        created_by: str,
        *,
        owner: str,
        plan: Sequence[str] = (),
    ) -> Job:
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
            "total": len(plan),
            "failed": 0,
            "error": "",
            "owner": owner,
            "plan": json.dumps(list(plan)) if plan else "",
            "takeovers": 0,
            "note": "",
        }
        self._tx.write(lambda conn: conn.execute(_jobs.insert().values(row)))
        return _job(_Row(row))

    def get(self, job_id: str) -> Job | None:
        def work(conn: Connection) -> Job | None:
            row = conn.execute(select(_jobs).where(_jobs.c.job_id == job_id)).first()
            return _job(row) if row is not None else None

        return self._tx.read(work)

    def recent(self, *, limit: int, offset: int) -> tuple[int, list[Job]]:
        """The newest jobs first, and how many there are."""

        def work(conn: Connection) -> tuple[int, list[Job]]:
            total = conn.execute(select(func.count()).select_from(_jobs)).scalar_one()
            rows = conn.execute(
                select(_jobs).order_by(_jobs.c.pk.desc()).limit(limit).offset(offset)
            ).all()
            return int(total), [_job(row) for row in rows]

        return self._tx.read(work)

    def update(
        self,
        job_id: str,
        *,
        owner: str,
        state: JobState | None = None,
        done: int | None = None,
        total: int | None = None,
        failed: int | None = None,
        error: str | None = None,
    ) -> bool:
        """Change a job `owner` holds; False when it no longer does (taken over)."""
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
        statement = (
            update(_jobs).where(_jobs.c.job_id == job_id, _jobs.c.owner == owner).values(values)
        )
        return bool(self._tx.write(lambda conn: conn.execute(statement).rowcount) == 1)

    def orphans(self, now: float) -> list[tuple[Job, Server | None]]:
        """Pending or running jobs that no live server holds, with their last owner's row
        when it is still there (a server whose lease ran out)."""

        def work(conn: Connection) -> list[tuple[Job, Server | None]]:
            server_columns = [_servers.c[name] for name in _SERVER_COLUMNS]
            query = (
                select(_jobs, *server_columns)
                .select_from(_jobs.outerjoin(_servers, _servers.c.server_id == _jobs.c.owner))
                .where(
                    _jobs.c.state.in_(_ACTIVE),
                    or_(_servers.c.server_id.is_(None), _servers.c.lease_until <= now),
                )
                .order_by(_jobs.c.pk)
            )
            found = []
            for row in conn.execute(query).all():
                server = None
                if row.server_id is not None:
                    server = Server(
                        row.server_id, row.host, row.pid, row.started_at, row.lease_until
                    )
                found.append((_job(row), server))
            return found

        return self._tx.read(work)

    def claim(self, job: Job, owner: str, note: str) -> bool:
        """Take `job` over for `owner` unless another server was quicker (compare and set on
        its last owner). A job its server released counts no takeover."""
        previous = _jobs.c.owner.is_(None) if job.owner is None else _jobs.c.owner == job.owner
        values: dict[str, Any] = {"owner": owner, "note": note, "updated_at": now_iso()}
        if job.owner is not None:
            values["takeovers"] = _jobs.c.takeovers + 1
        statement = (
            update(_jobs)
            .where(and_(_jobs.c.job_id == job.job_id, _jobs.c.state.in_(_ACTIVE), previous))
            .values(values)
        )
        return bool(self._tx.write(lambda conn: conn.execute(statement).rowcount) == 1)

    def release(self, owner: str, note: str) -> int:
        """Hand back every unfinished job of `owner` (a server stopping): pending and held by
        no server, so the next live server resumes them."""
        statement = (
            update(_jobs)
            .where(_jobs.c.owner == owner, _jobs.c.state.in_(_ACTIVE))
            .values(owner=None, state="pending", note=note, updated_at=now_iso())
        )
        return int(self._tx.write(lambda conn: conn.execute(statement).rowcount))


class _Row:
    """A freshly inserted row, read like a result row."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)
