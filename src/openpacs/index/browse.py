"""Paged, sorted listings for the REST API, from the index columns only.

A listing is a count and one page, both filtered in SQL on the level's indexed columns (and
ModalitiesInStudy through its series): never a scan of stored headers, so a page of 100,000
studies costs what its indexes cost. Computed keys come for the page's rows only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from openpacs.dicom.levels import COMPUTED_KEYS, INDEXED_KEYS, Level
from openpacs.dicom.query import Condition
from openpacs.errors import InvalidQuery
from openpacs.index.finder import _TABLE, Finder, _joined
from openpacs.index.records import Page, Visibility
from openpacs.index.transaction import Transactions
from openpacs.index.visibility import level_clause, study_clause


class SqlBrowser:
    def __init__(self, engine: Engine) -> None:
        self._tx = Transactions(engine)
        self._finder = Finder(engine.dialect.name)

    def page(
        self,
        level: Level,
        conditions: Sequence[Condition],
        *,
        sort: str | None = None,
        descending: bool = False,
        limit: int = 100,
        offset: int = 0,
        label: str | None = None,
        visibility: Visibility | None = None,
    ) -> Page:
        """`label`: only studies (and what is below them) with this label."""
        table = _TABLE[level]
        keys = [k for k in INDEXED_KEYS.values() if k.level.depth <= level.depth]
        columns = [_TABLE[k.level].c[k.column].label(k.keyword) for k in keys]
        clauses: list[Any] = []
        for condition in conditions:
            clause = self._finder._clause(level, condition)
            if clause is None:
                raise InvalidQuery(f"{condition.keyword} is not a search key at this level")
            if clause is not True:
                clauses.append(clause)
        visible = level_clause(level, visibility)
        if visible is not None:
            clauses.append(visible)
        if label is not None:
            if level is Level.PATIENT:
                raise InvalidQuery("labels are on studies: search studies, series or instances")
            clauses.append(study_clause(Visibility(labels=frozenset({label}))))
        order: list[Any] = []
        if sort is not None:
            key = INDEXED_KEYS.get(sort)
            if key is None or key.level.depth > level.depth:
                raise InvalidQuery(f"cannot sort {level.value.lower()} results by {sort}")
            column = _TABLE[key.level].c[f"{key.column}_norm" if key.kind == "name" else key.column]
            order.append(column.desc() if descending else column.asc())
        order.append(table.c.pk.desc() if descending else table.c.pk.asc())
        source = _joined(level)
        count = select(func.count()).select_from(source).where(*clauses)
        rows_query = (
            select(table.c.pk.label("_pk"), *columns)
            .select_from(source)
            .where(*clauses)
            .order_by(*order)
            .limit(limit)
            .offset(offset)
        )
        wanted = {k for k, owner in COMPUTED_KEYS.items() if owner is level}
        wanted.discard("SOPClassesInStudy")

        def work(conn: Connection) -> Page:
            total = int(conn.execute(count).scalar_one())
            rows = [row._asdict() for row in conn.execute(rows_query)]
            pks = [r["_pk"] for r in rows]
            computed = self._finder.computed(conn, level, pks, wanted, visibility)
            items = [
                {
                    **{k: v for k, v in row.items() if k != "_pk" and v is not None},
                    **computed.get(row["_pk"], {}),
                }
                for row in rows
            ]
            return Page(total, items)

        return self._tx.read(work)
