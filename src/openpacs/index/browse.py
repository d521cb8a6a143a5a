"""Paged, sorted listings for the REST API, from the index columns only.

A listing is a count and one page, both filtered in SQL on the level's indexed columns (and
ModalitiesInStudy through its series): never a scan of stored headers, so a page of 100,000
studies costs what its indexes cost. Computed keys come for the page's rows only. Pages
are addressed by offset or, to page deep, by the cursors each page carries
(`openpacs.index.keyset`): a cursor seeks to its row, where an offset counts past every row in
front of it.

A free-text search is counted up to `TEXT_COUNT_LIMIT` matches (`Page.more` says when there
are more): a broad one ("hospital", a digit) matches much of the archive, and an exact count
checks every match, where the page reads only the matches in front of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, Table, func, literal, select
from sqlalchemy.sql.util import find_tables

from openpacs.archive.records import TEXT_COUNT_LIMIT, Page, Visibility
from openpacs.dicom.levels import INDEXED_KEYS, Level, computed_of
from openpacs.dicom.query import Condition
from openpacs.errors import InvalidQuery
from openpacs.index.finder import Finder, indexed_columns, joined, table_of
from openpacs.index.keyset import Cursor, beyond, ordering
from openpacs.index.transaction import Transactions
from openpacs.index.visibility import level_clause, study_clause


class SqlBrowser:
    def __init__(self, engine: Engine, *, text_count_limit: int = TEXT_COUNT_LIMIT) -> None:
        self._tx = Transactions(engine)
        self._finder = Finder(engine.dialect.name)
        self._text_count_limit = text_count_limit

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
        """`cursor`: a `Page.next` or `Page.previous` of the same search and sort; `label`:
        only studies (and what is below them) with this label."""
        table = table_of(level)
        compiled = self._finder.where(level, conditions)
        if compiled.unrendered:
            raise InvalidQuery(
                f"{compiled.unrendered[0].keyword} is not an indexed key, nor a text or UID "
                "attribute that can be searched in stored headers"
            )
        clauses = list(compiled.clauses)
        visible = level_clause(level, visibility)
        if visible is not None:
            clauses.append(visible)
        if label is not None:
            if level is Level.PATIENT:
                raise InvalidQuery("labels are on studies: search studies, series or instances")
            clauses.append(study_clause(Visibility(labels=frozenset({label}))))
        counted_up_to: int | None = None
        if text:
            clause = self._finder.text_condition(level, text)
            if clause is not None:
                clauses.append(clause)
                counted_up_to = self._text_count_limit
        sort_column = self._sort_column(level, sort)
        boundary = self._boundary(cursor, sort, descending, offset)
        backward = boundary is not None and boundary.backward
        # A backward page is read in reverse order from its boundary, then turned round.
        reading = descending != backward
        where = list(clauses)
        if boundary is not None and boundary.pk is not None:
            where.append(beyond(sort_column, table.c.pk, boundary.value, boundary.pk, reading))
        source = joined(level)
        count = _count(_counted_from(level, clauses), clauses, counted_up_to)
        sort_value = [] if sort_column is None else [sort_column.label("_sort")]
        rows_query = (
            select(table.c.pk.label("_pk"), *sort_value, *indexed_columns(level))
            .select_from(source)
            .where(*where)
            .order_by(*ordering(sort_column, table.c.pk, reading))
            .limit(limit + 1)
            .offset(offset or None)
        )
        wanted = {key.keyword for key in computed_of(level) if key.in_listings}

        def at(row: dict[str, Any], back: bool) -> str:
            return Cursor(sort, descending, back, row.get("_sort"), row["_pk"]).encode()

        def position(conn: Connection, first: dict[str, Any]) -> int:
            before = beyond(
                sort_column, table.c.pk, first.get("_sort"), first["_pk"], not descending
            )
            counted = select(func.count()).select_from(source).where(*clauses, before)
            return int(conn.execute(counted).scalar_one())

        def work(conn: Connection) -> Page:
            total = int(conn.execute(count).scalar_one())
            counted_more = False  # whether more match than were counted
            if counted_up_to is not None and total > counted_up_to:
                total, counted_more = counted_up_to, True
            rows = [row._asdict() for row in conn.execute(rows_query)]
            more = len(rows) > limit
            rows = rows[:limit]
            if backward:
                rows.reverse()
            computed = self._finder.computed(
                conn, level, [r["_pk"] for r in rows], wanted, visibility
            )
            items = [
                {
                    **{k: v for k, v in row.items() if k not in _PRIVATE and v is not None},
                    **computed.get(row["_pk"], {}),
                }
                for row in rows
            ]
            if not rows:
                return Page(total, items, offset=0 if backward else total, more=counted_more)
            if boundary is None:
                start, earlier, later = offset, offset > 0, more
            else:
                start = position(conn, rows[0])
                earlier = more if backward else start > 0
                later = (boundary.pk is not None) if backward else more
            if counted_more and not later:  # the last page: the matches end with it
                total, counted_more = start + len(rows), False
            elif counted_more:  # a page beyond the counted matches: at least as many
                total = max(total, start + len(rows))
            return Page(
                total,
                items,
                offset=start,
                next=at(rows[-1], False) if later else None,
                previous=at(rows[0], True) if earlier else None,
                last=Cursor(sort, descending, True).encode() if later else None,
                more=counted_more,
            )

        return self._tx.read(work)

    @staticmethod
    def _sort_column(level: Level, sort: str | None) -> Any:
        if sort is None:
            return None
        key = INDEXED_KEYS.get(sort)
        if key is None or key.level.depth > level.depth:
            raise InvalidQuery(f"cannot sort {level.value.lower()} results by {sort}")
        return table_of(key.level).c[f"{key.column}_norm" if key.kind == "name" else key.column]

    @staticmethod
    def _boundary(
        cursor: str | None, sort: str | None, descending: bool, offset: int
    ) -> Cursor | None:
        if cursor is None:
            return None
        if offset:
            raise InvalidQuery("cursor and offset cannot be combined")
        boundary = Cursor.decode(cursor)
        if boundary.sort != sort or boundary.descending != descending:
            raise InvalidQuery("cursor: made for another sort order")
        return boundary


_PRIVATE = frozenset({"_pk", "_sort"})
_ANCESTORS = {
    Level.PATIENT: (),
    Level.STUDY: (Level.PATIENT,),
    Level.SERIES: (Level.STUDY, Level.PATIENT),
    Level.IMAGE: (Level.SERIES, Level.STUDY, Level.PATIENT),
}


def _count(source: Any, clauses: Sequence[Any], up_to: int | None) -> Any:
    """The count of rows of `source` meeting `clauses`; with `up_to`, counting stops past
    `up_to` (the count is then `up_to` + 1)."""
    if up_to is None:
        return select(func.count()).select_from(source).where(*clauses)
    matches = select(literal(1)).select_from(source).where(*clauses).limit(up_to + 1)
    return select(func.count()).select_from(matches.subquery())


def _counted_from(level: Level, clauses: Sequence[Any]) -> Any:
    """What a count of the level's rows meeting `clauses` reads: the level's table joined up
    only as far as the highest ancestor a clause names. Every row has its parents, so an
    ancestor no clause names adds no condition, only a join over every match."""
    named = {
        t.name
        for clause in clauses
        for t in find_tables(clause, check_columns=True)
        if isinstance(t, Table)
    }
    source: Any = table_of(level)
    below = table_of(level)
    upper = list(_ANCESTORS[level])
    while upper and any(table_of(a).name in named for a in upper):
        parent = table_of(upper.pop(0))
        source = source.join(parent, below.c[_PARENT_KEY[below.name]] == parent.c.pk)
        below = parent
    return source


_PARENT_KEY = {"studies": "patient_pk", "series": "study_pk", "instances": "series_pk"}
