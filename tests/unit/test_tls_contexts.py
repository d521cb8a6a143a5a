"""DICOM TLS contexts, tested by real handshakes over loopback (PS3.15 Annex B)."""

from __future__ import annotations

import re
import socket
import ssl
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from pynetdicom import AE, evt
from pynetdicom.events import Event
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from openpacs.errors import ConfigError
from openpacs.tls import client_context, common_name, server_context
from tests.support.pki import Pki, make_pki

TIMEOUT = 5.0


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@dataclass(frozen=True)
class Outcome:
    """What each side of one handshake saw; an error of None means that side succeeded."""

    server_error: OSError | None
    client_error: OSError | None
    peer_cn: str | None


def handshake(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, server_hostname: str = "localhost"
) -> Outcome:
    """Run one TLS handshake between the two contexts, the server in a thread.

    The server sends two bytes once its handshake is done and the client reads them: in TLS
    1.3 the client finishes its handshake before the server has checked the client
    certificate, so only that read shows a refusal on the client side.
    """
    server_seen: dict[str, object] = {}
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(TIMEOUT)
        port = listener.getsockname()[1]

        def serve() -> None:
            try:
                conn, _ = listener.accept()
                with conn:
                    conn.settimeout(TIMEOUT)
                    with server_ctx.wrap_socket(conn, server_side=True) as tls:
                        server_seen["cn"] = common_name(tls.getpeercert() or {})
                        tls.sendall(b"ok")
            except OSError as exc:  # ssl.SSLError included
                server_seen["error"] = exc

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        client_error: OSError | None = None
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw,
                client_ctx.wrap_socket(raw, server_hostname=server_hostname) as tls,
            ):
                if tls.recv(2) != b"ok":
                    raise ConnectionError("server closed without its greeting")
        except OSError as exc:
            client_error = exc
        thread.join(TIMEOUT)
        assert not thread.is_alive(), "server thread did not finish"
    server_error = server_seen.get("error")
    peer_cn = server_seen.get("cn")
    assert server_error is None or isinstance(server_error, OSError)
    assert peer_cn is None or isinstance(peer_cn, str)
    return Outcome(server_error, client_error, peer_cn)


def test_server_and_client_contexts_complete_a_handshake(pki: Pki) -> None:
    outcome = handshake(
        server_context(pki.server_cert, pki.server_key), client_context(ca=pki.ca_cert)
    )
    assert outcome == Outcome(None, None, None)


def test_contexts_allow_nothing_older_than_tls_1_2(pki: Pki) -> None:
    assert server_context(pki.server_cert, pki.server_key).minimum_version >= (
        ssl.TLSVersion.TLSv1_2
    )
    assert client_context(ca=pki.ca_cert).minimum_version >= ssl.TLSVersion.TLSv1_2


def _legacy_context(*, server_side: bool) -> ssl.SSLContext:
    """A context that speaks TLS 1.0/1.1 if the local OpenSSL still can (SECLEVEL 0)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server_side else ssl.PROTOCOL_TLS_CLIENT)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "ssl.TLSVersion.TLSv1", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
        if not server_side:
            context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def test_server_refuses_a_tls_1_1_client(pki: Pki) -> None:
    try:
        old_client = _legacy_context(server_side=False)
        old_client.load_verify_locations(cafile=pki.ca_cert)
        permissive_server = _legacy_context(server_side=True)
        permissive_server.load_cert_chain(pki.server_cert, pki.server_key)
    except (ssl.SSLError, ValueError):
        old_client = None
    # The control: a TLS 1.1 client must reach a permissive server, or the refusal below would
    # be the local OpenSSL refusing to speak TLS 1.1 rather than our server refusing it. Where
    # OpenSSL cannot build or run such a client, the configured minimum is all we can check.
    if old_client is None or handshake(permissive_server, old_client).client_error is not None:
        assert server_context(pki.server_cert, pki.server_key).minimum_version >= (
            ssl.TLSVersion.TLSv1_2
        )
        return
    outcome = handshake(server_context(pki.server_cert, pki.server_key), old_client)
    assert isinstance(outcome.server_error, ssl.SSLError)
    assert isinstance(outcome.client_error, ssl.SSLError)


def test_client_cert_is_optional_unless_required(pki: Pki) -> None:
    server = server_context(pki.server_cert, pki.server_key, ca=pki.ca_cert)
    assert handshake(server, client_context(ca=pki.ca_cert)) == Outcome(None, None, None)


def _mtls_server(pki: Pki) -> ssl.SSLContext:
    return server_context(pki.server_cert, pki.server_key, ca=pki.ca_cert, require_client_cert=True)


@pytest.mark.parametrize(
    "client_files",
    [
        pytest.param(None, id="no-client-cert"),
        pytest.param(("untrusted_client_cert", "untrusted_client_key"), id="untrusted-client-cert"),
    ],
)
def test_required_client_cert_refuses(pki: Pki, client_files: tuple[str, str] | None) -> None:
    server = _mtls_server(pki)
    if client_files is None:
        client = client_context(ca=pki.ca_cert)
    else:
        cert, key = (getattr(pki, name) for name in client_files)
        client = client_context(ca=pki.ca_cert, cert=cert, key=key)
    outcome = handshake(server, client)
    assert isinstance(outcome.server_error, ssl.SSLError)
    assert isinstance(outcome.client_error, ssl.SSLError)
    assert outcome.peer_cn is None


def test_required_client_cert_accepts_trusted_client(pki: Pki) -> None:
    server = _mtls_server(pki)
    client = client_context(ca=pki.ca_cert, cert=pki.client_cert, key=pki.client_key)
    assert handshake(server, client) == Outcome(None, None, "TESTCLIENT")


def test_client_refuses_server_from_another_ca(pki: Pki) -> None:
    outcome = handshake(
        server_context(pki.server_cert, pki.server_key), client_context(ca=pki.other_ca_cert)
    )
    assert isinstance(outcome.client_error, ssl.SSLCertVerificationError)
    assert isinstance(outcome.server_error, ssl.SSLError)


def test_client_refuses_expired_server_cert(pki: Pki) -> None:
    outcome = handshake(
        server_context(pki.expired_server_cert, pki.expired_server_key),
        client_context(ca=pki.ca_cert),
    )
    assert isinstance(outcome.client_error, ssl.SSLCertVerificationError)
    assert "expired" in outcome.client_error.verify_message


def test_hostname_is_checked_unless_disabled(pki: Pki) -> None:
    server = server_context(pki.server_cert, pki.server_key)
    checked = handshake(server, client_context(ca=pki.ca_cert), server_hostname="pacs.example")
    assert isinstance(checked.client_error, ssl.SSLCertVerificationError)
    unchecked = client_context(ca=pki.ca_cert, check_hostname=False)
    assert handshake(server, unchecked, server_hostname="pacs.example").client_error is None
    # The IP address SAN serves peers configured by address.
    by_ip = handshake(server, client_context(ca=pki.ca_cert), server_hostname="127.0.0.1")
    assert by_ip.client_error is None


def test_common_name_of_a_certificate_without_one_is_none() -> None:
    assert common_name({}) is None  # what Python reports for an unverified peer
    organisation_only = {"subject": ((("organizationName", "Hospital"),),)}
    assert common_name(organisation_only) is None
    both = {"subject": ((("organizationName", "Hospital"),), (("commonName", "CT1"),))}
    assert common_name(both) == "CT1"


def test_missing_cert_file_is_a_config_error_naming_it(pki: Pki, tmp_path: Path) -> None:
    missing = tmp_path / "absent.pem"
    with pytest.raises(ConfigError, match=re.escape(str(missing))):
        server_context(missing, pki.server_key)
    with pytest.raises(ConfigError, match=re.escape(str(missing))):
        client_context(ca=missing)


def test_mismatched_key_is_a_config_error_naming_both(pki: Pki) -> None:
    with pytest.raises(ConfigError, match="does not match") as caught:
        server_context(pki.server_cert, pki.client_key)
    assert str(pki.server_cert) in caught.value.reason
    assert str(pki.client_key) in caught.value.reason


def test_unreadable_pem_is_a_config_error_naming_the_file(pki: Pki) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"certificate file {pki.server_key}")):
        server_context(pki.server_key, pki.server_key)
    with pytest.raises(ConfigError, match=re.escape(f"key file {pki.server_cert}")):
        server_context(pki.server_cert, pki.server_cert)
    with pytest.raises(ConfigError, match=re.escape(f"CA file {pki.server_key}")):
        client_context(ca=pki.server_key)


@pytest.fixture(scope="module")
def encrypted_server_key(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Path:
    key = serialization.load_pem_private_key(pki.server_key.read_bytes(), password=None)
    path = tmp_path_factory.mktemp("encrypted") / "server.key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"right"),
        )
    )
    return path


@pytest.mark.parametrize(
    ("password", "problem"),
    [("wrong", "password is wrong"), (None, "no password was given")],
)
def test_encrypted_key_without_its_password_is_a_config_error(
    pki: Pki, encrypted_server_key: Path, password: str | None, problem: str
) -> None:
    # Never a terminal prompt: that would hang a server at start-up.
    with pytest.raises(ConfigError, match=problem) as caught:
        server_context(pki.server_cert, encrypted_server_key, key_password=password)
    assert str(encrypted_server_key) in caught.value.reason


def test_encrypted_key_with_its_password_loads(pki: Pki, encrypted_server_key: Path) -> None:
    server = server_context(pki.server_cert, encrypted_server_key, key_password="right")
    assert handshake(server, client_context(ca=pki.ca_cert)).client_error is None


def test_inconsistent_arguments_are_config_errors(pki: Pki) -> None:
    with pytest.raises(ConfigError, match="CA"):
        server_context(pki.server_cert, pki.server_key, require_client_cert=True)
    with pytest.raises(ConfigError, match="both"):
        client_context(ca=pki.ca_cert, cert=pki.client_cert)


def test_c_echo_over_mutual_tls_with_pynetdicom(pki: Pki) -> None:
    peers: list[str | None] = []

    def on_echo(event: Event) -> int:
        assoc_socket = event.assoc.dul.socket
        assert assoc_socket is not None
        peers.append(common_name(assoc_socket.socket.getpeercert() or {}))
        return 0x0000

    scp = AE(ae_title="OPENPACS")
    scp.add_supported_context(Verification)
    scp.acse_timeout = scp.dimse_timeout = scp.network_timeout = TIMEOUT
    server = scp.start_server(
        ("127.0.0.1", 0),
        block=False,
        ssl_context=_mtls_server(pki),
        evt_handlers=[(evt.EVT_C_ECHO, on_echo)],
    )
    assert server is not None
    try:
        assert server.socket is not None
        port = server.socket.getsockname()[1]
        scu = AE(ae_title="TESTCLIENT")
        scu.add_requested_context(Verification)
        scu.acse_timeout = scu.dimse_timeout = scu.network_timeout = TIMEOUT
        scu.connection_timeout = TIMEOUT
        tls = client_context(ca=pki.ca_cert, cert=pki.client_cert, key=pki.client_key)
        assoc = scu.associate("127.0.0.1", port, tls_args=(tls, "localhost"))
        assert assoc.is_established
        try:
            status = assoc.send_c_echo()
        finally:
            assoc.release()
        assert status.Status == 0x0000
        assert peers == ["TESTCLIENT"]
    finally:
        server.shutdown()
