"""One transaction per call, retried on transient conflicts: the index and the site state.

PostgreSQL serialisation failures and deadlocks and SQLite's busy lock are retried with
jittered back-off; anything else is StoreUnavailable, so front doors answer a DIMSE failure
or a 503 rather than a stack trace. The catalog also retries foreign-key and unique
violations: with insert-if-absent ingest they mean a racing server committed first, and the
retry sees its rows. Elsewhere a constraint violation is the caller's to interpret.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from openpacs.errors import StoreUnavailable
from openpacs.index.engine import IMMEDIATE

log = logging.getLogger(__name__)

T = TypeVar("T")
_ATTEMPTS = 6
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})
_CONFLICT_SQLSTATES = frozenset({"23503", "23505"})


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


class Transactions:
    def __init__(
        self, engine: Engine, *, what: str = "database", retry_conflicts: bool = False
    ) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._what = what
        self._retry_conflicts = retry_conflicts
        self._retried = _TRANSIENT_SQLSTATES | (_CONFLICT_SQLSTATES if retry_conflicts else set())

    def read(self, work: Callable[[Connection], T]) -> T:
        return self._run(work, write=False)

    def write(self, work: Callable[[Connection], T]) -> T:
        return self._run(work, write=True)

    def _run(self, work: Callable[[Connection], T], *, write: bool) -> T:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                with self.engine.connect() as connection:
                    if write:
                        connection.execution_options(**{IMMEDIATE: True})
                    with connection.begin():
                        return work(connection)
            except DBAPIError as exc:
                sqlstate = getattr(exc.orig, "sqlstate", None)
                if isinstance(exc, IntegrityError) and not self._retry_conflicts:
                    raise  # the caller decides what a constraint violation means
                transient = (
                    sqlstate in self._retried
                    if sqlstate is not None
                    else "database is locked" in str(exc.orig)
                )
                if attempt < _ATTEMPTS and transient:
                    time.sleep(random.uniform(0, 0.01 * 2**attempt))  # noqa: S311
                    continue
                reason = type(exc.orig).__name__ + (f" (SQLSTATE {sqlstate})" if sqlstate else "")
                log.error("%s %s failed: %s", self._what, "write" if write else "read", reason)
                raise StoreUnavailable(f"the {self._what} is unavailable: {reason}") from exc
            except SQLAlchemyError as exc:
                reason = type(exc).__name__
                log.error("%s failure: %s", self._what, reason)
                raise StoreUnavailable(f"the {self._what} is unavailable: {reason}") from exc
        raise AssertionError("unreachable")  # pragma: no cover
