"""Speed-ups for pynetdicom, installed once at start-up (`install`), where pynetdicom is still
our SCU (C-MOVE sub-operations, jobs).

C-MOVE sub-operations send what is stored: pynetdicom takes only Dataset
objects, which it re-encodes element by element. A `StoredFile` is a Dataset that stands for
a stored Part 10 file; the installed `send_c_store` sends that file's bytes in PDU-sized
chunks (pynetdicom's own chunked sending) without decoding or re-encoding anything.

pynetdicom reads a PDU 4 KB at a time, appending each piece to a growing bytearray: a 1 MB PDU
costs some 250 `recv` calls and as many copies, a large share of the CPU an ingest spends in
the network layer. `recv` here reads into one buffer of the PDU's size with as few calls as
the kernel allows. Behaviour is unchanged: it returns what was read, which is short only when
the peer closed the connection, exactly as pynetdicom's own method does.

pynetdicom's reactor thread can take the response a `send_c_store` on another thread waits for:
its pause handshake (`_reactor_checkpoint`, `_is_paused`) leaves a window in which the reactor
has passed its checkpoint yet still reads as paused. It then discards the response as an
unexpected message, the sender waits out the DIMSE timeout and aborts the association, and every
later sub-operation of a C-MOVE fails. That happens under load. On an association we requested
(C-MOVE sub-operations, jobs' sends) a response the reactor takes goes back to the queue the
sender reads.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, cast

from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pynetdicom import _config as pynetdicom_config
from pynetdicom.association import Association
from pynetdicom.transport import AssociationSocket

_INSTALLED = False
_ORIGINAL_SEND_C_STORE = Association.send_c_store
_ORIGINAL_SERVE_REQUEST = Association._serve_request


class StoredFile(Dataset):
    """A stored instance to send as it is: its identifiers and the path of its file."""

    def __init__(self, path: Path, sop_class_uid: str, sop_uid: str, syntax: str) -> None:
        super().__init__()
        self.SOPClassUID = sop_class_uid
        self.SOPInstanceUID = sop_uid
        self.file_meta = FileMetaDataset()
        self.file_meta.TransferSyntaxUID = syntax
        self.stored_path = path


def _send_c_store(self: Association, dataset: Any, *args: Any, **kwargs: Any) -> Dataset:
    if isinstance(dataset, StoredFile):
        try:
            return _ORIGINAL_SEND_C_STORE(self, dataset.stored_path, *args, **kwargs)
        except (AttributeError, ValueError):
            # File meta without the SOP UIDs, or no context for the stored syntax as it
            # is: decode the file and let pynetdicom encode it.
            dataset = dcmread(dataset.stored_path)
    return _ORIGINAL_SEND_C_STORE(self, dataset, *args, **kwargs)


def _serve_request(self: Association, msg: Any, context_id: int) -> None:
    if self.is_requestor and not msg.is_valid_request:
        self.dimse.msg_queue.put((context_id, msg))  # the sender's response: hand it back
        return
    _ORIGINAL_SERVE_REQUEST(self, msg, context_id)


def sends_stored_files() -> bool:
    """True once `install` made `send_c_store` understand StoredFile."""
    return _INSTALLED


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
    """Replace pynetdicom's `AssociationSocket.recv`, `Association.send_c_store` and
    `Association._serve_request` (idempotent)."""
    global _INSTALLED
    AssociationSocket.recv = _recv  # type: ignore[method-assign]
    Association.send_c_store = _send_c_store  # type: ignore[method-assign,assignment]
    Association._serve_request = _serve_request  # type: ignore[method-assign]
    pynetdicom_config.STORE_SEND_CHUNKED_DATASET = True  # sending a path streams the file
    _INSTALLED = True
