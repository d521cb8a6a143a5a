"""Group commit: callers that arrive while a durable write is under way share the next one.

An fsync or a database commit costs about the same for one item as for thirty, so threads that
each need their item made durable (several associations storing at once) hand it to a
`GroupRunner`: the first caller becomes the leader and processes whatever has queued; callers
arriving meanwhile wait, and the first of them leads the next batch with everything that came
in the meantime. Nothing lingers to wait for company: a caller alone is processed at once, so
a single association pays nothing for the grouping. Every caller returns only when its own
item has been processed, with its own result or its own exception.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

_WAIT_SLICE_SECONDS = 1.0


class GroupTimeout(TimeoutError):
    """A caller waited too long and withdrew its item before any batch took it."""


class _Slot(Generic[T, R]):
    __slots__ = ("done", "error", "item", "lead", "result", "woken")

    def __init__(self, item: T) -> None:
        self.item = item
        self.woken = threading.Event()
        self.lead = False
        self.done = False
        self.result: R | None = None
        self.error: BaseException | None = None


class GroupRunner(Generic[T, R]):
    """Runs `process(items)` on batches of concurrently submitted items.

    `process` returns one result per item, in order: a value, or an exception instance that
    is raised to that item's caller alone. An exception raised by `process` itself fails every
    item of the batch. `limit` caps a batch; `patience` bounds how long a caller waits for a
    batch to take its item (an item already taken is waited for until processed, so that no
    caller reports a failure for an item that then succeeds).
    """

    def __init__(
        self,
        process: Callable[[Sequence[T]], Sequence[R | BaseException]],
        *,
        limit: int = 64,
        patience: float = 120.0,
    ) -> None:
        self._process = process
        self._limit = limit
        self._patience = patience
        self._lock = threading.Lock()
        self._queue: list[_Slot[T, R]] = []
        self._busy = False
        self.batches = 0
        """How many batches ran (for tests and measurements)."""

    def run(self, item: T) -> R:
        slot: _Slot[T, R] = _Slot(item)
        with self._lock:
            self._queue.append(slot)
            if not self._busy:
                self._busy = True
                slot.lead = True
        if not slot.lead:
            self._await_turn(slot)
        if slot.lead and not slot.done:
            self._lead()
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]

    def _await_turn(self, slot: _Slot[T, R]) -> None:
        """Wait until the item is processed or this caller is to lead the next batch."""
        deadline = time.monotonic() + self._patience
        while not slot.woken.wait(_WAIT_SLICE_SECONDS):
            if time.monotonic() < deadline:
                continue
            with self._lock:
                if slot in self._queue and not slot.lead:
                    self._queue.remove(slot)
                    raise GroupTimeout(f"no batch took the item within {self._patience:g} s")
            # Taken by a running batch: its outcome is on its way.
            log.warning("a grouped write is taking longer than %g s", self._patience)

    def _lead(self) -> None:
        with self._lock:
            batch = self._queue[: self._limit]
            del self._queue[: self._limit]
        try:
            results: Sequence[R | BaseException] = self._process([s.item for s in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"{len(results)} results for a batch of {len(batch)}")
        except BaseException as exc:
            results = [exc] * len(batch)
        self.batches += 1
        for slot, result in zip(batch, results, strict=True):
            if isinstance(result, BaseException):
                slot.error = result
            else:
                slot.result = result
            slot.done = True
        with self._lock:
            successor = self._queue[0] if self._queue else None
            if successor is None:
                self._busy = False
            else:
                successor.lead = True
        for slot in batch:
            slot.woken.set()
        if successor is not None:
            successor.woken.set()
