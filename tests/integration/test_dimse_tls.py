"""DICOM over TLS with pynetdicom peers (PS3.15 Annex B): mutual authentication required.

The module's node listens on a plain port and a TLS port with `tls_require_client_cert`; its
short ACSE timeout lets it give up quickly on peers that fail the handshake.
"""

from __future__ import annotations

import gc
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pynetdicom.sop_class import Verification

from openpacs.tls import client_context, server_context
from tests.support import scu
from tests.support.corpus import synthetic_ct_series
from tests.support.node import HOST, Node, running_node
from tests.support.pki import Pki, make_pki

SUCCESS = 0x0000
WAIT = 10.0


@dataclass(frozen=True)
class Tls:
    node: Node
    pki: Pki


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tls]:
    pki = make_pki(tmp_path_factory.mktemp("pki"))
    dicom = {
        "tls_port": 4243,
        "tls_cert": str(pki.server_cert),
        "tls_key": str(pki.server_key),
        "tls_ca": str(pki.ca_cert),
        "tls_require_client_cert": True,
        "acse_timeout": 2.0,
    }
    with running_node(tmp_path_factory.mktemp("tls-node"), dicom=dicom) as node:
        yield Tls(node, pki)


@pytest.fixture
def node(tls: Tls) -> Iterator[Node]:
    """The TLS node; afterwards its threads are awaited and garbage collected, so that a
    socket a refused handshake leaked is reported against the test that caused it."""
    yield tls.node
    tls.node.wait_idle(WAIT)
    gc.collect()


def _client(pki: Pki, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    return client_context(ca=pki.ca_cert, cert=cert, key=key)


def _trusted(pki: Pki) -> tuple[ssl.SSLContext, str]:
    return _client(pki, pki.client_cert, pki.client_key), "localhost"


def _refused(port: int, tls_args: tuple[ssl.SSLContext, str]) -> float:
    """Try a C-ECHO association; it must not be established. Returns the seconds it took."""
    started = time.monotonic()
    with pytest.raises(ConnectionError):
        scu.echo(port, tls_args=tls_args)
    return time.monotonic() - started


def test_a_trusted_client_certificate_can_echo_store_and_find(node: Node, tls: Tls) -> None:
    tls_args = _trusted(tls.pki)
    assert scu.echo(node.tls_port, tls_args=tls_args) == SUCCESS
    (ds,) = synthetic_ct_series(1, rows=8, columns=8, patient_id="TLS-1")
    assert [s.Status for s in scu.store(node.tls_port, [ds], tls_args=tls_args)] == [SUCCESS]
    matches, final = scu.find(
        node.tls_port,
        scu.identifier("STUDY", StudyInstanceUID="", PatientID="TLS-1"),
        tls_args=tls_args,
    )
    assert final.Status == SUCCESS
    assert [str(m.StudyInstanceUID) for m in matches] == [ds.StudyInstanceUID]


def test_a_client_without_a_certificate_is_refused(node: Node, tls: Tls) -> None:
    assert _refused(node.tls_port, (_client(tls.pki), "localhost")) < WAIT


def test_a_client_certificate_from_another_ca_is_refused(node: Node, tls: Tls) -> None:
    untrusted = _client(tls.pki, tls.pki.untrusted_client_cert, tls.pki.untrusted_client_key)
    assert _refused(node.tls_port, (untrusted, "localhost")) < WAIT


def test_the_plain_port_still_serves(node: Node) -> None:
    assert scu.echo(node.port) == SUCCESS


def _legacy_client(pki: Pki) -> ssl.SSLContext:
    """A client that speaks TLS 1.0/1.1 only (SECLEVEL 0 lets OpenSSL 3 still do so)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "ssl.TLSVersion.TLSv1", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.load_verify_locations(cafile=pki.ca_cert)
    context.load_cert_chain(pki.client_cert, pki.client_key)
    return context


def _handshakes_with_a_permissive_server(client: ssl.SSLContext, pki: Pki) -> bool:
    """The control: can this client complete a TLS 1.1 handshake at all, here?"""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "ssl.TLSVersion.TLSv1", DeprecationWarning)
        server.minimum_version = ssl.TLSVersion.TLSv1
    server.set_ciphers("DEFAULT:@SECLEVEL=0")
    server.load_cert_chain(pki.server_cert, pki.server_key)
    with socket.create_server((HOST, 0)) as listener:
        listener.settimeout(WAIT)

        def serve() -> None:
            try:
                conn, _ = listener.accept()
                with conn, server.wrap_socket(conn, server_side=True) as wrapped:
                    wrapped.sendall(b"ok")
            except OSError:
                pass

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            with (
                socket.create_connection(listener.getsockname(), timeout=WAIT) as raw,
                client.wrap_socket(raw, server_hostname="localhost") as wrapped,
            ):
                return wrapped.recv(2) == b"ok" and wrapped.version() in ("TLSv1", "TLSv1.1")
        except OSError:
            return False
        finally:
            thread.join(WAIT)


def test_a_tls_1_1_client_is_refused(node: Node, tls: Tls) -> None:
    legacy = _legacy_client(tls.pki)
    assert _handshakes_with_a_permissive_server(legacy, tls.pki), (
        "this OpenSSL cannot speak TLS 1.1 even at SECLEVEL 0: the refusal below would prove"
        " nothing"
    )
    assert _refused(node.tls_port, (legacy, "localhost")) < WAIT


def test_garbage_on_the_tls_port_is_dropped(node: Node, tls: Tls) -> None:
    with socket.create_connection((HOST, node.tls_port), timeout=WAIT) as raw:
        raw.sendall(b"\x01\x00\x00\x00\x00\x10" + bytes(range(16)) + b"not a TLS hello\r\n")
        try:
            while raw.recv(4096):  # a TLS alert at most, then the node closes
                pass
        except ConnectionResetError:
            pass
    assert scu.echo(node.tls_port, tls_args=_trusted(tls.pki)) == SUCCESS


def test_a_silent_client_does_not_block_other_tls_peers(node: Node, tls: Tls) -> None:
    """The handshake runs in the association's thread, not in the accept loop (the node's
    network timeout is a minute: a blocked accept loop would fail this test)."""
    with socket.create_connection((HOST, node.tls_port), timeout=WAIT):
        started = time.monotonic()
        assert scu.echo(node.tls_port, tls_args=_trusted(tls.pki)) == SUCCESS
        assert time.monotonic() - started < WAIT / 2
    # Verification is also served to a second trusted peer at the same time as the first.
    with (
        scu.association(node.tls_port, [Verification], tls_args=_trusted(tls.pki)) as first,
        scu.association(node.tls_port, [Verification], tls_args=_trusted(tls.pki)) as second,
    ):
        scu.settle_reactor(first)
        assert first.send_c_echo().Status == SUCCESS
        scu.settle_reactor(second)
        assert second.send_c_echo().Status == SUCCESS


def test_c_move_reaches_a_destination_over_tls(tmp_path: Path, tls: Tls) -> None:
    """A remote with `tls = true` gets its sub-operations over TLS, its certificate checked
    against the node's CA (a destination with a certificate from elsewhere gets nothing)."""
    pki = tls.pki
    trusted = server_context(pki.server_cert, pki.server_key)
    untrusted = server_context(pki.untrusted_client_cert, pki.untrusted_client_key)
    with (
        scu.storage_scp("TLSDEST", ssl_context=trusted) as (port, received),
        scu.storage_scp("ROGUE", ssl_context=untrusted) as (rogue_port, rogue),
    ):
        remotes = [
            {"aet": "TLSDEST", "host": HOST, "port": port, "tls": True},
            {"aet": "ROGUE", "host": HOST, "port": rogue_port, "tls": True},
        ]
        dicom = {"tls_ca": str(pki.ca_cert), "remotes": remotes, "acse_timeout": 5.0}
        with running_node(tmp_path / "node", dicom=dicom) as node:
            series = synthetic_ct_series(2, rows=8, columns=8, patient_id="TLS-MOVE")
            assert [s.Status for s in scu.store(node.port, series)] == [SUCCESS] * 2
            study = scu.identifier("STUDY", StudyInstanceUID=series[0].StudyInstanceUID)
            statuses = scu.move(node.port, study, "TLSDEST")
            assert statuses[-1].Status == SUCCESS
            assert statuses[-1].NumberOfCompletedSuboperations == 2
            assert sorted(str(d.SOPInstanceUID) for d in received.datasets) == sorted(
                str(d.SOPInstanceUID) for d in series
            )
            refused = scu.move(node.port, study, "ROGUE")
            assert refused[-1].Status == 0xA801  # the destination could not be reached
            assert rogue.datasets == []
            node.wait_idle(WAIT)
