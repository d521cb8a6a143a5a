"""The audit trail of the HTTP door: one event per request that touches patient data.

Each route declares what it does to patient data with `audited(action)` on its endpoint
(None: it reads no patient data and changes nothing, as reading users, remotes, jobs or
statistics); tests/unit/test_architecture.py makes every API and DICOMweb route declare one.
ASGI middleware inside authentication records every authenticated request to a route with an
action, and every refused one, with its outcome, also when the route fails or a stream
breaks. Resource UIDs come from the path parameters and the query (`StudyInstanceUID=...`).
Logins are recorded by the authenticator (`login_listener`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openpacs.archive.audit import AuditTrail
from openpacs.archive.records import AuditEvent
from openpacs.web.auth.authenticator import LoginListener
from openpacs.web.auth.principal import Principal

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


AuditAction = Literal["query", "view", "download", "store", "delete", "send", "move", "admin"]
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
_DECLARED = "openpacs_audit_action"


def audited(action: AuditAction | None) -> Callable[[Endpoint], Endpoint]:
    """Declares the audit action of a route's endpoint (None: not recorded unless refused)."""

    def declare(endpoint: Endpoint) -> Endpoint:
        setattr(endpoint, _DECLARED, action)
        return endpoint

    return declare


def declares_action(endpoint: object) -> bool:
    return hasattr(endpoint, _DECLARED)


def declared_action(endpoint: object) -> AuditAction | None:
    """The action a route declared; None for a route without one (the docs, the UI files)."""
    action: AuditAction | None = getattr(endpoint, _DECLARED, None)
    return action


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
            # The router put the matched route's endpoint in the scope.
            action = declared_action(scope.get("endpoint"))
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
