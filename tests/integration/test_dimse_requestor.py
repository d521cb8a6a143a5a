"""The engine as requestor: against DCMTK storescp and a pynetdicom SCP, and its own PS3.8
transitions (Sta4, Sta5, Sta7, the release collision Sta9/Sta11) against a hand-written peer."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.sop_class import Verification

from openpacs.dimse import messages, pdu
from openpacs.dimse.association import AssociationClosed, AssociationRejected, FileSlice
from openpacs.dimse.requestor import Replies, associate, request
from tests.support.corpus import synthetic_ct_series, write_part10
from tests.support.dcmtk_peer import HOST, free_port, storescp

SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
CONTEXTS = [(Verification, SYNTAXES), (CTImageStorage, SYNTAXES)]
ECHO = {"AffectedSOPClassUID": Verification, "CommandField": messages.C_ECHO_RQ, "MessageID": 1}


def _dataset_slice(path: Path) -> FileSlice:
    meta = dcmread(path, stop_before_pixels=True).file_meta
    offset = 128 + 4 + 12 + int(meta.FileMetaInformationGroupLength)
    return FileSlice(path, offset, path.stat().st_size - offset)


def _store(ds: Any, message_id: int) -> dict[str, object]:
    return {
        "AffectedSOPClassUID": CTImageStorage,
        "CommandField": messages.C_STORE_RQ,
        "MessageID": message_id,
        "Priority": 0,
        "AffectedSOPInstanceUID": str(ds.SOPInstanceUID),
    }


@pytest.mark.dcmtk
def test_stores_file_slices_to_storescp(tmp_path: Path) -> None:
    series = synthetic_ct_series(3, rows=256, columns=256)
    paths = [write_part10(ds, tmp_path / f"ct{i}.dcm") for i, ds in enumerate(series)]

    async def send(port: int) -> list[int]:
        assoc = await associate(
            HOST, port, calling="ENGINE", called="STORESCP", contexts=CONTEXTS, max_pdu=16384
        )
        context = next(c.id for c in assoc.contexts.values() if c.abstract_syntax == CTImageStorage)
        statuses = [int((await request(assoc, 1, ECHO)).command["Status"])]
        for number, (ds, path) in enumerate(zip(series, paths, strict=True), start=2):
            reply = await request(assoc, context, _store(ds, number), _dataset_slice(path))
            statuses.append(int(reply.command["Status"]))
        await assoc.release()
        assert await assoc.closed == "released"
        return statuses

    port = free_port()
    with storescp(tmp_path / "scp", port) as peer:
        assert asyncio.run(send(port)) == [0, 0, 0, 0]
        received = {str(ds.SOPInstanceUID): ds for ds in peer.received()}
    for ds in series:
        assert received[str(ds.SOPInstanceUID)].PixelData == ds.PixelData


def test_pynetdicom_scp_rejection_and_echo() -> None:
    ae = AE(ae_title="PYSCP")
    ae.add_supported_context(Verification)
    ae.require_calling_aet = ["ENGINE"]
    server = ae.start_server((HOST, 0), block=False)
    port = server.server_address[1]

    async def run() -> None:
        assoc = await associate(HOST, port, calling="ENGINE", called="PYSCP", contexts=CONTEXTS)
        assert [c.abstract_syntax for c in assoc.contexts.values()] == [Verification]
        assert assoc.peer_max_pdu == 16382  # pynetdicom's default
        reply = await request(assoc, 1, ECHO)
        assert reply.command.command_field == messages.C_ECHO_RSP
        await assoc.release()
        with pytest.raises(AssociationRejected) as rejected:
            await associate(HOST, port, calling="OTHER", called="PYSCP", contexts=CONTEXTS)
        assert (rejected.value.rj.result, rejected.value.rj.reason) == (1, 3)

    try:
        asyncio.run(run())
    finally:
        server.shutdown()


class HandPeer:
    """A one-connection server that runs `script(conn)` on a thread, for requestor states."""

    def __init__(self, script: Callable[[socket.socket], None]) -> None:
        self.sock = socket.create_server((HOST, 0))
        self.port = self.sock.getsockname()[1]
        self.seen: list[int] = []
        self.error: BaseException | None = None
        self._script = script
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(10)
        try:
            conn, _ = self.sock.accept()
            conn.settimeout(5)
            with conn:
                self._script(conn)
        except BaseException as exc:  # reported by join()
            self.error = exc
        finally:
            self.sock.close()

    def join(self) -> None:
        self.thread.join(15)
        if self.error is not None:
            raise self.error


def read_pdu(conn: socket.socket) -> tuple[int, bytes]:
    def exactly(size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = conn.recv(size - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    kind, length = pdu.HEADER.unpack(exactly(6))
    return kind, exactly(length)


def closed_by_peer(conn: socket.socket) -> bool:
    try:
        return conn.recv(1) == b""
    except ConnectionResetError:
        return True


AC = pdu.encode(
    pdu.AssociateAc(
        "HAND",
        "ENGINE",
        (pdu.PresentationContextAc(1, 0, ExplicitVRLittleEndian),),
        pdu.UserInfo(max_pdu=16384, implementation_class_uid="1.2.3"),
    )
)
ECHO_RSP = b"".join(
    header + bytes(chunk)
    for header, chunk in messages.fragments(
        1,
        messages.encode_command(
            {
                "CommandField": messages.C_ECHO_RSP,
                "MessageIDBeingRespondedTo": 1,
                "Status": 0,
                "CommandDataSetType": messages.NO_DATASET,
            }
        ),
        0,
        is_command=True,
    )
)


def _associate(port: int, acse_timeout: float = 5.0) -> Any:
    return associate(
        HOST,
        port,
        calling="ENGINE",
        called="HAND",
        contexts=CONTEXTS[:1],
        acse_timeout=acse_timeout,
    )


@pytest.fixture
def hand() -> Iterator[Callable[[Callable[[socket.socket], None]], HandPeer]]:
    peers: list[HandPeer] = []

    def make(script: Callable[[socket.socket], None]) -> HandPeer:
        peers.append(HandPeer(script))
        return peers[-1]

    yield make
    for peer in peers:
        peer.join()


def test_sta5_evt3_ae3_then_evt11_ar1_and_evt13_ar3(hand: Any) -> None:
    def script(conn: socket.socket) -> None:
        assert read_pdu(conn)[0] == pdu.ASSOCIATE_RQ
        conn.sendall(AC)
        assert read_pdu(conn) == (pdu.RELEASE_RQ, bytes(4))
        conn.sendall(pdu.encode(pdu.ReleaseRp()))
        assert closed_by_peer(conn)  # AR-3 closes

    peer = hand(script)

    async def run() -> None:
        assoc = await _associate(peer.port)
        assert assoc.peer_max_pdu == 16384
        await assoc.release()
        assert await assoc.closed == "released"

    asyncio.run(run())


def test_sta5_evt4_ae4_rejected(hand: Any) -> None:
    def script(conn: socket.socket) -> None:
        read_pdu(conn)
        conn.sendall(pdu.encode(pdu.AssociateRj(2, 3, 2)))
        assert closed_by_peer(conn)

    peer = hand(script)

    async def run() -> None:
        with pytest.raises(AssociationRejected) as rejected:
            await _associate(peer.port)
        assert rejected.value.rj == pdu.AssociateRj(2, 3, 2)

    asyncio.run(run())


@pytest.mark.parametrize(
    ("answer", "abort_expected"),
    [(pdu.encode(pdu.Abort(0, 0)), False), (ECHO_RSP, True), (b"\x0a\x00\x00\x00\x00\x00", True)],
    ids=["evt16-aa3", "evt10-aa8", "evt19-aa8"],
)
def test_sta5_other_answers_end_the_attempt(hand: Any, answer: bytes, abort_expected: bool) -> None:
    def script(conn: socket.socket) -> None:
        read_pdu(conn)
        conn.sendall(answer)
        if abort_expected:
            assert read_pdu(conn)[0] == pdu.ABORT
            conn.close()
        else:
            assert closed_by_peer(conn)

    peer = hand(script)

    async def run() -> None:
        with pytest.raises(AssociationClosed):
            await _associate(peer.port)

    asyncio.run(run())


def test_sta5_silence_is_aborted_after_acse_timeout(hand: Any) -> None:
    def script(conn: socket.socket) -> None:
        read_pdu(conn)
        assert read_pdu(conn)[0] == pdu.ABORT

    peer = hand(script)

    async def run() -> None:
        with pytest.raises(TimeoutError):
            await _associate(peer.port, acse_timeout=0.5)

    asyncio.run(run())


def test_sta7_evt10_ar6_delivers_then_release_collision_sta9_ar9_sta11_ar3(hand: Any) -> None:
    def script(conn: socket.socket) -> None:
        read_pdu(conn)
        conn.sendall(AC)
        assert read_pdu(conn)[0] == pdu.P_DATA_TF  # the echo request
        assert read_pdu(conn) == (pdu.RELEASE_RQ, bytes(4))  # Sta7
        conn.sendall(ECHO_RSP)  # AR-6: still delivered
        conn.sendall(pdu.encode(pdu.ReleaseRq()))  # collision: AR-8 -> Sta9 -> AR-9
        assert read_pdu(conn) == (pdu.RELEASE_RP, bytes(4))  # Sta11
        conn.sendall(pdu.encode(pdu.ReleaseRp()))
        assert closed_by_peer(conn)  # AR-3

    peer = hand(script)

    async def run() -> None:
        assoc = await _associate(peer.port)
        await assoc.send_message(1, ECHO)
        await assoc.release()
        assert await assoc.closed == "released"
        replies = assoc.handler
        assert isinstance(replies, Replies)
        message = await replies.next(1)
        assert message.command.command_field == messages.C_ECHO_RSP

    asyncio.run(run())
