"""One transaction per call, retried on transient conflicts, for the site-state tables.

The same policy as the catalog's: PostgreSQL serialisation failures and deadlocks, a unique
violation from a racing server and SQLite's busy lock are retried with jittered back-off;
anything else is StoreUnavailable, so front doors answer 503 rather than a stack trace.
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


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


class Transactions:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

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
            except IntegrityError:
                raise  # the caller decides what a constraint violation means
            except DBAPIError as exc:
                sqlstate = getattr(exc.orig, "sqlstate", None)
                transient = (
                    sqlstate in _TRANSIENT_SQLSTATES
                    if sqlstate is not None
                    else "database is locked" in str(exc.orig)
                )
                if attempt < _ATTEMPTS and transient:
                    time.sleep(random.uniform(0, 0.01 * 2**attempt))  # noqa: S311
                    continue
                reason = type(exc.orig).__name__ + (f" (SQLSTATE {sqlstate})" if sqlstate else "")
                log.error("site state %s failed: %s", "write" if write else "read", reason)
                raise StoreUnavailable(f"the database is unavailable: {reason}") from exc
            except SQLAlchemyError as exc:
                reason = type(exc).__name__
                log.error("site state failure: %s", reason)
                raise StoreUnavailable(f"the database is unavailable: {reason}") from exc
        raise AssertionError("unreachable")  # pragma: no cover
