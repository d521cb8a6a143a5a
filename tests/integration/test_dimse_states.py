"""PS3.8 state transitions of the acceptor, one test each, over a real socket with hand-written
PDUs: what the engine sends back (or that it closes, or stays silent) is what table 9-10 says.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pynetdicom.sop_class import Verification

from openpacs.dimse import messages, pdu
from openpacs.dimse.negotiation import Capabilities
from tests.support.dimse_engine import CAPS, HOST, SYNTAXES, Engine, engine

ARTIM = 0.5
IDLE = 1.0  # a partial PDU waits this long at most, then the engine aborts
CLOSED = "closed"
SILENT = "silent"

RQ = pdu.encode(
    pdu.AssociateRq(
        "ENGINE",
        "RAW",
        (pdu.PresentationContextRq(1, Verification, tuple(SYNTAXES)),),
        pdu.UserInfo(max_pdu=16384, implementation_class_uid="1.2.3"),
    )
)
AC = pdu.encode(pdu.AssociateAc("ENGINE", "RAW", (pdu.PresentationContextAc(1, 0, SYNTAXES[0]),)))
RJ = pdu.encode(pdu.AssociateRj(1, 1, 1))
RELEASE_RQ = pdu.encode(pdu.ReleaseRq())
RELEASE_RP = pdu.encode(pdu.ReleaseRp())
ABORT = pdu.encode(pdu.Abort(0, 0))
UNKNOWN_TYPE = b"\x09\x00\x00\x00\x00\x04\x00\x00\x00\x00"


def echo_pdata(context_id: int = 1, command: bytes | None = None) -> bytes:
    if command is None:
        command = messages.encode_command(
            {
                "AffectedSOPClassUID": Verification,
                "CommandField": messages.C_ECHO_RQ,
                "MessageID": 1,
                "CommandDataSetType": messages.NO_DATASET,
            }
        )
    return b"".join(
        h + bytes(c) for h, c in messages.fragments(context_id, command, 0, is_command=True)
    )


class RawPeer:
    """A socket that speaks PDUs by hand, every wait bounded."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=5)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _exactly(self, size: int) -> bytes | None:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def receive(self, timeout: float = 3.0) -> tuple[int, bytes] | str:
        """(type, body) of the next PDU, CLOSED if the engine closed, SILENT on timeout."""
        self.sock.settimeout(timeout)
        try:
            header = self._exactly(6)
            if header is None:
                return CLOSED
            kind, length = pdu.HEADER.unpack(header)
            body = self._exactly(length)
            return CLOSED if body is None else (kind, body)
        except TimeoutError:
            return SILENT
        except ConnectionResetError:
            return CLOSED

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def node() -> Iterator[Engine]:
    strict = Capabilities(
        "ENGINE", CAPS.transfer_syntaxes, max_pdu=16384, accept_calling=lambda aet: aet != "BAD"
    )
    with engine(strict, acse_timeout=ARTIM, network_timeout=IDLE) as running:
        yield running


@pytest.fixture
def sta2(node: Engine) -> Iterator[RawPeer]:
    """Connected, nothing sent: the engine is in Sta2 (AE-5 ran)."""
    peer = RawPeer(node.port)
    yield peer
    peer.close()


@pytest.fixture
def sta6(sta2: RawPeer) -> RawPeer:
    """Associated: Sta6."""
    sta2.send(RQ)
    reply = sta2.receive()
    assert isinstance(reply, tuple)
    assert reply[0] == pdu.ASSOCIATE_AC
    return sta2


def _abort_reason(reply: tuple[int, bytes] | str) -> tuple[int, int]:
    assert isinstance(reply, tuple), reply
    assert reply[0] == pdu.ABORT
    return reply[1][2], reply[1][3]


def test_evt5_ae5_then_evt18_aa2_artim_closes_a_silent_connection(sta2: RawPeer) -> None:
    assert sta2.receive(timeout=ARTIM * 8) == CLOSED


def test_evt6_ae6_ae7_accepts(sta2: RawPeer) -> None:
    sta2.send(RQ)
    reply = sta2.receive()
    assert isinstance(reply, tuple)
    decoded = pdu.decode(reply[0], memoryview(reply[1]))
    assert isinstance(decoded, pdu.AssociateAc)
    assert decoded.contexts[0].result == pdu.ACCEPTANCE


def test_evt6_ae6_ae8_rejects_then_evt18_aa2_closes(sta2: RawPeer) -> None:
    bad = RQ[: 10 + 16] + b"BAD".ljust(16) + RQ[10 + 32 :]
    sta2.send(bad)
    reply = sta2.receive()
    assert isinstance(reply, tuple)
    assert reply == (pdu.ASSOCIATE_RJ, bytes((0, 1, 1, 3)))
    assert sta2.receive(timeout=ARTIM * 8) == CLOSED  # Sta13: ARTIM, then AA-2


@pytest.mark.parametrize(
    "received",
    [AC, RJ, echo_pdata(), RELEASE_RQ, RELEASE_RP],
    ids=["evt3", "evt4", "evt10", "evt12", "evt13"],
)
def test_sta2_unexpected_pdus_aa1_abort(sta2: RawPeer, received: bytes) -> None:
    sta2.send(received)
    assert _abort_reason(sta2.receive()) == (2, pdu.REASON_UNEXPECTED_PDU)
    assert sta2.receive(timeout=ARTIM * 8) == CLOSED


def test_sta2_evt16_aa2_closes_without_a_word(sta2: RawPeer) -> None:
    sta2.send(ABORT)
    assert sta2.receive() == CLOSED


def test_sta2_evt19_aa1_abort_unrecognized(sta2: RawPeer) -> None:
    sta2.send(UNKNOWN_TYPE)
    assert _abort_reason(sta2.receive()) == (2, pdu.REASON_UNRECOGNIZED_PDU)


def test_sta6_evt10_dt2_delivers_and_evt9_dt1_answers(sta6: RawPeer) -> None:
    sta6.send(echo_pdata())
    reply = sta6.receive()
    assert isinstance(reply, tuple)
    assert reply[0] == pdu.P_DATA_TF
    data = pdu.decode(reply[0], memoryview(reply[1]))
    assert isinstance(data, pdu.PData)
    command = messages.decode_command(data.pdvs[0].data)
    assert command.command_field == messages.C_ECHO_RSP
    assert command["Status"] == 0


def test_sta6_evt12_ar2_ar4_releases_then_sta13_evt10_aa6_ignores(sta6: RawPeer) -> None:
    sta6.send(RELEASE_RQ)
    assert sta6.receive() == (pdu.RELEASE_RP, bytes(4))
    sta6.send(echo_pdata())  # Sta13: ignored, and ARTIM closes
    assert sta6.receive(timeout=ARTIM * 8) == CLOSED


def test_sta13_evt6_aa7_aborts(sta6: RawPeer) -> None:
    sta6.send(RELEASE_RQ)
    assert sta6.receive() == (pdu.RELEASE_RP, bytes(4))
    sta6.send(RQ)
    assert _abort_reason(sta6.receive())[0] == 2


def test_sta13_evt16_aa2_closes(sta6: RawPeer) -> None:
    sta6.send(RELEASE_RQ)
    assert sta6.receive() == (pdu.RELEASE_RP, bytes(4))
    sta6.send(ABORT)
    assert sta6.receive() == CLOSED


@pytest.mark.parametrize(
    "received", [AC, RJ, RQ, RELEASE_RP], ids=["evt3", "evt4", "evt6", "evt13"]
)
def test_sta6_unexpected_pdus_aa8_abort(sta6: RawPeer, received: bytes) -> None:
    sta6.send(received)
    assert _abort_reason(sta6.receive()) == (2, pdu.REASON_UNEXPECTED_PDU)


def test_sta6_evt16_aa3_closes(node: Engine, sta6: RawPeer) -> None:
    since = len(node.events)
    sta6.send(ABORT)
    assert sta6.receive() == CLOSED
    assert node.wait_for("aborted", since=since) == "by peer source=0 reason=0"


def test_sta6_evt17_aa4_is_lost(node: Engine, sta6: RawPeer) -> None:
    since = len(node.events)
    sta6.close()
    node.wait_for("lost", since=since)


@pytest.mark.parametrize(
    ("received", "reason"),
    [
        (UNKNOWN_TYPE, pdu.REASON_UNRECOGNIZED_PDU),
        (b"\x05\x00\x00\x00\x00\x08" + bytes(8), pdu.REASON_INVALID_PARAMETER),
        (b"\x04\x00\x00\x01\x00\x00", pdu.REASON_INVALID_PARAMETER),  # beyond our max PDU
        (echo_pdata(context_id=3), pdu.REASON_INVALID_PARAMETER),  # context not accepted
        (echo_pdata(command=b"\x08\x00\x00\x00\x02\x00\x00\x00ab"), pdu.REASON_INVALID_PARAMETER),
        (b"\x04\x00\x00\x00\x00\x06\x00\x00\x00\x02\x01\x00", pdu.REASON_INVALID_PARAMETER),
    ],
    ids=["unknown-type", "release-length", "too-large", "context", "command-set", "data-first"],
)
def test_sta6_evt19_aa8_aborts_with_the_reason(sta6: RawPeer, received: bytes, reason: int) -> None:
    sta6.send(received)
    assert _abort_reason(sta6.receive()) == (2, reason)


@settings(max_examples=40, deadline=None)
@given(st.binary(min_size=1, max_size=400))
def test_fuzzed_bytes_after_association_end_in_abort_or_answer(node: Engine, noise: bytes) -> None:
    peer = RawPeer(node.port)
    try:
        peer.send(RQ)
        assert isinstance(peer.receive(), tuple)
        peer.send(noise)
        header = struct.pack(">BxL", pdu.RELEASE_RQ, 4) + bytes(4)
        peer.send(header)  # if the noise was a whole valid PDU, the release ends it
        reply = peer.receive(timeout=IDLE * 5)
        # Never silence: an abort, an answer, a release reply, or the connection closed.
        assert reply != SILENT
    finally:
        peer.close()
    # The engine still serves.
    again = RawPeer(node.port)
    try:
        again.send(RQ)
        assert isinstance(again.receive(), tuple)
    finally:
        again.close()


def test_a_huge_announced_pdu_is_not_allocated_before_its_bytes_arrive() -> None:
    unlimited = Capabilities("ENGINE", CAPS.transfer_syntaxes, max_pdu=0)
    with engine(unlimited, network_timeout=IDLE) as node:
        peer = RawPeer(node.port)
        try:
            peer.send(RQ)
            assert isinstance(peer.receive(), tuple)
            peer.send(struct.pack(">BxL", pdu.P_DATA_TF, 0xFFFFFFF0) + bytes(200_000))
            node.wait_for("accepted")
            assoc = node.associations[0]
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and assoc.buffered < 200_006:
                time.sleep(0.01)
            assert assoc.buffered == 200_006
            assert assoc.buffer_size <= 2 * 200_006 + 65536
            assert _abort_reason(peer.receive(timeout=IDLE * 5)) == (2, 0)  # idle: aborted
        finally:
            peer.close()
