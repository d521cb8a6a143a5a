"""Read queries over the catalog: matching, computed keys and stored headers.

A find runs one query over the level's table joined to its ancestors, with every condition on
an indexed key rendered to SQL. Computed counts and lists and headers are then fetched in a
few batched queries for the matched rows only, never one query per row. Conditions on
attributes that are not columns are evaluated on the stored header of a representative
instance (the first stored of the entity), with the same semantics as SQL matching, over
candidates read in bounded batches until the page is full.

The REST browse and the catalog build on the public part: `Finder.where` (a query's
conditions in SQL), `Finder.computed`, `table_of`, `joined` and `indexed_columns`.
"""

from __future__ import annotations

import functools
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    Label,
    Select,
    Table,
    bindparam,
    distinct,
    exists,
    func,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB

from openpacs.archive.records import Match, StoredInstance, Visibility
from openpacs.dicom.levels import COMPUTED, COMPUTED_KEYS, INDEXED_KEYS, Level, computed_of
from openpacs.dicom.matching import header_matches
from openpacs.dicom.query import Condition, Query, keyword_of, tag_of
from openpacs.dicom.unique_keys import unique_condition
from openpacs.index import schema
from openpacs.index.header_sql import header_clause
from openpacs.index.matching_sql import condition_clause
from openpacs.index.text_search import instance_clause, words
from openpacs.index.visibility import level_clause, study_clause

_BATCH = 500
_FIRST_BATCH = 50
_TABLE = {
    Level.PATIENT: schema.patients,
    Level.STUDY: schema.studies,
    Level.SERIES: schema.series,
    Level.IMAGE: schema.instances,
}
# Each level's link to its parent row.
_PARENT = {
    Level.STUDY: schema.studies.c.patient_pk,
    Level.SERIES: schema.series.c.study_pk,
    Level.IMAGE: schema.instances.c.series_pk,
}


@dataclass(frozen=True)
class Where:
    """A query's conditions as SQL on its level's rows (`Finder.where`).

    `clauses` select the rows; `on_header` are the conditions on attributes that are not
    columns, which the clauses only narrow to entities with some instance that meets them
    (so a find decides them on the representative instance's header); `unrendered` are those
    SQL cannot even narrow."""

    clauses: tuple[Any, ...]
    on_header: tuple[Condition, ...]
    unrendered: tuple[Condition, ...]


def table_of(level: Level) -> Table:
    """The table of the level's entities."""
    return _TABLE[level]


def joined(level: Level) -> Any:
    """The level's table joined to the tables of every level above it."""
    p, st, se, i = schema.patients, schema.studies, schema.series, schema.instances
    source: Any = p
    if level.depth >= Level.STUDY.depth:
        source = st.join(p, st.c.patient_pk == p.c.pk)
    if level.depth >= Level.SERIES.depth:
        source = se.join(source, se.c.study_pk == st.c.pk)
    if level.depth >= Level.IMAGE.depth:
        source = i.join(source, i.c.series_pk == se.c.pk)
    return source


class Finder:
    def __init__(self, dialect: str) -> None:
        self._dialect = dialect

    def find(
        self, conn: Connection, query: Query, visibility: Visibility | None = None
    ) -> list[Match]:
        level = query.level
        table = _TABLE[level]
        columns = indexed_columns(level)
        statement = select(table.c.pk.label("_pk"), *columns).select_from(joined(level))
        visible = level_clause(level, visibility)
        if visible is not None:
            statement = statement.where(visible)
        compiled = self.where(level, query.conditions)
        post = compiled.on_header
        statement = statement.where(*compiled.clauses).order_by(table.c.pk)
        from_header = [t for t in query.return_tags if keyword_of(t) not in _FROM_INDEX]
        needs_header = bool(post) or bool(from_header) or query.whole_headers
        elements = _elements(query, from_header, post)
        if post:
            rows, headers = self._post_filtered(conn, level, statement, post, query, elements)
        else:
            statement = statement.offset(query.offset or None).limit(query.limit)
            rows = [row._asdict() for row in conn.execute(statement)]
            pks = [r["_pk"] for r in rows]
            headers = self._headers(conn, level, pks, elements) if needs_header else {}
        wanted = set(query.return_keywords)
        listed = self.computed(conn, level, [r["_pk"] for r in rows], wanted, visibility)
        return [
            Match(
                level=level,
                values={**_without_pk(row), **listed.get(row["_pk"], {})},
                header=headers.get(row["_pk"]) if needs_header else None,
            )
            for row in rows
        ]

    def _post_filtered(
        self,
        conn: Connection,
        level: Level,
        statement: Select[Any],
        post: Sequence[Condition],
        query: Query,
        elements: tuple[str, ...] | None,
    ) -> tuple[list[dict[str, Any]], dict[int, Any]]:
        """The page of rows whose headers also meet `post`: candidates are read in batches
        in key order (each a LIMIT query seeking past the last key), their headers loaded and
        checked batch by batch, and reading stops once the page is full, so a page costs the
        candidates in front of it, never every candidate. The first batch is the page's size
        (SQL has usually narrowed the candidates to matches already), and each next one
        doubles, up to `_BATCH`."""
        table = _TABLE[level]
        end = None if query.limit is None else query.offset + query.limit
        rows: list[dict[str, Any]] = []
        headers: dict[int, Any] = {}
        matched = 0
        last: int | None = None
        size = _BATCH if end is None else min(_BATCH, max(end, _FIRST_BATCH))
        while end is None or matched < end:
            batch_query = statement if last is None else statement.where(table.c.pk > last)
            batch = [row._asdict() for row in conn.execute(batch_query.limit(size))]
            if not batch:
                break
            last = batch[-1]["_pk"]
            batch_headers = self._headers(conn, level, [r["_pk"] for r in batch], elements)
            for row in batch:
                header = batch_headers.get(row["_pk"], {})
                if not header_matches(header, post):
                    continue
                matched += 1
                if matched > query.offset:
                    rows.append(row)
                    headers[row["_pk"]] = header
                if end is not None and matched >= end:
                    break
            if len(batch) < size:
                break
            size = min(_BATCH, 2 * size)
        return rows, headers

    def where(self, level: Level, conditions: Iterable[Condition]) -> Where:
        """The conditions of a query at `level` in SQL: indexed keys on their columns, a
        matchable computed key on the rows below, any other attribute on stored headers; a
        key of a lower level than the query's is no matching key there (PS3.4 C.4.1.2.1)."""
        clauses: list[Any] = []
        on_header: list[Condition] = []
        unrendered: list[Condition] = []
        for condition in conditions:
            clause = self._clause(level, condition)
            if clause is None:
                on_header.append(condition)
                clause = self.header_condition(level, condition)
                if clause is None:
                    unrendered.append(condition)
            if clause is not None and clause is not True:
                clauses.append(clause)
        return Where(tuple(clauses), tuple(on_header), tuple(unrendered))

    def header_condition(self, level: Level, condition: Condition) -> Any:
        """SQL for a condition on a stored header attribute: the entity has an instance whose
        header meets it (`openpacs.index.header_sql`); None when SQL cannot render it."""
        clause = header_clause(schema.instances.c.header, condition, self._dialect)
        return None if clause is None else _any_instance(level, clause)

    def text_condition(self, level: Level, query: str) -> Any:
        """SQL for a free-text query (`openpacs.index.text_search`): the entity has an
        instance with a header value word starting with each word; None for no words."""
        found = words(query)
        if not found:
            return None
        return _any_instance(level, instance_clause(found, self._dialect))

    def _clause(self, level: Level, condition: Condition) -> Any:
        """SQL for a condition; None to evaluate it on headers; True to ignore it."""
        computed = COMPUTED.get(condition.keyword)
        if computed is not None and computed.matchable and computed.lists is not None:
            if computed.level is not level:
                return True
            listed = INDEXED_KEYS[computed.lists]
            tag = int(tag_of(listed.keyword))
            below = Condition(listed.keyword, tag, listed.kind, condition.alternatives)
            clause = condition_clause(_TABLE[listed.level], below, self._dialect)
            return _exists_below(level, listed.level, clause)
        key = INDEXED_KEYS.get(condition.keyword)
        if key is None:
            return None
        if key.level.depth > level.depth:
            return True  # a key of a lower level: not a matching key here (PS3.4 C.4.1.2.1)
        return condition_clause(_TABLE[key.level], condition, self._dialect)

    def _headers(
        self,
        conn: Connection,
        level: Level,
        pks: Sequence[int],
        elements: tuple[str, ...] | None = None,
    ) -> dict[int, Any]:
        """The header of the first stored instance of each entity: `elements` of it (hex
        tags) read by the database, or the whole of it when None."""
        i, se, st = schema.instances, schema.series, schema.studies
        owner = {
            Level.IMAGE: i.c.pk,
            Level.SERIES: i.c.series_pk,
            Level.STUDY: se.c.study_pk,
            Level.PATIENT: st.c.patient_pk,
        }[level]
        source: Any = i  # joined only as far up as the owner's column
        if level in (Level.STUDY, Level.PATIENT):
            source = i.join(se, i.c.series_pk == se.c.pk)
        if level is Level.PATIENT:
            source = source.join(st, se.c.study_pk == st.c.pk)
        first: dict[int, int] = {}
        for chunk in _chunks(pks):
            statement = (
                select(owner, func.min(i.c.pk))
                .select_from(source)
                .where(owner.in_(chunk))
                .group_by(owner)
            )
            first.update({int(o): int(p) for o, p in conn.execute(statement)})
        columns = [i.c.header] if elements is None else [self._element(t) for t in elements]
        by_instance: dict[int, Any] = {}
        for chunk in _chunks(list(first.values())):
            for pk, *values in conn.execute(select(i.c.pk, *columns).where(i.c.pk.in_(chunk))):
                if elements is None:
                    by_instance[int(pk)] = json.loads(values[0])
                else:
                    by_instance[int(pk)] = {
                        tag: _json(value)
                        for tag, value in zip(elements, values, strict=True)
                        if value is not None
                    }
        return {o: by_instance[p] for o, p in first.items() if p in by_instance}

    def _element(self, tag: str) -> Any:
        """One top-level element of an instance's stored header, read by the database (a few
        elements of a header of hundreds: no whole header crosses to Python and is parsed)."""
        if not _HEX_TAG.fullmatch(tag):  # written inline below: eight hex digits only
            raise ValueError(f"not a tag: {tag!r}")
        if self._dialect == "postgresql":
            document = literal_column(f"{schema.instances.name}.{schema.HEADER_JSONB}", JSONB)
            return document.op("->")(literal_column(f"'{tag}'")).label(f"e{tag}")
        path: Any = literal_column(f"'$.\"{tag}\"'")
        return func.json_extract(schema.instances.c.header, path).label(f"e{tag}")

    def computed(
        self,
        conn: Connection,
        level: Level,
        pks: Sequence[int],
        wanted: set[str],
        visibility: Visibility | None = None,
    ) -> dict[int, dict[str, Any]]:
        """The computed keys in `wanted` of the level's rows `pks`: one grouped query per batch
        for the counts, one per list key. (Counts as subqueries correlated with each row let
        PostgreSQL misjudge them as a scan of every instance per row.)"""
        result = self._listed(conn, level, pks, wanted)
        counted = tuple(
            sorted(k.keyword for k in computed_of(level) if k.counts and k.keyword in wanted)
        )
        if not counted or not pks:
            return result
        statement = _count_statement(level, counted, visibility)
        for chunk in _chunks(pks):
            for pk in chunk:
                result[pk].update(dict.fromkeys(counted, 0))
            for row in conn.execute(statement, {"owners": chunk}):
                values = row._asdict()
                result[int(values.pop("_owner"))].update(values)
        return result

    def _listed(
        self, conn: Connection, level: Level, pks: Sequence[int], wanted: set[str]
    ) -> dict[int, dict[str, Any]]:
        """The list-valued computed keys (ModalitiesInStudy, SOPClassesInStudy) of `pks`,
        sorted and without empty values, in one query per key and batch."""
        requested = [k.keyword for k in computed_of(level) if k.lists and k.keyword in wanted]
        result: dict[int, dict[str, Any]] = defaultdict(dict)
        if not requested or not pks:
            return result
        for chunk in _chunks(pks):
            for keyword in requested:
                statement = _listed_statement(keyword)
                for owner_pk, value in conn.execute(statement, {"owners": chunk}):
                    if value:
                        result[int(owner_pk)].setdefault(keyword, []).append(value)
                for pk in chunk:
                    result[pk].setdefault(keyword, [])
        return result

    def instances(
        self, conn: Connection, query: Query, visibility: Visibility | None = None
    ) -> list[StoredInstance]:
        i, se, st = schema.instances, schema.series, schema.studies
        statement: Select[Any] = select(
            i.c.sop_uid,
            i.c.sop_class_uid,
            i.c.transfer_syntax,
            i.c.blob_key,
            i.c.blob_size,
            st.c.study_uid,
            se.c.series_uid,
        ).select_from(joined(Level.IMAGE))
        visible = level_clause(Level.IMAGE, visibility)
        if visible is not None:
            statement = statement.where(visible)
        for condition in query.conditions:
            clause = self._clause(Level.IMAGE, condition)
            if clause is not None and clause is not True:
                statement = statement.where(clause)
        statement = statement.order_by(st.c.pk, se.c.series_number, se.c.pk, i.c.instance_number)
        return [StoredInstance(**row._asdict()) for row in conn.execute(statement)]

    def instance(
        self, conn: Connection, sop_uid: str, visibility: Visibility | None = None
    ) -> StoredInstance | None:
        query = Query(Level.IMAGE, conditions=(unique_condition(Level.IMAGE, sop_uid),))
        found = self.instances(conn, query, visibility)
        return found[0] if found else None

    def blob_keys_below(self, level: Level, pk: int) -> Select[Any]:
        owner = {
            Level.PATIENT: schema.studies.c.patient_pk,
            Level.STUDY: schema.series.c.study_pk,
            Level.SERIES: schema.instances.c.series_pk,
            Level.IMAGE: schema.instances.c.pk,
        }[level]
        return (
            select(schema.instances.c.blob_key).select_from(joined(Level.IMAGE)).where(owner == pk)
        )


@functools.cache
def _listed_statement(keyword: str) -> Select[Any]:
    """The distinct values of a study's list key (over its series that hold instances), for
    the study keys bound as `owners`; built once, since only the keys change."""
    se, i = schema.series, schema.instances
    listed = INDEXED_KEYS[str(COMPUTED[keyword].lists)]
    value_column = _TABLE[listed.level].c[listed.column]
    return (
        select(se.c.study_pk, value_column)
        .select_from(i.join(se, i.c.series_pk == se.c.pk))
        .where(se.c.study_pk.in_(bindparam("owners", expanding=True)))
        .distinct()
        .order_by(se.c.study_pk, value_column)
    )


@functools.cache
def indexed_columns(level: Level) -> tuple[Label[Any], ...]:
    """The indexed keys of the level and its ancestors, labelled with their keywords."""
    keys = [k for k in INDEXED_KEYS.values() if k.level.depth <= level.depth]
    return tuple(_TABLE[k.level].c[k.column].label(k.keyword) for k in keys)


@functools.cache
def _count_statement(
    level: Level, keywords: tuple[str, ...], visibility: Visibility | None = None
) -> Select[Any]:
    """The count keys of the entities bound as `owners`, grouped: the entities below that
    hold at least one instance (the hierarchy joined down to its instances); a patient's
    counts take only the studies `visibility` shows (below a visible study all is visible)."""
    if level is not Level.PATIENT:
        visibility = None
    st, se, i = schema.studies, schema.series, schema.instances
    source: Any = i
    owner = i.c.series_pk
    if level is not Level.SERIES:
        source = i.join(se, i.c.series_pk == se.c.pk)
        owner = se.c.study_pk
    if level is Level.PATIENT:
        source = source.join(st, se.c.study_pk == st.c.pk)
        owner = st.c.patient_pk
    counts = [_count(COMPUTED[k].counts).label(k) for k in keywords]
    statement = (
        select(owner.label("_owner"), *counts)
        .select_from(source)
        .where(owner.in_(bindparam("owners", expanding=True)))
        .group_by(owner)
    )
    if visibility is not None:
        statement = statement.where(study_clause(visibility))
    return statement


def _count(counted: Level | None) -> Any:
    """The count of the entities of `counted` among grouped rows joined down to instances:
    every row is one instance, and the levels above repeat."""
    if counted is Level.IMAGE:
        return func.count()
    if counted is None:
        raise ValueError("not a count")
    return func.count(distinct(_TABLE[counted].c.pk))


def _any_instance(level: Level, clause: Any) -> Any:
    """`clause` on instances as a condition on the level's rows: an instance meets it."""
    return _exists_below(level, Level.IMAGE, clause)


def _exists_below(level: Level, below: Level, clause: Any) -> Any:
    """`clause` on the rows of the level `below` as a condition on the level's rows: a row
    below meets it."""
    if below is level:
        return clause
    source: Any = _TABLE[below]
    owner = _PARENT[below]
    upper = [up for up in Level if level.depth < up.depth < below.depth]
    for parent in reversed(upper):
        source = source.join(_TABLE[parent], owner == _TABLE[parent].c.pk)
        owner = _PARENT[parent]
    return exists(select(1).select_from(source).where(owner == _TABLE[level].c.pk, clause))


_FROM_INDEX = frozenset(INDEXED_KEYS) | frozenset(COMPUTED_KEYS)
# More header elements than this read at once: the whole header is cheaper to fetch.
_MAX_ELEMENTS = 32
_SPECIFIC_CHARACTER_SET = "00080005"
_HEX_TAG = re.compile(r"[0-9A-F]{8}")


def _elements(
    query: Query, from_header: Sequence[int], post: Sequence[Condition]
) -> tuple[str, ...] | None:
    """The header elements the matches of `query` read (hex tags): the return keys the index
    does not hold and the attributes of the conditions left to headers, with the character
    set; None for whole headers."""
    if query.whole_headers:
        return None
    tags = {f"{tag:08X}" for tag in from_header} | {f"{c.tag:08X}" for c in post}
    if len(tags) >= _MAX_ELEMENTS:
        return None
    return tuple(sorted(tags | {_SPECIFIC_CHARACTER_SET}))


def _json(value: Any) -> Any:
    """An element as the driver returns it: JSON text (SQLite) or already decoded (jsonb)."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def _without_pk(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "_pk"}


def _chunks(values: Sequence[int]) -> Iterable[list[int]]:
    for start in range(0, len(values), _BATCH):
        yield list(values[start : start + _BATCH])
