"""Keyset pagination: a page starts after (or ends before) the sort value and primary key of
the row next to it, so the database seeks there through an index instead of counting and
skipping every row in front of it (OFFSET), and rows inserted meanwhile neither repeat nor
vanish from the pages still to come.

A cursor is opaque to clients: URL-safe base64 of a small JSON object naming the sort it was
made for, the direction, and the boundary row's sort value and primary key. Sort values may be
NULL: ascending order puts NULLs last, descending puts them first, on every dialect.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, or_

from openpacs.archive.records import MAX_CURSOR_LENGTH
from openpacs.errors import InvalidQuery


@dataclass(frozen=True)
class Cursor:
    """A boundary: the page holds the rows after it (`backward` false) or before it.

    `pk` None is the boundary past either end: a backward cursor without a row is the last
    page."""

    sort: str | None
    descending: bool
    backward: bool
    value: str | int | None = None
    pk: int | None = None

    def encode(self) -> str:
        fields: dict[str, str | int | bool | None] = {
            "s": self.sort,
            "d": self.descending,
            "b": self.backward,
        }
        if self.pk is not None:
            fields.update(v=self.value, k=self.pk)
        text = json.dumps(fields, separators=(",", ":"), ensure_ascii=False)
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        if len(token) > MAX_CURSOR_LENGTH:
            raise InvalidQuery("cursor: too long")
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            fields = json.loads(raw)
        except (binascii.Error, ValueError):
            raise InvalidQuery("cursor: not a cursor this server made") from None
        if not isinstance(fields, dict):
            raise InvalidQuery("cursor: not a cursor this server made")
        sort, descending, backward = fields.get("s"), fields.get("d"), fields.get("b")
        value, pk = fields.get("v"), fields.get("k")
        valid = (
            (sort is None or isinstance(sort, str))
            and isinstance(descending, bool)
            and isinstance(backward, bool)
            and (value is None or isinstance(value, str | int))
            and not isinstance(value, bool)
            and (pk is None or (isinstance(pk, int) and not isinstance(pk, bool)))
        )
        if not valid:
            raise InvalidQuery("cursor: not a cursor this server made")
        return cls(sort, bool(descending), bool(backward), value, pk)


def ordering(column: Any, pk: Any, descending: bool) -> list[Any]:
    """ORDER BY for a sort column (None: primary key only) then the primary key; NULLs last
    ascending and first descending, the order of a plain PostgreSQL index read either way."""
    if column is None:
        return [pk.desc() if descending else pk.asc()]
    if descending:
        return [column.desc().nulls_first(), pk.desc()]
    return [column.asc().nulls_last(), pk.asc()]


def beyond(
    column: Any, pk: Any, value: str | int | None, boundary: int, descending: bool
) -> ColumnElement[bool]:
    """Rows that come after (`value`, `boundary`) in `ordering(column, pk, descending)`.

    The bound on the column comes first and alone (`col <= v` descending), so the column's
    index starts the scan at the boundary instead of filtering every row in front of it."""
    pk_after: ColumnElement[bool] = pk < boundary if descending else pk > boundary
    if column is None:
        return pk_after
    if value is None:
        if descending:  # NULLs first: the NULL rows with a later key, then every value
            return or_(and_(column.is_(None), pk_after), column.is_not(None))
        return and_(column.is_(None), pk_after)  # NULLs last: only NULL rows follow
    if descending:
        return and_(column <= value, or_(column < value, pk_after))
    return or_(and_(column >= value, or_(column > value, pk_after)), column.is_(None))
