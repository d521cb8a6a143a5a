"""The audit trail's writer: a burst of events shares one database write; flush is prompt."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from openpacs.archive.audit import AuditTrail
from openpacs.archive.records import AuditEvent, AuditFilter


class RecordingStore:
    """An AuditStore that keeps each append call's batch."""

    def __init__(self) -> None:
        self.batches: list[list[AuditEvent]] = []
        self.lock = threading.Lock()

    def append(self, events: Sequence[AuditEvent]) -> None:
        with self.lock:
            self.batches.append(list(events))

    def search(self, query: AuditFilter) -> tuple[int, list[AuditEvent]]:
        rows = [event for batch in self.batches for event in batch]
        return len(rows), rows


def _event(number: int) -> AuditEvent:
    return AuditEvent("dimse", "MODALITY", "127.0.0.1:1", "store", "success", sop_uid=f"1.{number}")


def test_a_burst_of_events_is_written_in_few_batches() -> None:
    store = RecordingStore()
    trail = AuditTrail(store)
    try:
        for number in range(100):
            trail.record(_event(number))
            time.sleep(0.001)  # an ingest's pace: one event per C-STORE
        trail.flush()
        written = [event.sop_uid for batch in store.batches for event in batch]
        assert written == [f"1.{n}" for n in range(100)]
        assert len(store.batches) <= 3, [len(batch) for batch in store.batches]
    finally:
        trail.close()


def test_flush_writes_pending_events_without_waiting_for_the_batch_to_fill() -> None:
    store = RecordingStore()
    trail = AuditTrail(store)
    try:
        trail.record(_event(1))
        started = time.monotonic()
        trail.flush()
        assert time.monotonic() - started < 0.15
        assert [event.sop_uid for batch in store.batches for event in batch] == ["1.1"]
    finally:
        trail.close()


def test_close_writes_what_is_queued() -> None:
    store = RecordingStore()
    trail = AuditTrail(store)
    for number in range(5):
        trail.record(_event(number))
    trail.close()
    assert sum(len(batch) for batch in store.batches) == 5
