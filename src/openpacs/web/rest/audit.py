"""`GET /api/audit`: the audit trail for administrators, newest first, with filters."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from openpacs.archive.records import AuditFilter
from openpacs.web.audit import audited
from openpacs.web.deps import ArchiveDep, require

router = APIRouter(prefix="/api/audit", tags=["audit"], dependencies=[require("admin")])

Text = Annotated[str | None, Query(max_length=128)]
Uid = Annotated[str | None, Query(max_length=64, pattern=r"^[0-9.]+$")]
Time = Annotated[
    str | None,
    Query(
        max_length=40,
        pattern=r"^\d{4}-\d{2}-\d{2}([T ][0-9:.+\-Z]*)?$",
        description="ISO 8601 date or date-time (UTC).",
    ),
]


@router.get("")
@audited(None)
def audit_events(
    archive: ArchiveDep,
    actor: Text = None,
    action: Text = None,
    outcome: Literal["success", "failure", "denied", "cancelled"] | None = None,
    channel: Literal["http", "dimse"] | None = None,
    study_uid: Uid = None,
    patient_id: Text = None,
    since: Time = None,
    until: Time = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    """Audit events matching every given filter: `{"total": N, "items": [...]}`."""
    total, events = archive.audit.search(
        AuditFilter(
            actor=actor,
            action=action,
            outcome=outcome,
            channel=channel,
            study_uid=study_uid,
            patient_id=patient_id,
            since=since,
            until=until,
            limit=limit,
            offset=offset,
        )
    )
    items = [{k: v for k, v in asdict(e).items() if k != "pk"} for e in events]
    return {"total": total, "items": items}
