"""C-MOVE sub-operations sent over several associations to the destination at once.

pynetdicom's C-MOVE SCP opens one association to the destination (`AE.associate`, with the
arguments the handler yields) and calls its `send_c_store` once per dataset the handler
yields, in order, counting each returned status; it then builds every C-MOVE response from
those counts and the SOP Instance UIDs of the failed ones (PS3.4 C.4.2.1.4). Sending over that
one association is slow: the destination's PDU size (16 KB for DCMTK's storescp) cuts a CT
image into some 32 P-DATA PDUs, each a trip through pynetdicom's queues and state machine, and
the association waits for each C-STORE response before the next request.

`MoveSenders` stands in for that association. The handler submits datasets ahead of the one
it yields; sender threads, each on its own association to the destination, take them in turn
and send them while the others wait for their responses. When pynetdicom asks the stand-in to
send a dataset, it waits for that dataset's own result and returns its status (or raises what
the send raised), so pynetdicom's counts and failed list stay exact and the C-MOVE responses
are pynetdicom's own. A destination that refuses the extra associations gets everything over
the first one.

Stored files go out as `StoredFile`s, which the `send_c_store` of `openpacs.dimse.tuning`
sends through pynetdicom's own file sending: the bytes after the file meta, read in PDU-sized
pieces, never decoded.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.association import Association

log = logging.getLogger(__name__)

_STOP = None


class MoveSenders:
    """Sends one C-MOVE's sub-operations over up to `associations` associations."""

    def __init__(self, associations: int, originator_aet: str, originator_id: int) -> None:
        self._wanted = max(1, associations)
        self._originator = (originator_aet, originator_id)
        self._queue: queue.SimpleQueue[tuple[Dataset, Future[Dataset]] | None] = queue.SimpleQueue()
        self._submitted: dict[int, tuple[Dataset, Future[Dataset]]] = {}
        self._lock = threading.Lock()
        self._live = 0
        self._closed = False
        self._threads: list[threading.Thread] = []
        self.first: Association | None = None
        self.withdrawn = threading.Event()

    # -- what pynetdicom's C-MOVE SCP calls on the association it opened ---------------------

    @property
    def is_established(self) -> bool:
        return self.first is not None and self.first.is_established

    @property
    def dul(self) -> Any:
        """The first association's upper layer (pynetdicom closes its socket on refusal)."""
        return self.first.dul if self.first is not None else None

    def send_c_store(self, dataset: Dataset, *args: Any, **kwargs: Any) -> Dataset:
        """The status of `dataset`'s C-STORE, sent now or already on its way."""
        entry = self._submitted.pop(id(dataset), None)
        future = entry[1] if entry is not None else self.submit(dataset, keep=False)
        return future.result()

    def release(self) -> None:
        """Stop the senders once the queue is empty and release every association."""
        with self._lock:
            self._closed = True  # an extra association opened from now on is released
            threads = list(self._threads)
        self._queue.put(_STOP)  # each sender passes it on to the next
        for thread in threads:
            thread.join()

    # -- what the handler calls --------------------------------------------------------------

    def start(self, first: Association, open_another: Callable[[], Association]) -> None:
        """Begin with the association pynetdicom asked for; open the others in the
        background (a destination that refuses them only costs their attempt)."""
        self.first = first
        if not first.is_established:
            return
        self._spawn(first, check_closed=False)
        for _ in range(self._wanted - 1):
            thread = threading.Thread(target=self._open_and_send, args=(open_another,), daemon=True)
            thread.start()

    def submit(self, dataset: Dataset, *, keep: bool = True) -> Future[Dataset]:
        """Queue `dataset` for sending; its result waits for `send_c_store(dataset)`."""
        future: Future[Dataset] = Future()
        with self._lock:
            if self._live == 0:
                future.set_exception(RuntimeError("no association to the destination"))
            else:
                self._queue.put((dataset, future))
        if keep:
            self._submitted[id(dataset)] = (dataset, future)
        return future

    def withdraw(self) -> list[Dataset]:
        """Take back every submitted dataset not yet being sent (a C-CANCEL); returns those
        already on their way, whose results pynetdicom must still count."""
        self.withdrawn.set()
        started = []
        for key, (dataset, future) in list(self._submitted.items()):
            if future.cancel():
                del self._submitted[key]
            else:
                started.append(dataset)
        return started

    # -- the senders -------------------------------------------------------------------------

    def _spawn(self, assoc: Association, *, check_closed: bool = True) -> bool:
        with self._lock:
            if check_closed and (self._closed or self._live == 0 or self.withdrawn.is_set()):
                return False
            self._live += 1
            thread = threading.Thread(target=self._send_all, args=(assoc,), daemon=True)
            self._threads.append(thread)
        thread.start()
        return True

    def _open_and_send(self, open_another: Callable[[], Association]) -> None:
        try:
            assoc = open_another()
        except Exception as exc:  # an extra association is an optimisation only
            log.info("extra C-MOVE association failed: %s", type(exc).__name__)
            return
        if not assoc.is_established:
            if assoc.dul.socket is not None:  # pynetdicom leaves a refused socket open
                assoc.dul.socket.close()
            return
        if not self._spawn(assoc):
            assoc.release()

    def _send_all(self, assoc: Association) -> None:
        message_id = 0
        try:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    self._queue.put(_STOP)  # for a sender that started late
                    break
                dataset, future = item
                if not future.set_running_or_notify_cancel():
                    continue
                message_id = message_id % 65535 + 1
                try:
                    future.set_result(self._send(assoc, dataset, message_id))
                except Exception as exc:
                    future.set_exception(exc)
                if not assoc.is_established:
                    break
        finally:
            with self._lock:
                self._live -= 1
                last = self._live == 0
            if last:
                self._fail_queued()
            if assoc.is_established:
                assoc.release()

    def _send(self, assoc: Association, dataset: Dataset, message_id: int) -> Dataset:
        aet, originator_id = self._originator
        ids = {"msg_id": message_id, "originator_aet": aet, "originator_id": originator_id}
        return assoc.send_c_store(dataset, **ids)  # a StoredFile: see dimse/tuning.py

    def _fail_queued(self) -> None:
        """No association is left: every queued dataset fails (and is listed as failed)."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is _STOP:
                self._queue.put(_STOP)  # for a sender that is just starting
                return
            _, future = item
            if future.set_running_or_notify_cancel():
                future.set_exception(RuntimeError("the destination ended every association"))


class ArchiveAE(AE):
    """Our AE: a C-MOVE sub-association opened with a `senders` argument is a MoveSenders."""

    def associate(self, *args: Any, senders: MoveSenders | None = None, **kwargs: Any) -> Any:
        if senders is None:
            return super().associate(*args, **kwargs)
        first = super().associate(*args, **kwargs)
        senders.start(first, lambda: super(ArchiveAE, self).associate(*args, **kwargs))
        return senders
