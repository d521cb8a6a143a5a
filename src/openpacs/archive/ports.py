"""What the archive needs from an index and the site-state stores; the blob store's contract is
`storage.base.BlobStore`. SQL implementations live in `openpacs.index`."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from openpacs.archive.records import (
    AddResult,
    ApiToken,
    AuditEvent,
    AuditFilter,
    BlobRecord,
    DuplicatePolicy,
    IndexedBlob,
    Job,
    JobState,
    Match,
    Origin,
    Page,
    PendingHeader,
    RemoteNode,
    Role,
    Server,
    StoredInstance,
    Totals,
    User,
    Visibility,
)

if TYPE_CHECKING:  # annotations only: the supervisor imports these protocols without pydicom
    from openpacs.dicom.header import Header
    from openpacs.dicom.levels import Level
    from openpacs.dicom.query import Condition, Query


class Index(Protocol):
    """The catalog. Each call is one transaction; callers never see database types."""

    def add_instance(
        self,
        header: Header,
        *,
        blob_key: str,
        blob_size: int,
        blob_sha256: str,
        policy: DuplicatePolicy,
        origin: Origin | None = None,
    ) -> AddResult: ...

    def add_instances(
        self,
        instances: Sequence[tuple[Header, BlobRecord]],
        *,
        policy: DuplicatePolicy,
        origin: Origin | None = None,
    ) -> list[AddResult | BaseException]: ...

    def stored_sizes(self, sop_uids: Sequence[str]) -> dict[str, int]: ...

    def pending_headers(
        self, limit: int, *, after: int = 0, upto: int | None = None
    ) -> list[PendingHeader]: ...

    def fill_headers(self, headers: dict[str, dict[str, Any] | None]) -> None: ...

    def settle_with(self, settle: Callable[[], None]) -> None: ...

    # `visibility`: only what a restricted user may see (None: everything).
    def find(self, query: Query, visibility: Visibility | None = None) -> list[Match]: ...

    def instances_for(
        self, query: Query, visibility: Visibility | None = None
    ) -> list[StoredInstance]: ...

    def instance(
        self, sop_uid: str, visibility: Visibility | None = None
    ) -> StoredInstance | None: ...

    def labels(self, study_uid: str) -> list[str] | None: ...

    def set_label(self, study_uid: str, label: str, present: bool) -> bool: ...

    def delete(self, level: Level, uid: str) -> list[str]: ...

    def all_blob_keys(self) -> set[str]: ...

    def iter_blobs(self) -> Iterator[IndexedBlob]: ...

    def totals(self, visibility: Visibility | None = None) -> Totals: ...

    def close(self) -> None: ...


class Accounts(Protocol):
    """Users, sessions, API tokens and failed-login counters, shared by every server."""

    def user(self, username: str) -> User | None: ...

    def users(self) -> list[User]: ...

    def count_users(self) -> int: ...

    def add_user(self, username: str, role: Role, password_hash: str) -> bool: ...

    def update_user(
        self,
        username: str,
        *,
        role: Role | None = None,
        password_hash: str | None = None,
        groups: tuple[str, ...] | None = None,
    ) -> bool: ...

    def remove_user(self, username: str) -> bool: ...

    def add_session(self, token_sha256: str, username: str, expires_epoch: float) -> None: ...

    def session_user(self, token_sha256: str, now_epoch: float) -> User | None: ...

    def remove_session(self, token_sha256: str) -> None: ...

    def purge_sessions(self, now_epoch: float) -> int: ...

    def add_token(
        self,
        token_id: str,
        token_sha256: str,
        username: str,
        name: str,
        expires_epoch: float | None,
    ) -> ApiToken: ...

    def token_user(self, token_sha256: str, now_epoch: float) -> User | None: ...

    def tokens(self, username: str | None = None) -> list[ApiToken]: ...

    def revoke_token(self, token_id: str, username: str | None = None) -> bool: ...

    def login_failures(self, subject: str) -> tuple[int, float]: ...

    def record_login_failure(self, subject: str, now_epoch: float) -> int: ...

    def clear_login_failures(self, subject: str) -> None: ...

    def close(self) -> None: ...


class AuditStore(Protocol):
    """Where audit events are kept."""

    def append(self, events: Sequence[AuditEvent]) -> None: ...

    def search(self, query: AuditFilter) -> tuple[int, list[AuditEvent]]: ...


class Browser(Protocol):
    """Paged, sorted listings from the index columns (the REST API)."""

    def page(
        self,
        level: Level,
        conditions: Sequence[Condition],
        *,
        sort: str | None = None,
        descending: bool = False,
        limit: int = 100,
        offset: int = 0,
        cursor: str | None = None,
        label: str | None = None,
        visibility: Visibility | None = None,
        text: str | None = None,
    ) -> Page:
        """`cursor`: a `Page.next` or `Page.previous` of the same search and sort; `text`:
        free text, every word of which begins a word of the entity's stored headers."""
        ...


class RemoteStore(Protocol):
    """Remote AEs kept in the database."""

    def list(self) -> list[RemoteNode]: ...

    def get(self, aet: str) -> RemoteNode | None: ...

    def add(self, remote: RemoteNode) -> bool: ...

    def update(self, remote: RemoteNode) -> bool: ...

    def remove(self, aet: str) -> bool: ...


class JobStore(Protocol):
    """Jobs and their progress; every change of a running job names its owner."""

    def create(
        self,
        kind: str,
        params: dict[str, Any],
        created_by: str,
        *,
        owner: str,
        plan: Sequence[str] = (),
    ) -> Job: ...

    def get(self, job_id: str) -> Job | None: ...

    def recent(self, *, limit: int, offset: int) -> tuple[int, list[Job]]: ...

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
    ) -> bool: ...

    def orphans(self, now: float) -> list[tuple[Job, Server | None]]: ...

    def claim(self, job: Job, owner: str, note: str) -> bool: ...

    def release(self, owner: str, note: str) -> int: ...


class ServerStore(Protocol):
    """The servers sharing the database and their leases."""

    def register(self, server: Server) -> None: ...

    def renew(self, server_id: str, lease_until: float) -> bool: ...

    def remove(self, server_id: str) -> None: ...

    def servers(self) -> list[Server]: ...

    def forget_expired(self, before: float) -> int: ...


class DicomClient(Protocol):
    """openpacs as an SCU towards a remote AE."""

    def echo(self, remote: RemoteNode) -> int: ...

    def send(
        self,
        remote: RemoteNode,
        instances: Sequence[StoredInstance],
        progress: Callable[[int, int], None],
    ) -> tuple[int, int]: ...

    def move(
        self, remote: RemoteNode, study_uid: str, progress: Callable[[int, int, int], None]
    ) -> tuple[int, int]: ...


class FoundFile(Protocol):
    """A file an import found (on a disk, in a ZIP, in a bucket)."""

    @property
    def label(self) -> str: ...

    @property
    def size(self) -> int: ...


class ImportSources(Protocol):
    """Where import jobs read files (`storage.sources.Sources`)."""

    def found(self, source: str) -> list[FoundFile]:
        """Every file of a folder, file, ZIP archive or s3:// prefix; OpenPacsError if the
        source cannot be read at all."""
        ...

    def fetch(self, item: FoundFile) -> tuple[Path, bool]:
        """The item as a local file, and whether it is a copy the caller owns (consumes)."""
        ...

    def finish(self) -> None:
        """Release what this thread's fetches keep open."""
        ...
