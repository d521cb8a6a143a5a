"""A C-MOVE's sub-operations: C-STOREs to the destination over up to `[dicom]
move_associations` associations at once, requested by the engine on the server's loop.

Each sender takes the next instance, sends it on its own association (from the stored file
when the destination accepted its stored syntax, `openpacs.dimse.sending`) and counts the
response in the tally; `progress` learns how many remain after each one, for the pending
C-MOVE responses. A cancel stops the senders before their next instance; what is on its way
still finishes and is counted. An instance that cannot be sent, or whose response never
comes, is a failed sub-operation; the others still go.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from openpacs.archive.records import StoredInstance
from openpacs.archive.suboperations import SubOperations
from openpacs.dimse.association import Association, AssociationClosed, AssociationRejected
from openpacs.dimse.handlers import DimseContext, Remote
from openpacs.dimse.requestor import associate, request
from openpacs.dimse.retrieve import proposed_contexts
from openpacs.dimse.sending import payload_for, store_request, store_syntaxes
from openpacs.errors import OpenPacsError

log = logging.getLogger(__name__)

Run = Callable[..., Awaitable[Any]]
"""Runs a blocking function in the server's pool: `await run(function, *args)`."""


class DestinationUnreachable(OpenPacsError):
    dimse_status = 0xA801  # PS3.4 C.4.2.1.5: refused, move destination unknown (or unreachable)


async def move_instances(
    context: DimseContext,
    remote: Remote,
    instances: Sequence[StoredInstance],
    tally: SubOperations,
    *,
    originator: tuple[str, int],
    cancelled: Callable[[], bool],
    progress: Callable[[int], None],
    run: Run,
) -> None:
    """Send `instances` to `remote`; DestinationUnreachable when not one association opens."""
    contexts = proposed_contexts(instances)

    async def open_association() -> Association:
        return await associate(
            remote.host,
            remote.port,
            calling=context.aet,
            called=remote.aet,
            contexts=contexts,
            ssl_context=context.tls_client if remote.tls else None,
            max_pdu=context.max_pdu,
            acse_timeout=context.acse_timeout,
            network_timeout=context.network_timeout,
        )

    try:
        first = await open_association()
    except (AssociationRejected, AssociationClosed, OSError, TimeoutError) as exc:
        log.warning("C-MOVE destination %s unreachable: %s", remote.aet, exc or type(exc).__name__)
        raise DestinationUnreachable(f"no association with {remote.aet}") from None
    work = _Work(instances, tally, cancelled, progress)
    sender = _Sender(context, work, originator, run)
    senders = [sender.send_all(first)]
    extra = min(context.move_associations, len(instances)) - 1
    senders += [sender.open_and_send(open_association) for _ in range(extra)]
    await asyncio.gather(*senders)
    work.fail_unsent()


class _Work:
    """The instances still to send, shared by the senders (all on one loop: no lock)."""

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
        self.tally = tally
        self._cancelled = cancelled
        self._progress = progress

    def take(self) -> StoredInstance | None:
        if self._cancelled() or self._next >= len(self._instances):
            return None
        instance = self._instances[self._next]
        self._next += 1
        self.tally.sent(instance.sop_uid)
        return instance

    def finished(self) -> None:
        self._done += 1
        self._progress(len(self._instances) - self._done)

    def fail_unsent(self) -> None:
        """Every association ended before these went: they count as failed."""
        if self._cancelled():
            return
        while (instance := self.take()) is not None:
            self.finished()
            log.warning("sub-operation not sent sop=%s", instance.sop_uid)


class _Sender:
    def __init__(
        self, context: DimseContext, work: _Work, originator: tuple[str, int], run: Run
    ) -> None:
        self._context = context
        self._work = work
        self._originator = originator
        self._run = run

    async def open_and_send(self, open_association: Callable[[], Awaitable[Association]]) -> None:
        try:
            assoc = await open_association()
        except Exception as exc:  # an extra association is an optimisation only
            log.info("extra C-MOVE association failed: %s", type(exc).__name__)
            return
        await self.send_all(assoc)

    async def send_all(self, assoc: Association) -> None:
        message_id = 0
        try:
            while not assoc.closed.done() and (instance := self._work.take()) is not None:
                message_id = message_id % 0xFFFF + 1
                try:
                    await self._send_one(assoc, instance, message_id)
                finally:
                    self._work.finished()
        finally:
            if not assoc.closed.done():
                await assoc.release()

    async def _send_one(
        self, assoc: Association, instance: StoredInstance, message_id: int
    ) -> None:
        syntaxes = store_syntaxes(assoc.contexts.values(), instance, as_scp=False)
        payload = await self._run(payload_for, self._context.archive, instance, syntaxes)
        if payload is None:
            return  # sent, never answered: failed (payload_for logged why)
        context_id, data = payload
        command = store_request(instance, message_id, self._originator)
        try:
            response = await request(
                assoc, context_id, command, data, timeout=self._context.dimse_timeout
            )
        except TimeoutError:
            log.warning("sub-operation unanswered sop=%s: aborting", instance.sop_uid)
            assoc.abort()
            return
        except (AssociationClosed, OSError) as exc:
            log.warning("sub-operation failed sop=%s: %s", instance.sop_uid, exc)
            return
        status = response.command.get("Status")
        if isinstance(status, int):
            self._work.tally.answered(instance.sop_uid, status)
