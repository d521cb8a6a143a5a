"""Associations we request (C-MOVE sub-operations, C-ECHO to a peer), on the caller's loop.

`associate` connects, sends the A-ASSOCIATE-RQ and returns the established `Association`
once the peer accepts (or raises `AssociationRejected`, `TimeoutError`, `OSError`). By
default its handler is a `Replies` queue: `request` sends a message and waits for the next
one the peer sends back.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Mapping, Sequence
from typing import cast

from openpacs.dimse import pdu
from openpacs.dimse.association import (
    Association,
    AssociationClosed,
    FileSlice,
    Message,
    MessageHandler,
)
from openpacs.dimse.messages import Command
from openpacs.dimse.negotiation import (
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION,
    Capabilities,
)


class Replies:
    """A requestor's handler: what the peer sends, queued for `next`."""

    def __init__(self, assoc: Association) -> None:
        self._queue: asyncio.Queue[Message | str] = asyncio.Queue()

    def data_sink(self, assoc: Association, context_id: int, command: Command) -> None:
        return None  # responses carry small identifiers at most

    def message_received(self, assoc: Association, message: Message) -> None:
        self._queue.put_nowait(message)

    def association_ended(self, assoc: Association, how: str) -> None:
        self._queue.put_nowait(how)

    async def next(self, timeout: float) -> Message:
        """The next message from the peer, within `timeout` seconds."""
        item = await asyncio.wait_for(self._queue.get(), timeout)
        if isinstance(item, str):
            self._queue.put_nowait(item)  # every later call learns it too
            raise AssociationClosed(f"association {item}")
        return item


async def associate(
    host: str,
    port: int,
    *,
    calling: str,
    called: str,
    contexts: Sequence[tuple[str, Sequence[str]]],
    roles: Mapping[str, tuple[bool, bool]] | None = None,
    handler_factory: Callable[[Association], MessageHandler] = Replies,
    ssl_context: ssl.SSLContext | None = None,
    max_pdu: int = 1048576,
    acse_timeout: float = 30.0,
    network_timeout: float = 60.0,
) -> Association:
    """An established association with `called` at host:port.

    `contexts`: (abstract syntax, transfer syntaxes) proposed in order, one presentation
    context each (at most 128); `roles`: SOP class -> (SCU, SCP) role selection proposed.
    """
    if not 0 < len(contexts) <= 128:
        raise ValueError(f"{len(contexts)} presentation contexts: between 1 and 128 allowed")
    request = pdu.AssociateRq(
        called,
        calling,
        tuple(
            pdu.PresentationContextRq(2 * index + 1, abstract, tuple(syntaxes))
            for index, (abstract, syntaxes) in enumerate(contexts)
        ),
        pdu.UserInfo(
            max_pdu=max_pdu,
            implementation_class_uid=IMPLEMENTATION_CLASS_UID,
            implementation_version=IMPLEMENTATION_VERSION,
            roles=tuple(
                pdu.RoleSelection(sop_class, scu, scp)
                for sop_class, (scu, scp) in (roles or {}).items()
            ),
        ),
    )
    caps = Capabilities(calling, {}, max_pdu=max_pdu)
    loop = asyncio.get_running_loop()

    def protocol() -> Association:
        return Association(
            caps,
            handler_factory,
            acse_timeout=acse_timeout,
            network_timeout=network_timeout,
            request=request,
        )

    _, assoc = await asyncio.wait_for(
        loop.create_connection(
            protocol,
            host,
            port,
            ssl=ssl_context,
            server_hostname=host if ssl_context is not None else None,
            ssl_handshake_timeout=acse_timeout if ssl_context is not None else None,
        ),
        acse_timeout,
    )
    try:
        await assoc.established  # bounded by the association's ARTIM (acse_timeout)
    except BaseException:
        assoc.drop()  # rejected, aborted or timed out: no connection left behind
        raise
    return assoc


async def request(
    assoc: Association,
    context_id: int,
    command: Mapping[str, object],
    dataset: bytes | FileSlice | None = None,
    *,
    timeout: float = 60.0,
) -> Message:
    """Send a message and return the peer's next one (its response), within `timeout`."""
    replies = assoc.handler
    if not isinstance(replies, Replies):
        raise TypeError("request() needs an association whose handler is Replies")
    await assoc.send_message(context_id, command, dataset)
    return await cast(Replies, replies).next(timeout)
