"""PDU framing: any split of a byte stream into reads gives back the same PDUs, and the buffer
never holds more than the PDU being read needs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openpacs.dimse import pdu
from openpacs.dimse.framing import SLICE, PduReader


def _pdata(size: int) -> bytes:
    return pdu.encode(pdu.PData((pdu.Pdv(1, False, True, memoryview(bytes([size % 251]) * size)),)))


PDUS = st.lists(
    st.one_of(
        st.integers(0, 200_000).map(_pdata),
        st.just(pdu.encode(pdu.ReleaseRq())),
        st.just(pdu.encode(pdu.Abort(2, 1))),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=150, deadline=None)
@given(pdus=PDUS, reads=st.lists(st.integers(1, 300_000), min_size=1, max_size=50))
def test_any_read_split_gives_back_the_pdus(pdus: list[bytes], reads: list[int]) -> None:
    stream = b"".join(pdus)
    reader = PduReader(256_000)
    out: list[bytes] = []
    at, turn = 0, 0
    while at < len(stream):
        buffer = reader.get_buffer()
        assert len(buffer) > 0
        size = min(len(buffer), reads[turn % len(reads)], len(stream) - at)
        buffer[:size] = stream[at : at + size]
        reader.received(size)
        at += size
        turn += 1
        while (frame := reader.next_pdu()) is not None:
            kind, body = frame
            out.append(pdu.HEADER.pack(kind, len(body)) + bytes(body))
        largest = max(len(p) for p in pdus)
        assert reader.buffer_size <= 2 * largest + 2 * SLICE
    assert out == pdus
    assert reader.buffered == 0


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (b"\x04\x00\x00\x04\x00\x00", pdu.REASON_INVALID_PARAMETER),  # P-DATA over 256 KiB
        (b"\x05\x00\x00\x00\x00\x05", pdu.REASON_INVALID_PARAMETER),  # release of 5 bytes
        (b"\x01\x00\x01\x00\x00\x00", pdu.REASON_INVALID_PARAMETER),  # A-ASSOCIATE of 16 MiB
        (b"\x11\x00\x00\x00\x00\x04", pdu.REASON_UNRECOGNIZED_PDU),
    ],
)
def test_a_bad_header_is_refused_before_its_body_is_read(header: bytes, reason: int) -> None:
    reader = PduReader(256 * 1024 - 1)
    buffer = reader.get_buffer()
    buffer[:6] = header
    reader.received(6)
    with pytest.raises(pdu.PduError) as refused:
        reader.next_pdu()
    assert refused.value.reason == reason
    assert reader.buffer_size == SLICE
