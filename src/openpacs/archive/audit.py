"""The audit trail: every access to patient data and every login attempt, over HTTP and DIMSE.

Each event becomes one JSON log line at once (logger `openpacs.audit`) and one row of the
`audit_events` table shortly after: rows are written by a background thread in batches, so
an audited C-STORE costs no extra database commit on its own path. The writer lingers a moment
after the first event of a batch so that a busy ingest shares one commit among many events,
instead of contending for the index's write lock once per instance. `flush` waits for the rows
(tests, shutdown, and the admin API before it reads). A failed database write is logged with
the events it lost; the JSON lines have them all. Patient IDs go to the database only, not to
the log line (no patient data in the log).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from dataclasses import asdict, replace
from datetime import UTC, datetime

from openpacs.archive.ports import AuditStore
from openpacs.archive.records import AuditEvent, AuditFilter
from openpacs.errors import OpenPacsError

log = logging.getLogger("openpacs.audit")
_BATCH = 500
_LINGER_SECONDS = 0.2
_LOG_FIELDS = ("at", "channel", "actor", "peer", "action", "outcome", "resource",
               "study_uid", "series_uid", "sop_uid", "detail")  # fmt: skip


class AuditTrail:
    def __init__(self, store: AuditStore) -> None:
        self._store = store
        self._queue: queue.Queue[AuditEvent | threading.Event | None] = queue.Queue()
        self._writer: threading.Thread | None = None
        self._lock = threading.Lock()

    def record(self, event: AuditEvent) -> None:
        """Log the event now and queue its row; never raises into the caller's request."""
        if not event.at:
            event = replace(event, at=datetime.now(UTC).isoformat(timespec="milliseconds"))
        fields = asdict(event)
        line = {k: fields[k] for k in _LOG_FIELDS if fields[k] not in (None, "")}
        log.info("%s", json.dumps(line, ensure_ascii=False, separators=(",", ":")))
        self._ensure_writer()
        self._queue.put(event)

    def flush(self, timeout: float = 10.0) -> None:
        """Return once every event recorded before the call is in the database."""
        if self._writer is None:
            return
        done = threading.Event()
        self._queue.put(done)
        done.wait(timeout)

    def search(self, query: AuditFilter) -> tuple[int, list[AuditEvent]]:
        self.flush()
        return self._store.search(query)

    def close(self) -> None:
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join(timeout=10)
            self._writer = None

    def _ensure_writer(self) -> None:
        if self._writer is not None:
            return
        with self._lock:
            if self._writer is None:
                self._writer = threading.Thread(target=self._write, name="audit", daemon=True)
                self._writer.start()

    def _write(self) -> None:
        stop = False
        while not stop:
            item = self._queue.get()
            batch: list[AuditEvent] = []
            waiters: list[threading.Event] = []
            deadline = time.monotonic() + _LINGER_SECONDS
            while True:
                if item is None:
                    stop = True
                elif isinstance(item, threading.Event):
                    waiters.append(item)
                else:
                    batch.append(item)
                if stop or waiters or len(batch) >= _BATCH:
                    break  # someone waits for the rows, or the batch is full: write now
                try:
                    item = self._queue.get(timeout=max(deadline - time.monotonic(), 0))
                except queue.Empty:
                    break
            self._append(batch)
            for waiter in waiters:
                waiter.set()

    def _append(self, batch: list[AuditEvent]) -> None:
        if not batch:
            return
        try:
            self._store.append(batch)
        except OpenPacsError as exc:
            log.error("audit rows lost count=%d reason=%s", len(batch), exc.reason)
        except Exception:
            log.exception("audit rows lost count=%d", len(batch))
