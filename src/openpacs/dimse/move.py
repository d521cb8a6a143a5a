"""A C-MOVE's sub-operations: C-STOREs to the destination over up to `[dicom]
move_associations` associations at once, pynetdicom as the SCU.

Runs in a worker thread (the services await it): each sender thread takes the next instance,
sends it on its own association and counts the response in the tally; `progress` reports how
many remain after each one, for the pending C-MOVE responses. A cancel stops the senders
before their next instance; what is on its way still finishes and is counted.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from pynetdicom import AE
from pynetdicom.association import Association

from openpacs.archive.suboperations import SubOperations
from openpacs.dimse.handlers import DimseContext, Remote
from openpacs.dimse.retrieve import accepted_syntaxes, dataset_for, move_contexts
from openpacs.errors import OpenPacsError
from openpacs.index.records import StoredInstance

log = logging.getLogger(__name__)


class DestinationUnreachable(OpenPacsError):
    dimse_status = 0xA801  # PS3.4 C.4.2.1.5: refused, move destination unknown (or unreachable)


def move_instances(
    context: DimseContext,
    remote: Remote,
    instances: Sequence[StoredInstance],
    tally: SubOperations,
    *,
    originator: tuple[str, int],
    cancelled: Callable[[], bool],
    progress: Callable[[int], None],
) -> None:
    ae = context.move_ae
    if ae is None:
        ae = AE(ae_title=context.aet)
        ae.dimse_timeout = ae.acse_timeout = ae.network_timeout = context.dimse_timeout
    contexts = move_contexts(instances)

    def associate() -> Association | None:
        arguments = dict(context.move_association_args)
        arguments.pop("senders", None)
        arguments["contexts"] = contexts
        arguments["evt_handlers"] = list(arguments.get("evt_handlers", []))
        if remote.tls:
            arguments["tls_args"] = (context.tls_client_args, remote.host)
        assoc = ae.associate(remote.host, remote.port, ae_title=remote.aet, **arguments)
        if assoc.is_established:
            return assoc
        if assoc.dul.socket is not None:  # pynetdicom leaves a refused socket open
            assoc.dul.socket.close()
        return None

    first = associate()
    if first is None:
        raise DestinationUnreachable(f"no association with {remote.aet}")
    work = _Work(instances, tally, cancelled, progress)
    threads = [threading.Thread(target=work.send_all, args=(first, context, originator))]
    for _ in range(min(context.move_associations, len(instances)) - 1):
        threads.append(
            threading.Thread(target=work.open_and_send, args=(associate, context, originator))
        )
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    work.fail_unsent()


class _Work:
    """The instances still to send, shared by the sender threads."""

    def __init__(
        self,
        instances: Sequence[StoredInstance],
        tally: SubOperations,
        cancelled: Callable[[], bool],
        progress: Callable[[int], None],
    ) -> None:
        self._instances = list(instances)
        self._next = 0
        self._done = 0
        self._lock = threading.Lock()
        self._tally = tally
        self._cancelled = cancelled
        self._progress = progress

    def take(self) -> StoredInstance | None:
        with self._lock:
            if self._cancelled() or self._next >= len(self._instances):
                return None
            self._next += 1
            instance = self._instances[self._next - 1]
        self._tally.sent(instance.sop_uid)
        return instance

    def finished(self) -> None:
        with self._lock:
            self._done += 1
            remaining = len(self._instances) - self._done
        self._progress(remaining)

    def fail_unsent(self) -> None:
        """Every association ended before these went: they count as failed."""
        if self._cancelled():
            return
        while (instance := self.take()) is not None:
            self.finished()
            log.warning("sub-operation not sent sop=%s", instance.sop_uid)

    def open_and_send(self, associate: Callable[[], Association | None], *args: Any) -> None:
        try:
            assoc = associate()
        except Exception as exc:  # an extra association is an optimisation only
            log.info("extra C-MOVE association failed: %s", type(exc).__name__)
            return
        if assoc is not None:
            self.send_all(assoc, *args)

    def send_all(
        self, assoc: Association, context: DimseContext, originator: tuple[str, int]
    ) -> None:
        message_id = 0
        accepted = accepted_syntaxes(assoc.accepted_contexts)
        try:
            while assoc.is_established and (instance := self.take()) is not None:
                message_id = message_id % 0xFFFF + 1
                dataset = dataset_for(
                    context.archive, instance, accepted.get(instance.sop_class_uid, set())
                )
                try:
                    status = assoc.send_c_store(
                        dataset,
                        msg_id=message_id,
                        originator_aet=originator[0],
                        originator_id=originator[1],
                    )
                    if "Status" in status:
                        self._tally.answered(instance.sop_uid, int(status.Status))
                except Exception as exc:  # counted as failed: sent, never answered
                    log.warning("sub-operation failed sop=%s: %s", instance.sop_uid, exc)
                self.finished()
        finally:
            if assoc.is_established:
                assoc.release()
