"""The audit trail of the HTTP door: one event per request that touches patient data.

ASGI middleware inside authentication, so every authenticated request to `/api` or
`/dicom-web` (DICOMweb routers included, without their help) is classified and recorded with
its outcome, also when the route fails or a stream breaks. Resource UIDs come from the path
parameters and the query (`StudyInstanceUID=...`). Reading non-patient state (users,
remotes, jobs, statistics) is not recorded, unless refused; changing it is (`admin`). Logins
are recorded by the authenticator (`login_listener`).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openpacs.archive.audit import AuditTrail
from openpacs.index.records import AuditEvent
from openpacs.web.auth.authenticator import LoginListener
from openpacs.web.auth.principal import Principal

_ADMIN_PREFIXES = ("/api/users", "/api/tokens", "/api/remotes", "/api/jobs", "/api/audit",
                   "/api/statistics", "/api/openapi.json", "/api/docs", "/api/session")  # fmt: skip
_VIEW = re.compile(r"/(metadata|rendered|thumbnail|frames/[^/]+)$")
_COLLECTION = re.compile(r"/(patients|studies|series|instances)$")
_QUERY_KEYS = {
    "PatientID": "patient_id",
    "StudyInstanceUID": "study_uid",
    "SeriesInstanceUID": "series_uid",
    "SOPInstanceUID": "sop_uid",
}
_PARAM_FIELDS = (("study", "study_uid"), ("series", "series_uid"), ("instance", "sop_uid"),
                 ("sop", "sop_uid"), ("patient", "patient_id"))  # fmt: skip
_REST_LEVEL = {"patients": "patient_id", "studies": "study_uid", "series": "series_uid",
               "instances": "sop_uid"}  # fmt: skip


def classify(method: str, path: str) -> str | None:
    """The audit action of a request, or None when it does not touch patient data."""
    if path.startswith(_ADMIN_PREFIXES):
        if path.startswith("/api/remotes/") and path.endswith(("/store", "/move")):
            return "send" if path.endswith("/store") else "move"
        return None if method in ("GET", "HEAD") or path.startswith("/api/session") else "admin"
    if method == "DELETE":
        return "delete"
    if method in ("POST", "PUT"):
        return "store"
    if path.endswith(("/file", "/archive")):
        return "download"
    if _VIEW.search(path):
        return "view"
    if path.startswith("/dicom-web/"):
        # QIDO-RS searches end in a collection; WADO-RS retrieves a resource.
        return "query" if _COLLECTION.search(path) else "download"
    return "query" if _COLLECTION.search(path) else "view"


def resource_uids(scope: Scope) -> dict[str, str]:
    uids: dict[str, str] = {}
    params: dict[str, Any] = scope.get("path_params") or {}
    for name, value in params.items():
        for fragment, field in _PARAM_FIELDS:
            if fragment in name.lower() and isinstance(value, str):
                uids.setdefault(field, value[:512])
    if "uid" in params or "patient_id" in params:  # REST: /api/<level>/{uid}
        parts = scope["path"].split("/")
        field = _REST_LEVEL.get(parts[2]) if len(parts) > 2 else None
        value = params.get("uid") or params.get("patient_id")
        if field and isinstance(value, str):
            uids.setdefault(field, value[:512])
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    for keyword, field in _QUERY_KEYS.items():
        if query.get(keyword):
            uids.setdefault(field, query[keyword][0][:512])
    return uids


class AuditRequests:
    def __init__(self, app: ASGIApp, audit: AuditTrail) -> None:
        self.app = app
        self.audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        principal = scope.get("state", {}).get("principal")
        action = classify(scope["method"], scope["path"])
        if not isinstance(principal, Principal):
            await self.app(scope, receive, send)
            return
        status = 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        detail = ""
        try:
            await self.app(scope, receive, watch)
        except BaseException as exc:
            detail = f"error={type(exc).__name__}"
            raise
        finally:
            if action is not None or status == 403:  # a refused access is always recorded
                self._record(scope, principal, action or "access", status, detail)

    def _record(
        self, scope: Scope, principal: Principal, action: str, status: int, detail: str
    ) -> None:
        if status < 400 and not detail:
            outcome = "success"
        elif status in (401, 403):
            outcome = "denied"
        else:
            outcome = "failure"
        self.audit.record(
            AuditEvent(
                channel="http",
                actor=principal.name,
                peer=principal.peer,
                action=action,
                outcome=outcome,
                resource=f"{scope['method']} {scope['path']}"[:512],
                detail=f"status={status} {detail}".strip(),
                **resource_uids(scope),
            )
        )


def login_listener(audit: AuditTrail) -> LoginListener:
    """Records each password check (session login or HTTP Basic)."""

    def on_login(username: str, peer: str, succeeded: bool, reason: str) -> None:
        audit.record(
            AuditEvent(
                channel="http",
                actor=username[:128],
                peer=peer,
                action="login",
                outcome="success" if succeeded else "failure",
                detail=reason,
            )
        )

    return on_login
