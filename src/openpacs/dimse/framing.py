"""PDUs cut out of a byte stream read in place into one buffer (for `asyncio.BufferedProtocol`).

At a PDU boundary the reader offers a slice of free buffer, so small PDUs arriving together
cost one read; once a PDU's header is known it offers exactly the rest of that PDU, so a large
P-DATA-TF lands in place and is handed on as a memoryview, never copied. Each PDU's length is
checked against its type's limit from the header alone, before any of its body is read. A
PDU up to our own maximum (1 MiB when we set none) gets its room at once; a longer one, only
possible with no maximum, is reached by doubling the buffer as its bytes really arrive.
"""

from __future__ import annotations

from openpacs.dimse import pdu

ASSOCIATE_CAP = 1 << 20  # largest A-ASSOCIATE PDU read (hundreds of contexts fit in 64 KiB)
SLICE = 64 << 10  # the first buffer, and what is offered at a PDU boundary
_FIXED = (pdu.ASSOCIATE_RJ, pdu.RELEASE_RQ, pdu.RELEASE_RP, pdu.ABORT)


class PduReader:
    """`get_buffer`/`received` feed it; `next_pdu` hands out (type, body) as they complete.

    A body is a view of the buffer, valid until the next `get_buffer`: consume it first.
    `max_pdata`: our maximum PDU length (0: no limit).
    """

    def __init__(self, max_pdata: int) -> None:
        self._max_pdata = max_pdata or 0xFFFFFFFF
        self._direct = 6 + (min(max_pdata, 64 << 20) if max_pdata else 1 << 20)
        self._buf = bytearray(SLICE)
        self._start = 0  # where the next unconsumed PDU starts
        self._have = 0  # bytes of _buf filled
        self._need = 0  # length of the PDU at _start, header included, once known

    @property
    def buffered(self) -> int:
        """Bytes received and not yet handed out as whole PDUs."""
        return self._have - self._start

    @property
    def buffer_size(self) -> int:
        return len(self._buf)

    def get_buffer(self) -> memoryview:
        if self._need:  # a PDU is arriving: read exactly to its end
            if self._start + self._need > len(self._buf):
                self._make_room()
            end = min(self._start + self._need, len(self._buf))
        else:  # at a boundary: whatever has come, up to a slice
            if len(self._buf) - self._have < 6:
                self._make_room()
            end = min(self._have + SLICE, len(self._buf))
        return memoryview(self._buf)[self._have : end]

    def received(self, nbytes: int) -> None:
        self._have += nbytes

    def next_pdu(self) -> tuple[int, memoryview] | None:
        """The next complete PDU, or None until more bytes come; `PduError` on a bad header."""
        available = self._have - self._start
        if not self._need:
            if available < 6:
                if not available:
                    self._start = self._have = 0
                return None
            kind, length = pdu.HEADER.unpack_from(self._buf, self._start)
            self._check(kind, length)
            self._need = 6 + length
        if available < self._need:
            return None
        start, end = self._start + 6, self._start + self._need
        kind = self._buf[self._start]
        self._start, self._need = end, 0
        return kind, memoryview(self._buf)[start:end]

    def _check(self, kind: int, length: int) -> None:
        if kind == pdu.P_DATA_TF:
            limit = self._max_pdata
        elif kind in (pdu.ASSOCIATE_RQ, pdu.ASSOCIATE_AC):
            limit = ASSOCIATE_CAP
        elif kind in _FIXED:
            limit = 4
        else:
            raise pdu.PduError(f"unrecognized PDU type 0x{kind:02x}", pdu.REASON_UNRECOGNIZED_PDU)
        if length > limit:
            raise pdu.PduError(f"PDU type 0x{kind:02x} of {length} bytes exceeds {limit}")

    def _make_room(self) -> None:
        """Move the PDU being read to the front; grow the buffer if it must.

        Grown to the PDU's length plus a slice, a buffer then takes a small PDU and a full
        one behind it without moving either.
        """
        partial = self._have - self._start
        if self._start:
            self._buf[:partial] = self._buf[self._start : self._have]
            self._start, self._have = 0, partial
        need = self._need or 6
        if need <= len(self._buf):
            return
        if need <= self._direct:
            size = need + SLICE
        elif self._have < len(self._buf):
            return  # read into the room there is before growing
        else:
            size = min(need + SLICE, 2 * len(self._buf))
        grown = bytearray(size)  # a new one: views handed out earlier stay valid
        grown[:partial] = self._buf[:partial]
        self._buf = grown
