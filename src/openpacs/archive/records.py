"""The domain types: plain frozen values the archive's ports take and return.

They live with the archive, not with the index that implements the ports, so the index
imports them from here and the archive never imports the index. No database types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from openpacs.dicom.levels import Level

DuplicatePolicy = Literal["keep", "overwrite", "reject"]


@dataclass(frozen=True)
class Match:
    level: Level
    values: dict[str, Any]
    """Indexed keys of the level and its ancestors, and requested computed keys, by keyword."""
    header: dict[str, Any] | None = field(default=None)
    """The stored header of a representative instance, when the query needs it."""


@dataclass(frozen=True)
class StoredInstance:
    sop_uid: str
    sop_class_uid: str
    transfer_syntax: str
    blob_key: str
    blob_size: int
    study_uid: str
    series_uid: str


@dataclass(frozen=True)
class AddResult:
    stored: bool
    """False when an identical SOP instance was already stored and kept."""
    replaced_blob: str | None = None
    """The blob of the copy an overwrite replaced: delete it once the commit is done."""


@dataclass(frozen=True)
class BlobRecord:
    """A stored blob an instance is indexed with."""

    key: str
    size: int
    sha256: str


@dataclass(frozen=True)
class PendingHeader:
    """An instance indexed before its whole header was built (`Catalog.pending_headers`)."""

    pk: int
    blob_key: str
    upto: int
    """The last pending instance's key when the listing began: where settling stops."""


@dataclass(frozen=True)
class Totals:
    patients: int
    studies: int
    series: int
    instances: int
    bytes: int


@dataclass(frozen=True)
class IndexedBlob:
    """What the index says one instance's blob is."""

    sop_uid: str
    blob_key: str
    blob_size: int
    blob_sha256: str


# --- site state: accounts, audit trail, known AEs, jobs --------------------------------------

Role = Literal["admin", "user", "uploader"]
ROLES: tuple[Role, ...] = ("admin", "user", "uploader")


@dataclass(frozen=True)
class User:
    username: str
    role: Role
    password_hash: str
    created_at: str = ""
    groups: tuple[str, ...] = ()
    """Provider groups of a single sign-on user at its last login."""


@dataclass(frozen=True)
class ApiToken:
    """An API token's public facts; the token itself is only ever stored as a hash."""

    token_id: str
    username: str
    name: str
    created_at: str
    expires_epoch: float | None
    last_used_at: str | None


@dataclass(frozen=True)
class AuditEvent:
    """One access to patient data or one login attempt (who, from where, what, outcome)."""

    channel: Literal["http", "dimse"]
    actor: str
    """The user name over HTTP, the calling AE title over DIMSE."""
    peer: str
    action: str
    outcome: str
    """"success", "failure" or "denied"."""
    resource: str = ""
    patient_id: str | None = None
    study_uid: str | None = None
    series_uid: str | None = None
    sop_uid: str | None = None
    detail: str = ""
    at: str = ""
    pk: int | None = None


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None
    outcome: str | None = None
    channel: str | None = None
    study_uid: str | None = None
    patient_id: str | None = None
    since: str | None = None
    until: str | None = None
    limit: int = 100
    offset: int = 0


@dataclass(frozen=True)
class RemoteNode:
    """A known DICOM peer, from the configuration or kept in the database."""

    aet: str
    host: str
    port: int
    tls: bool = False
    source: Literal["config", "database"] = "database"


JobState = Literal["pending", "running", "succeeded", "failed"]


@dataclass(frozen=True)
class Job:
    job_id: str
    kind: str
    state: JobState
    params: dict[str, Any]
    created_by: str
    created_at: str
    updated_at: str
    done: int = 0
    total: int = 0
    failed: int = 0
    error: str = ""
    owner: str | None = None
    """The server running it; None while no server holds it (released, or made elsewhere)."""
    plan: tuple[str, ...] = ()
    """A send's SOP Instance UIDs in sending order: where a resumed send picks up."""
    takeovers: int = 0
    """How many times another server took the job over from one that stopped."""
    note: str = ""
    """What happened to the job besides its progress (taken over, released at shutdown)."""


@dataclass(frozen=True)
class Server:
    """A serving process in the shared `servers` table, alive while its lease runs."""

    server_id: str
    host: str
    pid: int
    started_at: str
    lease_until: float

    @property
    def label(self) -> str:
        return f"{self.host}:{self.pid}"


MAX_CURSOR_LENGTH = 512
"""The longest page cursor a listing accepts."""

TEXT_COUNT_LIMIT = 1000
"""How many matches of a free-text search a listing counts at most (`Page.more` beyond)."""


@dataclass(frozen=True)
class Page:
    """One page of a listing, how many entries match in all, where the page starts among
    them, and the cursors of the pages around it (None at either end)."""

    total: int
    items: list[dict[str, Any]]
    offset: int = 0
    next: str | None = None
    previous: str | None = None
    last: str | None = None
    more: bool = False
    """Whether `total` is a lower bound: more entries match, and counting stopped there."""


@dataclass(frozen=True)
class Visibility:
    """The studies a restricted user may see: those matching any of these values (the union
    of the visibility rules that apply to the user). Nothing set: no study at all."""

    institutions: frozenset[str] = frozenset()
    """InstitutionName of the study's first instance, exactly."""
    calling_aets: frozenset[str] = frozenset()
    """The AE title that sent the study's first instance (C-STORE)."""
    called_aets: frozenset[str] = frozenset()
    """The AE title of ours it was sent to."""
    referring_physicians: frozenset[str] = frozenset()
    """ReferringPhysicianName, compared case-insensitively without trailing empty components."""
    labels: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Origin:
    """How an instance arrived: the calling and called AE titles of its C-STORE."""

    calling_aet: str = ""
    called_aet: str = ""
