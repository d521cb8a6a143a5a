"""Speed-ups for pynetdicom's transport, installed once at start-up (`install`).

pynetdicom reads a PDU 4 KB at a time, appending each piece to a growing bytearray: a 1 MB PDU
costs some 250 `recv` calls and as many copies, a large share of the CPU an ingest spends in
the network layer. `recv` here reads into one buffer of the PDU's size with as few calls as
the kernel allows. Behaviour is unchanged: it returns what was read, which is short only when
the peer closed the connection, exactly as pynetdicom's own method does.
"""

from __future__ import annotations

import socket
from typing import cast

from pynetdicom.transport import AssociationSocket


def _recv(self: AssociationSocket, nr_bytes: int) -> bytearray:
    """Read `nr_bytes` from the socket (blocking); fewer only if the peer closed it."""
    sock = cast(socket.socket, self.socket)
    buffer = bytearray(nr_bytes)
    view = memoryview(buffer)
    read = 0
    while read < nr_bytes:
        count = sock.recv_into(view[read:])
        if not count:
            del view
            return buffer[:read]
        read += count
    del view
    return buffer


def install() -> None:
    """Replace pynetdicom's `AssociationSocket.recv` (idempotent)."""
    AssociationSocket.recv = _recv  # type: ignore[method-assign]
