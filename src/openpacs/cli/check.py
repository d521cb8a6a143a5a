"""`openpacs check`: is this installation ready, and what does it support?

Loads the configuration, reaches the index and the store the way `serve` would, and lists the
DICOM services, SOP classes and transfer syntaxes with what can be decoded here.
"""

from __future__ import annotations

from dataclasses import dataclass

from pynetdicom import AllStoragePresentationContexts

from openpacs.config import Settings
from openpacs.dicom.codecs import SyntaxSupport, syntax_support
from openpacs.dimse.server import QUERY_RETRIEVE_MODELS, transfer_syntaxes
from openpacs.errors import OpenPacsError

MATCHING = (
    "single value",
    "universal (empty value)",
    "wildcard (* and ?)",
    "range (DA, TM, DT; open ranges too)",
    "list of UIDs",
    "person names case-insensitive",
)


@dataclass(frozen=True)
class Finding:
    name: str
    ok: bool
    detail: str


def backend_findings(settings: Settings) -> list[Finding]:
    """Reach the index and the store; each problem is a finding, not an exception."""
    from openpacs.compose import build_index_engine, build_store
    from openpacs.index import migrate

    findings = []
    try:
        engine = build_index_engine(settings)
        try:
            revision = migrate.current(engine)
        finally:
            engine.dispose()
        head = migrate.HEAD_REVISION
        state = "current" if revision == head else f"needs `openpacs db upgrade` to {head}"
        findings.append(Finding("index", True, f"revision {revision or 'empty'} ({state})"))
    except OpenPacsError as exc:
        findings.append(Finding("index", False, exc.reason))
    except Exception as exc:  # a driver's own error: report it, the check goes on
        findings.append(Finding("index", False, f"{type(exc).__name__}: {exc}"))
    try:
        store = build_store(settings)
        try:
            store.check()
        finally:
            store.close()
        findings.append(Finding("store", True, settings.storage.shown_url))
    except OpenPacsError as exc:
        findings.append(Finding("store", False, exc.reason))
    return findings


def storage_sop_classes() -> list[tuple[str, str]]:
    """(UID, name) of every storage SOP class the Storage SCP accepts."""
    return [
        (str(c.abstract_syntax), c.abstract_syntax.name) for c in AllStoragePresentationContexts
    ]


def query_retrieve_models() -> list[tuple[str, str]]:
    return [(str(uid), uid.name) for uid in QUERY_RETRIEVE_MODELS]


def accepted_syntaxes() -> list[SyntaxSupport]:
    return syntax_support(transfer_syntaxes())
