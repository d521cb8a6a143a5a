"""The archive's use cases: store, find, retrieve and delete, the same for every front door.

Store is the one sequence that makes an instance durable (decision 3 of the architecture):
validate the header, write the blob, commit the index row, and only then report success. A
failed index write removes the blob it was about to describe; a crash in between leaves at most
an orphan blob, never an index row without its blob.
"""

from __future__ import annotations

import copy
import hashlib
import io
import logging
import math
import os
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from openpacs.archive import staging
from openpacs.archive.audit import AuditTrail
from openpacs.archive.headers import HeaderBuilder
from openpacs.archive.jobs import JobRunner
from openpacs.archive.ports import (
    Accounts,
    Browser,
    DicomClient,
    FoundFile,
    ImportSources,
    Index,
    JobStore,
)
from openpacs.archive.presence import Presence
from openpacs.archive.records import (
    DuplicatePolicy,
    Match,
    Origin,
    Page,
    StoredInstance,
    Totals,
    Visibility,
)
from openpacs.archive.remotes import Remotes
from openpacs.archive.staging import StagingReport
from openpacs.dicom.header import ParsedHeader, parse_header
from openpacs.dicom.levels import Level
from openpacs.dicom.query import Condition, Query
from openpacs.dicom.unique_keys import unique_condition
from openpacs.errors import InvalidInstance, NotFound, OpenPacsError, PermissionDenied
from openpacs.storage.base import BlobStore

if TYPE_CHECKING:
    from openpacs.archive.importing import ImportResult

log = logging.getLogger(__name__)

_SWEEP_INTERVAL_SECONDS = 600.0


@dataclass(frozen=True)
class StoreOutcome:
    sop_uid: str
    study_uid: str
    stored: bool
    """False when the policy kept an already stored copy and discarded this one."""
    already_stored: bool = False
    """True when `skip_stored` found this instance stored with the same size, and nothing
    was written."""


class Archive:
    def __init__(
        self,
        index: Index,
        store: BlobStore,
        *,
        duplicates: DuplicatePolicy,
        accounts: Accounts,
        audit: AuditTrail,
        browser: Browser,
        remotes: Remotes,
        presence: Presence,
        jobs: JobStore,
        dicom: Callable[[Archive], DicomClient],
        sources: Callable[[Archive], ImportSources] | None = None,
    ) -> None:
        """`dicom` makes the archive's DICOM client (it reads what it sends from the archive),
        which C-ECHO of remotes and send and move jobs use; `sources` makes what import jobs
        read (none: no import jobs)."""
        self.index = index
        self.store = store
        self.duplicates: DuplicatePolicy = duplicates
        self.accounts = accounts
        """Users, sessions and tokens of the HTTP front door (shared by every server)."""
        self.audit = audit
        self.browser = browser
        """Paged listings for the REST API."""
        self.remotes = remotes
        """Known remote AEs, configured and kept in the database."""
        self.presence = presence
        """This server among those sharing the database (its lease)."""
        self.visibility: Visibility | None = None
        """None: every study; otherwise the studies a restricted user may see (`scoped`)."""
        self.dicom = dicom(self)
        self.jobs = JobRunner(
            jobs,
            index,
            self.dicom,
            audit,
            presence,
            remotes,
            imports=None if sources is None else (sources(self), self._fetch_and_import),
        )
        """Send, move and import jobs, run on this server's threads (`archive.jobs`)."""
        self.headers = HeaderBuilder(index, store)
        """Whole headers built after ingest while serving (`archive.headers`)."""
        index.settle_with(self.headers.settle_for_reading)  # queries read whole headers
        self._staging_made = False
        self._last_sweep = -math.inf

    def _fetch_and_import(
        self, sources: ImportSources, items: Sequence[FoundFile]
    ) -> list[ImportResult]:
        from openpacs.archive.importing import fetch_and_import

        return fetch_and_import(self, sources, items)

    def start(self) -> None:
        """Begin serving: register this server with a lease it keeps renewing, sweep the
        staging leftovers of servers that are gone, and take over the jobs no live server
        holds; the last two again now and then while it runs (`archive.presence`)."""
        self.presence.start([self._sweep_staging, self.jobs.reap])
        self.headers.start()

    def staging_dir(self) -> Path | None:
        """Where this server's front doors spool received bytes, so that storing them is a
        rename: its own folder in the store's staging folder (see `archive.staging`), made
        on first use so that a command which stores without serving has it too."""
        root = self.store.staging_dir()
        if root is None:
            return None
        own = root / self.presence.server_id
        if not self._staging_made:
            own.mkdir(parents=True, exist_ok=True)
            self._staging_made = True
        return own

    def staging_report(self, *, grace: float = staging.GRACE_SECONDS) -> StagingReport | None:
        """The staging folder's files and those no live server owns (None without one)."""
        root = self.store.staging_dir()
        if root is None:
            return None
        return staging.survey(root, self.presence.live(), grace=grace)

    def _sweep_staging(self) -> None:
        root = self.store.staging_dir()
        now = time.monotonic()
        if root is None or now - self._last_sweep < _SWEEP_INTERVAL_SECONDS:
            return
        self._last_sweep = now
        staging.sweep(root, self.presence.live())

    def store_file(
        self,
        path: Path,
        *,
        sop_class_uid: str | None = None,
        sop_uid: str | None = None,
        consume: bool = False,
        skip_stored: bool = False,
        origin: Origin | None = None,
        digest: tuple[int, str] | None = None,
        parsed: ParsedHeader | None = None,
    ) -> StoreOutcome:
        """Store the Part 10 file at `path`, byte for byte.

        `sop_class_uid`/`sop_uid` are what the sender announced; the dataset must agree.
        `parsed`: the file's `read_header`, when the caller needed its identifiers first. With
        `consume` the file is handed over (moved into the store when possible). With
        `skip_stored` (imports run again) an instance already indexed with a blob of the same
        size is left as it is, whatever the duplicates policy. `digest`: the file's size and
        SHA-256 when whoever wrote it computed them on the way (it is not read again). Raises
        an OpenPacsError subclass, after which nothing of this instance is stored.
        """
        try:
            if parsed is None:
                parsed = parse_header(path, sop_class_uid=sop_class_uid, sop_uid=sop_uid)
            size, checksum = checked_digest(path, digest)
            if skip_stored:
                existing = self.index.instance(parsed.sop_uid)
                if existing is not None and existing.blob_size == size:
                    if consume:
                        _remove(path)
                    return StoreOutcome(
                        parsed.sop_uid, parsed.study_uid, stored=False, already_stored=True
                    )
        except BaseException:
            if consume:
                _remove(path)
            raise
        key = new_blob_key(parsed.study_uid)
        self.store.put_file(key, path, consume=consume)
        deferred = self.headers.defer  # serving: the whole header is built afterwards
        try:
            if deferred:
                header = parsed.summary()
                self.headers.keep(key, parsed)
            else:
                header = parsed.header()
            result = self.index.add_instance(
                header,
                blob_key=key,
                blob_size=size,
                blob_sha256=checksum,
                policy=self.duplicates,
                origin=origin,
            )
        except BaseException:
            self.headers.forget(key)
            self.discard_blob(key)
            raise
        if deferred:
            if result.stored:
                self.headers.due()
            else:
                self.headers.forget(key)
        if not result.stored:
            self.discard_blob(key)
        if result.replaced_blob:
            self.headers.forget(result.replaced_blob)
            self.discard_blob(result.replaced_blob)
        return StoreOutcome(header.sop_uid, header.study_uid, stored=result.stored)

    @staticmethod
    def read_header(path: Path) -> ParsedHeader:
        """Parse and check the Part 10 file at `path` as `store_file` does, for a caller that
        needs its identifiers before storing it (and passes the result on as `parsed`)."""
        return parse_header(path)

    def store_files(
        self,
        paths: Sequence[Path],
        *,
        consume: bool = False,
        skip_stored: bool = False,
        writers: Executor | None = None,
    ) -> list[StoreOutcome | OpenPacsError]:
        """Store several Part 10 files as `store_file` stores each one, sharing the durable
        writes (`archive.batch`): one outcome or refusal per file, in order. `writers`: the
        threads that write the blobs (this one without)."""
        from openpacs.archive.batch import store_files

        return store_files(self, paths, consume=consume, skip_stored=skip_stored, writers=writers)

    # -- reading: everything below goes through the visibility of this view -----------------

    def scoped(self, visibility: Visibility | None) -> Archive:
        """This archive as a user restricted to `visibility` sees it (None: everything).

        A view sharing every part of this archive: its reads (queries, listings, retrieval,
        single instances, totals, labels) show only visible studies, so what a restricted
        user may not see does not exist for them, whichever way they come in."""
        view = copy.copy(self)
        view.visibility = visibility
        return view

    def find(self, query: Query) -> list[Match]:
        return self.index.find(query, self.visibility)

    def instances_for(self, query: Query) -> list[StoredInstance]:
        return self.index.instances_for(query, self.visibility)

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
        text: str | None = None,
    ) -> Page:
        """A paged, sorted listing from the index columns (the REST API)."""
        if text or conditions:  # text search and conditions on other attributes read headers
            self.headers.settle_for_reading()
        return self.browser.page(
            level,
            conditions,
            sort=sort,
            descending=descending,
            limit=limit,
            offset=offset,
            cursor=cursor,
            label=label,
            text=text,
            visibility=self.visibility,
        )

    def labels(self, study_uid: str) -> list[str]:
        """The labels of a visible study; NotFound otherwise."""
        labels = self.index.labels(study_uid) if self._visible(study_uid) else None
        if labels is None:
            raise NotFound(f"no study {study_uid}")
        return labels

    def set_label(self, study_uid: str, label: str, present: bool) -> list[str]:
        """Add (`present`) or remove a label of a visible study; its labels after."""
        if not self._visible(study_uid) or not self.index.set_label(study_uid, label, present):
            raise NotFound(f"no study {study_uid}")
        return self.labels(study_uid)

    def _visible(self, study_uid: str) -> bool:
        if self.visibility is None:
            return True
        return bool(self.instances_for_uid(Level.STUDY, study_uid))

    def instances_for_uid(self, level: Level, uid: str) -> list[StoredInstance]:
        """The stored instances of one patient, study, series or instance."""
        query = Query(level, (unique_condition(level, uid),))
        return self.index.instances_for(query, self.visibility)

    def instance(self, sop_uid: str) -> StoredInstance | None:
        return self.index.instance(sop_uid, self.visibility)

    def open_local(self, instance: StoredInstance) -> AbstractContextManager[Path]:
        """A local path to the instance's Part 10 file for the duration of a with block."""
        return self.store.local_path(instance.blob_key)

    def stored_file(self, instance: StoredInstance) -> Path | None:
        """The instance's Part 10 file when the store keeps it as a local file, else None."""
        return self.store.file_path(instance.blob_key)

    def delete(self, level: Level, uid: str) -> int:
        """Delete a patient, study, series or instance; returns how many instances went.
        A restricted view deletes nothing it cannot see, and nothing at all of a patient
        with studies it cannot see."""
        if self.visibility is not None:
            visible = len(self.instances_for_uid(level, uid))
            if visible != len(self.scoped(None).instances_for_uid(level, uid)):
                if not visible:
                    raise NotFound(f"no {level.value.lower()} {uid}")
                raise PermissionDenied("some of it is not visible to you")
        blob_keys = self.index.delete(level, uid)
        for key in blob_keys:
            self.headers.forget(key)
            self.discard_blob(key)
        log.info("deleted level=%s instances=%d", level.value, len(blob_keys))
        return len(blob_keys)

    def totals(self) -> Totals:
        return self.index.totals(self.visibility)

    def close(self) -> None:
        self.jobs.close()  # hands unfinished jobs back while this server is still listed
        self.presence.stop()
        self.headers.stop()
        own = self.staging_dir()
        if own is not None:
            with suppress(OSError):  # not empty, or never made: the next sweep sees to it
                own.rmdir()
        self.audit.close()
        self.index.close()
        self.store.close()

    def discard_blob(self, key: str) -> None:
        """Delete a blob the index does not (or no longer) point at, logging a failure."""
        try:
            self.store.delete(key)
        except OpenPacsError as exc:
            # The index no longer points at it: at worst an orphan that verify reclaims.
            log.warning("could not delete blob key=%s reason=%s", key, exc.reason)


def new_blob_key(study_uid: str) -> str:
    """A fresh key in the study's folder: a study's instances sit together (one folder to
    create per study, not per instance), and a new key per write makes overwrites safe."""
    study = hashlib.sha1(study_uid.encode(), usedforsecurity=False).hexdigest()
    return f"{study[:2]}/{study[2:20]}/{uuid.uuid4().hex}.dcm"


def checked_digest(path: Path, digest: tuple[int, str] | None) -> tuple[int, str]:
    """The file's size and SHA-256: computed, or the caller's after a check of the size
    (a mismatch means the file is not what was received)."""
    if digest is None:
        with path.open("rb") as source:
            return _size_and_digest(source)
    size, checksum = digest
    if len(checksum) != 64 or any(c not in "0123456789abcdef" for c in checksum):
        raise InvalidInstance("the SHA-256 given with the file is not 64 lower-case hex digits")
    actual = path.stat().st_size
    if actual != size:
        raise InvalidInstance(f"the file has {actual} bytes, not the {size} received")
    return size, checksum


def _size_and_digest(source: io.BufferedReader) -> tuple[int, str]:
    return os.fstat(source.fileno()).st_size, hashlib.file_digest(source, "sha256").hexdigest()


def _remove(path: Path) -> None:
    with suppress(FileNotFoundError):
        path.unlink()
