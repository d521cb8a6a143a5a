"""The SQL index: add, find, list for retrieval and delete, one transaction per call.

One code path serves SQLite and PostgreSQL. Parents (patient, study, series) are created with
insert-if-absent on their unique key, so concurrent ingests of one study, in one process or in
several servers, converge on the same rows without process-local locks.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    Select,
    Table,
    bindparam,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from openpacs.archive.records import (
    AddResult,
    BlobRecord,
    DuplicatePolicy,
    IndexedBlob,
    Match,
    Origin,
    PendingHeader,
    StoredInstance,
    Totals,
    Visibility,
)
from openpacs.dicom.header import Header
from openpacs.dicom.levels import Level
from openpacs.dicom.query import Query
from openpacs.errors import DuplicateInstance, OpenPacsError, StoreUnavailable
from openpacs.grouping import GroupRunner, GroupTimeout
from openpacs.index import schema
from openpacs.index.finder import Finder, joined
from openpacs.index.schema import PENDING
from openpacs.index.transaction import Transactions
from openpacs.index.visibility import level_clause

log = logging.getLogger(__name__)

_TABLE = {
    Level.PATIENT: schema.patients,
    Level.STUDY: schema.studies,
    Level.SERIES: schema.series,
    Level.IMAGE: schema.instances,
}
_UID_COLUMN = {
    Level.PATIENT: "patient_id",
    Level.STUDY: "study_uid",
    Level.SERIES: "series_uid",
    Level.IMAGE: "sop_uid",
}
_PARENT_COLUMN = {Level.STUDY: "patient_pk", Level.SERIES: "study_pk", Level.IMAGE: "series_pk"}
_PARENT_LEVEL = {Level.STUDY: Level.PATIENT, Level.SERIES: Level.STUDY, Level.IMAGE: Level.SERIES}
T = TypeVar("T")
_AddRequest = tuple[Header, dict[str, Any], DuplicatePolicy, Origin]


def _institution(header: Header) -> str:
    """InstitutionName (0008,0080) of the header, or empty."""
    values = header.known.get("00080080", {}).get("Value") or [""]
    return str(values[0] or "")[:64]


def _duplicate(header: Header, policy: DuplicatePolicy) -> AddResult:
    if policy == "reject":
        raise DuplicateInstance(f"SOP instance {header.sop_uid} is already stored")
    return AddResult(stored=False)


def _request(
    header: Header, blob: BlobRecord, policy: DuplicatePolicy, origin: Origin | None
) -> _AddRequest:
    row = {
        **header.columns[Level.IMAGE],
        "transfer_syntax": header.transfer_syntax,
        "blob_key": blob.key,
        "blob_size": blob.size,
        "blob_sha256": blob.sha256,
        "header": _json_text(header.known),
        "header_ready": header.json is not None,
    }
    return header, row, policy, origin or Origin()


def _json_text(header_json: dict[str, Any]) -> str:
    return json.dumps(header_json, ensure_ascii=False, separators=(",", ":"))


_ANY_PENDING = select(schema.instances.c.pk).where(PENDING).limit(1)
_SETTLE_ATTEMPTS = 3


class Catalog:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._settle: Callable[[], None] | None = None
        self._dialect = engine.dialect.name
        self._tx = Transactions(engine, what="index", retry_conflicts=True)
        self._finder = Finder(self._dialect)
        # The ingest statements, built once: building and hashing a statement per instance
        # costs more than running it. Values travel as bound parameters.
        # A parent found is locked against deletion (FOR KEY SHARE, what a foreign key check
        # takes; SQLite ignores it, its writers being serial) until the instance under it is
        # committed: a study delete racing this store waits for it, or commits first and the
        # look-up finds nothing and inserts the parent again, instead of the insert failing
        # on a parent removed between look-up and insert, time after time under load.
        self._lookup = {
            level: select(table.c.pk)
            .where(table.c[_UID_COLUMN[level]] == bindparam("uid"))
            .with_for_update(read=True, key_share=True)
            for level, table in _TABLE.items()
        }
        self._insert = {
            level: self._insert_ignore(table).on_conflict_do_nothing(
                index_elements=[table.c[_UID_COLUMN[level]]]
            )
            for level, table in _TABLE.items()
        }
        self._insert_many = self._insert[Level.IMAGE]  # executemany: no RETURNING
        self._insert[Level.IMAGE] = self._insert[Level.IMAGE].returning(schema.instances.c.pk)
        # SQLite runs one writer at a time, each commit its own fsync: concurrent ingests
        # (several associations) share one transaction and one commit instead. PostgreSQL
        # runs their transactions in parallel and already flushes the WAL of commits that
        # coincide together; one batch there would serialise the work and add a savepoint's
        # round trips per instance, which measured slower.
        self._adds: GroupRunner[_AddRequest, AddResult] | None = (
            GroupRunner(self._add_batch) if self._dialect == "sqlite" else None
        )

    def close(self) -> None:
        self._engine.dispose()

    def _transaction(self, work: Callable[[Connection], T], *, write: bool) -> T:
        return self._tx.write(work) if write else self._tx.read(work)

    # -- ingest -------------------------------------------------------------------------

    def add_instance(
        self,
        header: Header,
        *,
        blob_key: str,
        blob_size: int,
        blob_sha256: str,
        policy: DuplicatePolicy,
        origin: Origin | None = None,
    ) -> AddResult:
        """Index one stored blob; the caller deletes the blob if this raises. `origin`: the
        AE titles of the C-STORE, recorded on a new study.

        Returns once the instance is committed. On SQLite, calls arriving from other threads
        while a commit is under way are committed together in the next transaction (group
        commit)."""
        request = _request(header, BlobRecord(blob_key, blob_size, blob_sha256), policy, origin)
        if self._adds is None:
            return self._transaction(lambda conn: self._add(conn, *request), write=True)
        try:
            return self._adds.run(request)
        except GroupTimeout as exc:
            raise StoreUnavailable(f"the index is unavailable: {exc}") from exc

    def add_instances(
        self,
        instances: Sequence[tuple[Header, BlobRecord]],
        *,
        policy: DuplicatePolicy,
        origin: Origin | None = None,
    ) -> list[AddResult | BaseException]:
        """Index several stored blobs in one transaction (a bulk import's batch), each in a
        savepoint of its own: one result per instance, in order, an instance refused by the
        policy or failing alone getting its exception. Returns once all are committed."""
        requests = [_request(header, blob, policy, origin) for header, blob in instances]
        return self._add_batch(requests)

    def stored_sizes(self, sop_uids: Sequence[str]) -> dict[str, int]:
        """The blob size of each of these SOP Instances that is indexed, in one query."""
        i = schema.instances
        statement = select(i.c.sop_uid, i.c.blob_size).where(i.c.sop_uid.in_(set(sop_uids)))

        def work(conn: Connection) -> dict[str, int]:
            return {row.sop_uid: int(row.blob_size) for row in conn.execute(statement)}

        return self._transaction(work, write=False) if sop_uids else {}

    def _add_batch(self, requests: Sequence[_AddRequest]) -> list[AddResult | BaseException]:
        """One transaction for the batch (`_add_many`), an instance refused by the policy
        failing alone. A failure that ends the transaction (after its retries) sends each
        instance through a transaction of its own instead, so it fails only the instance
        that causes it."""
        if len(requests) > 1:
            try:
                return self._transaction(lambda conn: self._add_many(conn, requests), write=True)
            except Exception as exc:
                log.warning(
                    "group commit of %d instances failed (%s): one by one", len(requests), exc
                )
        return [self._add_alone(request) for request in requests]

    def _add_many(
        self, conn: Connection, requests: Sequence[_AddRequest]
    ) -> list[AddResult | BaseException]:
        """The batch's new instances in one multi-row insert-if-absent, their series found
        or created once each; the instances it did not insert (already indexed, or twice in
        the batch) then one by one, each in a savepoint of its own, as the policy says."""
        series: dict[str, int] = {}
        for header, _, _, origin in requests:
            if header.series_uid not in series:
                series[header.series_uid] = self._series_pk(conn, header, origin)
        now = datetime.now(UTC).isoformat()
        rows = [
            {**row, "series_pk": series[header.series_uid], "created_at": now}
            for header, row, _, _ in requests
        ]
        conn.execute(self._insert_many, rows)
        keys = [row["blob_key"] for row in rows]
        i = schema.instances
        inserted = set(conn.execute(select(i.c.blob_key).where(i.c.blob_key.in_(keys))).scalars())
        return [
            AddResult(stored=True)
            if row["blob_key"] in inserted
            else self._add_guarded(conn, request)
            for row, request in zip(rows, requests, strict=True)
        ]

    def _add_guarded(self, conn: Connection, request: _AddRequest) -> AddResult | BaseException:
        try:
            with conn.begin_nested():
                return self._add(conn, *request)
        except OpenPacsError as exc:
            return exc

    def _add_alone(self, request: _AddRequest) -> AddResult | BaseException:
        try:
            return self._transaction(lambda conn: self._add(conn, *request), write=True)
        except Exception as exc:
            return exc

    def _add(
        self,
        conn: Connection,
        header: Header,
        row: dict[str, Any],
        policy: DuplicatePolicy,
        origin: Origin,
    ) -> AddResult:
        """Insert-if-absent down the hierarchy; the common case (a new instance of a known
        series) costs one look-up and one insert."""
        instances = schema.instances
        series_pk = self._series_pk(conn, header, origin)
        row = {**row, "series_pk": series_pk, "created_at": datetime.now(UTC).isoformat()}
        inserted = conn.execute(self._insert[Level.IMAGE], row).first()
        if inserted is not None:
            return AddResult(stored=True)
        if policy != "overwrite":
            return _duplicate(header, policy)
        existing = conn.execute(
            select(instances.c.pk, instances.c.blob_key, instances.c.series_pk).where(
                instances.c.sop_uid == header.sop_uid
            )
        ).one()
        conn.execute(update(instances).where(instances.c.pk == existing.pk).values(row))
        if existing.series_pk != series_pk:
            self._prune_upwards(conn, Level.SERIES, existing.series_pk)
        self._refresh_parents(conn, header, series_pk)
        return AddResult(stored=True, replaced_blob=existing.blob_key)

    def _refresh_parents(self, conn: Connection, header: Header, series_pk: int) -> None:
        """An overwriting copy is the truth for its series', study's and patient's indexed
        attributes too, so that nothing of the replaced copy is still matched on."""
        series, studies, patients = schema.series, schema.studies, schema.patients
        columns = header.columns
        conn.execute(update(series).where(series.c.pk == series_pk).values(columns[Level.SERIES]))
        study_pk = conn.execute(
            select(series.c.study_pk).where(series.c.pk == series_pk)
        ).scalar_one()
        conn.execute(update(studies).where(studies.c.pk == study_pk).values(columns[Level.STUDY]))
        patient = columns[Level.PATIENT]
        conn.execute(
            update(patients)
            .where(
                patients.c.pk
                == select(studies.c.patient_pk).where(studies.c.pk == study_pk).scalar_subquery(),
                patients.c.patient_id == patient["patient_id"],
            )
            .values(patient)
        )

    def _series_pk(self, conn: Connection, header: Header, origin: Origin) -> int:
        found = conn.execute(self._lookup[Level.SERIES], {"uid": header.series_uid}).scalar()
        if found is not None:
            return int(found)
        now = datetime.now(UTC).isoformat()
        columns = header.columns
        patient_pk = self._ensure(conn, Level.PATIENT, columns[Level.PATIENT], None, now)
        study = {
            **columns[Level.STUDY],
            "institution_name": _institution(header),
            "source_aet": origin.calling_aet[:16],
            "received_aet": origin.called_aet[:16],
        }
        study_pk = self._ensure(conn, Level.STUDY, study, patient_pk, now)
        return self._ensure(conn, Level.SERIES, columns[Level.SERIES], study_pk, now)

    def _ensure(
        self,
        conn: Connection,
        level: Level,
        values: dict[str, Any],
        parent_pk: int | None,
        now: str,
    ) -> int:
        """The pk of the row with this level's unique key, inserted if absent."""
        lookup = self._lookup[level]
        uid = {"uid": values[_UID_COLUMN[level]]}
        found = conn.execute(lookup, uid).scalar()
        if found is not None:
            return int(found)
        row = {**values, "created_at": now}
        if parent_pk is not None:
            row[_PARENT_COLUMN[level]] = parent_pk
        conn.execute(self._insert[level], row)
        return int(conn.execute(lookup, uid).scalar_one())

    def _insert_ignore(self, table: Table) -> Any:
        if self._dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    # -- headers built after ingest -----------------------------------------------------

    def pending_headers(
        self, limit: int, *, after: int = 0, upto: int | None = None
    ) -> list[PendingHeader]:
        """Instances indexed with a summary whose whole header is not built yet, in key
        order after `after` and up to `upto` (the last pending when None: the caller then
        settles what was pending when it started, not what keeps arriving)."""
        i = schema.instances

        def work(conn: Connection) -> list[PendingHeader]:
            ceiling = upto
            if ceiling is None:
                ceiling = conn.execute(select(func.max(i.c.pk)).where(PENDING)).scalar()
                if ceiling is None:
                    return []
            statement = (
                select(i.c.pk, i.c.blob_key)
                .where(PENDING, i.c.pk > after, i.c.pk <= ceiling)
                .order_by(i.c.pk)
                .limit(limit)
            )
            return [
                PendingHeader(row.pk, row.blob_key, int(ceiling)) for row in conn.execute(statement)
            ]

        return self._transaction(work, write=False)

    def fill_headers(self, headers: dict[str, dict[str, Any] | None]) -> None:
        """Store the whole headers built for pending instances, by blob key; None keeps the
        summary as the instance's header (its blob could not be read). An instance deleted
        or overwritten meanwhile has another blob key, or none, and is left alone."""
        i = schema.instances
        fill = (
            update(i)
            .where(i.c.blob_key == bindparam("key"), PENDING)
            .values(header=bindparam("text"), header_ready=True)
        )
        keep = update(i).where(i.c.blob_key == bindparam("key"), PENDING).values(header_ready=True)

        def work(conn: Connection) -> None:
            built = [{"key": k, "text": _json_text(h)} for k, h in headers.items() if h is not None]
            kept = [{"key": k} for k, h in headers.items() if h is None]
            if built:
                conn.execute(fill, built)
            if kept:
                conn.execute(keep, kept)

        if headers:
            self._transaction(work, write=True)

    # -- queries --------------------------------------------------------------------------

    def settle_with(self, settle: Callable[[], None]) -> None:
        """Have `find` call `settle` first when an instance's whole header is pending."""
        self._settle = settle

    def find(self, query: Query, visibility: Visibility | None = None) -> list[Match]:
        """The matches of `query`, answered from whole headers: when an instance is pending
        (`pending_headers`), the settle callback builds them first. The check is one
        statement of the query's own transaction, on an index of the pending rows only."""

        def work(conn: Connection) -> list[Match] | None:
            if self._settle is not None and conn.execute(_ANY_PENDING).first() is not None:
                return None
            return self._finder.find(conn, query, visibility)

        for _ in range(_SETTLE_ATTEMPTS):
            found = self._transaction(work, write=False)
            if found is not None:
                return found
            self._settle()  # type: ignore[misc]
        # Still pending (what could not be built is logged by the settle callback).
        return self._transaction(
            lambda conn: self._finder.find(conn, query, visibility), write=False
        )

    def instances_for(
        self, query: Query, visibility: Visibility | None = None
    ) -> list[StoredInstance]:
        """The stored instances at and below whatever the query's unique keys select."""
        return self._transaction(
            lambda conn: self._finder.instances(conn, query, visibility), write=False
        )

    def instance(self, sop_uid: str, visibility: Visibility | None = None) -> StoredInstance | None:
        return self._transaction(
            lambda conn: self._finder.instance(conn, sop_uid, visibility), write=False
        )

    # -- labels ---------------------------------------------------------------------------

    def labels(self, study_uid: str) -> list[str] | None:
        """The study's labels, sorted; None when there is no such study."""
        st, labels = schema.studies, schema.study_labels

        def work(conn: Connection) -> list[str] | None:
            pk = conn.execute(select(st.c.pk).where(st.c.study_uid == study_uid)).scalar()
            if pk is None:
                return None
            statement = select(labels.c.label).where(labels.c.study_pk == pk)
            return sorted(conn.execute(statement).scalars())

        return self._transaction(work, write=False)

    def set_label(self, study_uid: str, label: str, present: bool) -> bool:
        """Add or remove a label; False when there is no such study."""
        st, labels = schema.studies, schema.study_labels

        def work(conn: Connection) -> bool:
            pk = conn.execute(select(st.c.pk).where(st.c.study_uid == study_uid)).scalar()
            if pk is None:
                return False
            if present:
                row = {"study_pk": pk, "label": label, "created_at": datetime.now(UTC).isoformat()}
                insert = self._insert_ignore(labels).on_conflict_do_nothing(
                    index_elements=[labels.c.study_pk, labels.c.label]
                )
                conn.execute(insert, row)
            else:
                conn.execute(delete(labels).where(labels.c.study_pk == pk, labels.c.label == label))
            return True

        return self._transaction(work, write=True)

    def iter_blobs(self, batch: int = 1000) -> Iterator[IndexedBlob]:
        """Every instance's blob, in pages (one short transaction each)."""
        i = schema.instances
        after = 0
        while True:
            statement = (
                select(i.c.pk, i.c.sop_uid, i.c.blob_key, i.c.blob_size, i.c.blob_sha256)
                .where(i.c.pk > after)
                .order_by(i.c.pk)
                .limit(batch)
            )
            rows = self._read_rows(statement)
            if not rows:
                return
            for row in rows:
                yield IndexedBlob(row.sop_uid, row.blob_key, row.blob_size, row.blob_sha256)
            after = rows[-1].pk

    def _read_rows(self, statement: Select[Any]) -> list[Row[Any]]:
        return self._transaction(lambda conn: list(conn.execute(statement)), write=False)

    def all_blob_keys(self) -> set[str]:
        return self._transaction(
            lambda conn: set(conn.execute(select(schema.instances.c.blob_key)).scalars()),
            write=False,
        )

    def totals(self, visibility: Visibility | None = None) -> Totals:
        def count(conn: Connection) -> Totals:
            if visibility is not None:
                return self._visible_totals(conn, visibility)
            patients, studies, series, instances = (
                int(conn.execute(select(func.count()).select_from(table)).scalar_one())
                for table in schema.LEVEL_TABLES
            )
            size = conn.execute(select(func.coalesce(func.sum(schema.instances.c.blob_size), 0)))
            return Totals(patients, studies, series, instances, bytes=int(size.scalar_one()))

        return self._transaction(count, write=False)

    def _visible_totals(self, conn: Connection, visibility: Visibility) -> Totals:
        patients, studies, series, instances = (
            int(
                conn.execute(
                    select(func.count())
                    .select_from(joined(level))
                    .where(level_clause(level, visibility))
                ).scalar_one()
            )
            for level in Level
        )
        size = select(func.coalesce(func.sum(schema.instances.c.blob_size), 0)).select_from(
            joined(Level.IMAGE)
        )
        total = conn.execute(size.where(level_clause(Level.IMAGE, visibility))).scalar_one()
        return Totals(patients, studies, series, instances, bytes=int(total))

    # -- delete ---------------------------------------------------------------------------

    def delete(self, level: Level, uid: str) -> list[str]:
        """Remove an entity and everything below it; returns the blob keys to delete.

        The keys come from the same transaction that removes the rows, so an instance a
        racing store added to the entity is either deleted with its blob or left whole.
        """
        return self._transaction(lambda conn: self._delete(conn, level, uid), write=True)

    def _delete(self, conn: Connection, level: Level, uid: str) -> list[str]:
        table = _TABLE[level]
        pk = conn.execute(
            select(table.c.pk).where(table.c[_UID_COLUMN[level]] == uid).with_for_update()
        ).scalar()
        if pk is None:
            return []
        self._lock_below(conn, level, int(pk))
        blob_keys = list(conn.execute(self._finder.blob_keys_below(level, int(pk))).scalars())
        self._delete_below(conn, level, int(pk))
        parent_pk = self._parent_of(conn, level, int(pk))
        if level is Level.STUDY:
            _drop_labels(conn, [int(pk)])
        conn.execute(delete(table).where(table.c.pk == pk))
        if parent_pk is not None:
            self._prune_upwards(conn, _PARENT_LEVEL[level], parent_pk)
        return blob_keys

    def _lock_below(self, conn: Connection, level: Level, pk: int) -> None:
        """Lock the studies and series under `pk` (PostgreSQL; SQLite's writers are serial)
        before reading what to delete: a store that found one of them holds it until its
        instance is committed, so the delete waits and then sees that instance, and a store
        that looks one up later waits for the delete and finds it gone. Without the locks a
        store committing in between made the delete fail on its foreign key."""
        if self._dialect != "postgresql" or level is Level.IMAGE:
            return
        series, studies = schema.series, schema.studies
        study_pks = select(studies.c.pk).where(studies.c.patient_pk == pk)
        if level is Level.PATIENT:
            conn.execute(study_pks.with_for_update())
            conn.execute(
                select(series.c.pk).where(series.c.study_pk.in_(study_pks)).with_for_update()
            )
        elif level is Level.STUDY:
            conn.execute(select(series.c.pk).where(series.c.study_pk == pk).with_for_update())

    def _delete_below(self, conn: Connection, level: Level, pk: int) -> None:
        series_pks = select(schema.series.c.pk)
        study_pks = select(schema.studies.c.pk)
        if level is Level.PATIENT:
            study_pks = study_pks.where(schema.studies.c.patient_pk == pk)
            series_pks = series_pks.where(schema.series.c.study_pk.in_(study_pks))
        elif level is Level.STUDY:
            series_pks = series_pks.where(schema.series.c.study_pk == pk)
        elif level is Level.SERIES:
            series_pks = series_pks.where(schema.series.c.pk == pk)
        else:
            return
        conn.execute(delete(schema.instances).where(schema.instances.c.series_pk.in_(series_pks)))
        if level is not Level.SERIES:
            conn.execute(delete(schema.series).where(schema.series.c.pk.in_(series_pks)))
        if level is Level.PATIENT:
            _drop_labels(conn, list(conn.execute(study_pks).scalars()))
            conn.execute(delete(schema.studies).where(schema.studies.c.pk.in_(study_pks)))

    def _parent_of(self, conn: Connection, level: Level, pk: int) -> int | None:
        if level is Level.PATIENT:
            return None
        table = _TABLE[level]
        parent: int | None = conn.execute(
            select(table.c[_PARENT_COLUMN[level]]).where(table.c.pk == pk)
        ).scalar_one()
        return parent

    def _prune_upwards(self, conn: Connection, level: Level, pk: int) -> None:
        """Delete `pk` at `level` and its ancestors while they have no children left."""
        current: Level | None = level
        current_pk: int | None = pk
        while current is not None and current_pk is not None:
            child_level = _CHILD_LEVEL.get(current)
            if child_level is not None:
                child = _TABLE[child_level]
                has_child = conn.execute(
                    select(child.c.pk)
                    .where(child.c[_PARENT_COLUMN[child_level]] == current_pk)
                    .limit(1)
                ).first()
                if has_child is not None:
                    return
            parent_pk = self._parent_of(conn, current, current_pk)
            if current is Level.STUDY:
                _drop_labels(conn, [current_pk])
            conn.execute(delete(_TABLE[current]).where(_TABLE[current].c.pk == current_pk))
            current, current_pk = _PARENT_LEVEL.get(current), parent_pk


_CHILD_LEVEL = {Level.PATIENT: Level.STUDY, Level.STUDY: Level.SERIES, Level.SERIES: Level.IMAGE}


def _drop_labels(conn: Connection, study_pks: list[int]) -> None:
    if study_pks:
        labels = schema.study_labels
        conn.execute(delete(labels).where(labels.c.study_pk.in_(study_pks)))
