"""Whole headers built after ingest, off the path that acknowledges a store.

A serving archive indexes each instance with a summary (its indexed and identifying elements as
DICOM JSON) and builds the whole header afterwards: a background thread converts the parses
ingest kept in memory, in batches, one transaction per batch. Everything that reads stored
headers first settles the instances pending when it starts (queries, for C-FIND and QIDO-RS
return keys and header matching and WADO-RS metadata, when their own transaction finds one
pending: `Catalog.find`; text search and header conditions of listings before they run), so it
reads whole headers whichever way they were built; instances another process left pending
(it stopped, or crashed, first) are built from their blobs. A header built later is the one
ingest would have built: the same parse, the same conversion (`openpacs.dicom.header`).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from openpacs.dicom.header import ParsedHeader, parse_header
from openpacs.errors import InvalidInstance, NotFound, OpenPacsError
from openpacs.storage.base import BlobStore

if TYPE_CHECKING:
    from openpacs.archive.ports import Index

log = logging.getLogger(__name__)

_BATCH = 200
# Parses kept for the builder; past this many it reads the blobs instead (memory stays flat).
_KEPT = 512
# The builder waits for stores to pause this long before it builds, so that a burst's headers
# are built after it (the burst's stores never wait for the builder's commits or share the
# interpreter with its conversions), in batches; a steady stream still gets its headers built
# every _BATCH instances or every _MAX_DELAY_SECONDS.
_LULL_SECONDS = 0.25
_MAX_DELAY_SECONDS = 10.0
_IDLE_SECONDS = 1.0


class HeaderBuilder:
    def __init__(self, index: Index, store: BlobStore) -> None:
        self._index = index
        self._store = store
        self._kept: dict[str, ParsedHeader] = {}
        self._kept_lock = threading.Lock()
        self._settling = threading.Lock()
        self._due = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.defer = False
        """Whether ingest leaves the whole header to be built later: set by `start` (a
        serving archive); without the thread, headers are built when first read."""

    def start(self) -> None:
        self.defer = True
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="header-builder", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the builder once its batch is done; what is pending stays for the next."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            self._due.set()
            thread.join(30)

    def keep(self, blob_key: str, parsed: ParsedHeader) -> None:
        """Hold the parse of an instance about to be indexed with its summary."""
        with self._kept_lock:
            if len(self._kept) < _KEPT:
                self._kept[blob_key] = parsed

    def forget(self, blob_key: str) -> None:
        """The instance was not indexed after all."""
        with self._kept_lock:
            self._kept.pop(blob_key, None)

    def due(self) -> None:
        """Wake the builder: an instance was indexed with its summary."""
        self._due.set()

    def settle(self) -> None:
        """Build the whole header of every instance pending when this call began."""
        with self._settling:
            after, upto = 0, None
            while True:
                pending = self._index.pending_headers(_BATCH, after=after, upto=upto)
                if not pending:
                    return
                self._index.fill_headers({p.blob_key: self._build(p.blob_key) for p in pending})
                if len(pending) < _BATCH:
                    return
                after, upto = pending[-1].pk, pending[-1].upto

    def settle_for_reading(self) -> None:
        """Settle before a read of stored headers; a failure leaves the summaries of what
        could not be built (logged) rather than failing the read."""
        try:
            self.settle()
        except OpenPacsError as exc:
            log.warning("headers not settled before a read: %s", exc.reason)

    def _build(self, blob_key: str) -> dict[str, Any] | None:
        with self._kept_lock:
            parsed = self._kept.pop(blob_key, None)
        try:
            if parsed is None:
                with self._store.local_path(blob_key) as path:
                    parsed = parse_header(path)
            return parsed.header().json
        except (NotFound, InvalidInstance) as exc:
            # Deleted meanwhile (then no row is left to fill), or unreadable: the summary stays.
            log.warning("header not built key=%s reason=%s", blob_key, exc.reason)
            return None

    def _run(self) -> None:
        self._settle_quietly()  # what earlier runs left pending
        while not self._stop.is_set():
            if not self._due.wait(_IDLE_SECONDS):
                continue
            self._wait_for_a_lull()
            self._settle_quietly()

    def _wait_for_a_lull(self) -> None:
        deadline = time.monotonic() + _MAX_DELAY_SECONDS
        while not self._stop.is_set():
            self._due.clear()
            if not self._due.wait(_LULL_SECONDS):
                return  # no store for a while
            with self._kept_lock:
                backlog = len(self._kept)
            if backlog >= _BATCH or time.monotonic() > deadline:
                return

    def _settle_quietly(self) -> None:
        try:
            self.settle()
        except Exception:
            log.exception("building stored headers failed; retried at the next store")
