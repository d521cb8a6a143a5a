"""The audit trail's table: appended in batches, searched by the admin API."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from openpacs.archive.records import AuditEvent, AuditFilter
from openpacs.index import schema
from openpacs.index.transaction import Transactions

_audit = schema.audit_events
_FIELDS = [c.name for c in _audit.columns if c.name != "pk"]


class SqlAuditLog:
    def __init__(self, engine: Engine) -> None:
        self._tx = Transactions(engine)

    def append(self, events: Sequence[AuditEvent]) -> None:
        rows = [{k: v for k, v in asdict(e).items() if k in _FIELDS} for e in events]
        if rows:
            self._tx.write(lambda conn: conn.execute(_audit.insert(), rows))

    def search(self, query: AuditFilter) -> tuple[int, list[AuditEvent]]:
        """(how many match, one page of them, newest first)."""
        conditions: list[Any] = []
        for name in ("actor", "action", "outcome", "channel", "study_uid", "patient_id"):
            value = getattr(query, name)
            if value is not None:
                conditions.append(_audit.c[name] == value)
        if query.since is not None:
            conditions.append(_audit.c.at >= query.since)
        if query.until is not None:
            conditions.append(_audit.c.at < query.until)
        page = (
            select(_audit)
            .where(*conditions)
            .order_by(_audit.c.at.desc(), _audit.c.pk.desc())
            .limit(query.limit)
            .offset(query.offset)
        )
        count = select(func.count()).select_from(_audit).where(*conditions)

        def work(conn: Connection) -> tuple[int, list[AuditEvent]]:
            total = int(conn.execute(count).scalar_one())
            events = [AuditEvent(**row._asdict()) for row in conn.execute(page)]
            return total, events

        return self._tx.read(work)
