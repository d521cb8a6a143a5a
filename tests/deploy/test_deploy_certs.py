"""`openpacs certs`: what it writes passes OpenSSL's strict checks, carries what browsers
require (subjectAltName, serverAuth, at most 825 days), and is accepted by DCMTK and Python's
ssl against a running `openpacs serve` with DICOM TLS and client certificates required.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from openpacs.cli.main import cli
from tests.support.dcmtk import run as run_dcmtk
from tests.support.dcmtk_peer import output
from tests.support.process import ServerProcess, free_port, run_cli, serving

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stderr: str


def certs(*args: str) -> Outcome:
    """The `openpacs certs` command, run in this process (tests below also run it as `openpacs`
    would be run, in a subprocess)."""
    result = CliRunner().invoke(cli, ["certs", *args], catch_exceptions=False)
    return Outcome(result.exit_code, result.output)


def make_site(folder: Path, *, key_type: str = "rsa") -> Path:
    """A CA, a server certificate for localhost and 127.0.0.1, a client certificate."""
    for args in (
        ["ca", str(folder), "--key-type", key_type],
        ["server", str(folder), "--host", "localhost", "--host", HOST, "--key-type", key_type],
        ["client", str(folder), "--name", "MODALITY1", "--key-type", key_type],
    ):
        result = certs(*args)
        assert result.returncode == 0, result.stderr
    return folder


def openssl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", *args], capture_output=True, text=True, timeout=30, check=False
    )


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_site(tmp_path_factory.mktemp("tls"))


@pytest.mark.parametrize("key_type", ["rsa", "ec"])
def test_openssl_verifies_the_chain_strictly_for_each_purpose(
    tmp_path: Path, key_type: str
) -> None:
    folder = make_site(tmp_path, key_type=key_type)
    ca = str(folder / "ca.pem")
    for leaf, purpose in (("server.pem", "sslserver"), ("MODALITY1.pem", "sslclient")):
        result = openssl("verify", "-x509_strict", "-purpose", purpose, "-CAfile", ca,
                         str(folder / leaf))  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.strip().endswith(": OK")
    # a server certificate is no client certificate, and the reverse
    wrong = openssl("verify", "-purpose", "sslclient", "-CAfile", ca, str(folder / "server.pem"))
    assert wrong.returncode != 0


def test_server_certificate_has_what_browsers_require(site: Path) -> None:
    text = openssl("x509", "-in", str(site / "server.pem"), "-noout", "-text").stdout
    assert "DNS:localhost, IP Address:127.0.0.1" in text
    assert "TLS Web Server Authentication" in text
    assert "CA:FALSE" in text
    assert "Digital Signature, Key Encipherment" in text
    cert = load(site / "server.pem")
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime <= dt.timedelta(days=825)
    assert cert.signature_hash_algorithm is not None
    assert cert.signature_hash_algorithm.name == "sha256"
    ca_text = openssl("x509", "-in", str(site / "ca.pem"), "-noout", "-text").stdout
    assert "CA:TRUE, pathlen:0" in ca_text
    assert "Certificate Sign, CRL Sign" in ca_text


def test_client_certificate_is_for_client_authentication(site: Path) -> None:
    usage = load(site / "MODALITY1.pem").extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert list(usage.value) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_private_keys_are_readable_by_their_owner_only(site: Path) -> None:
    for name in ("ca.key", "server.key", "MODALITY1.key"):
        assert (site / name).stat().st_mode & 0o777 == 0o600, name
    assert (site / "ca.pem").stat().st_mode & 0o777 == 0o644


def test_the_installed_command_writes_a_ca(tmp_path: Path) -> None:
    result = run_cli(["certs", "ca", str(tmp_path), "--key-type", "ec"])
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout
    assert load(tmp_path / "ca.pem").extensions.get_extension_for_class(x509.BasicConstraints)


def test_an_existing_ca_is_never_replaced_without_force(site: Path) -> None:
    before = (site / "ca.key").read_bytes()
    result = certs("ca", str(site))
    assert result.returncode != 0
    assert "already exist" in result.stderr
    assert "--force" in result.stderr
    assert (site / "ca.key").read_bytes() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["server", "{dir}/empty", "--host", "localhost"], "not found"),
        (["server", "{dir}", "--host", "localhost", "--days", "826", "--force"], "825"),
        (["client", "{dir}", "--name", "../evil"], "slashes"),
        (["server", "{dir}/empty", "--ca-dir", "{dir}/empty"], "--host"),
    ],
    ids=["no-ca", "too-long", "bad-name", "no-host"],
)
def test_bad_requests_fail_with_a_reason(
    site: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    (site / "empty").mkdir(exist_ok=True)
    result = certs(*(arg.format(dir=site) for arg in args))
    assert result.returncode != 0
    assert message in result.stderr
    assert not list((site / "empty").iterdir())


def test_a_key_that_is_not_the_cas_is_refused(site: Path, tmp_path: Path) -> None:
    other = make_site(tmp_path / "other")
    (tmp_path / "mixed").mkdir()
    (tmp_path / "mixed" / "ca.pem").write_bytes((site / "ca.pem").read_bytes())
    (tmp_path / "mixed" / "ca.key").write_bytes((other / "ca.key").read_bytes())
    result = certs("client", str(tmp_path / "mixed"), "--name", "X")
    assert result.returncode != 0
    assert "is not the key of" in result.stderr


# --- against a running openpacs -------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_server(
    site: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, int, int]]:
    folder = tmp_path_factory.mktemp("server")
    port, tls_port, http_port = free_port(), free_port(), free_port()
    config = folder / "openpacs.toml"
    config.write_text(
        f"""
[dicom]
port = {port}
tls_port = {tls_port}
tls_cert = "{site / "server.pem"}"
tls_key = "{site / "server.key"}"
tls_ca = "{site / "ca.pem"}"
tls_require_client_cert = true
workers = 1

[http]
host = "{HOST}"
port = {http_port}
tls_cert = "{site / "server.pem"}"
tls_key = "{site / "server.key"}"

[database]
url = "sqlite:///{folder / "index.db"}"

[storage]
url = "{folder / "blobs"}"
""",
        encoding="utf-8",
    )
    with serving(config, port=port, log_dir=folder, cwd=folder) as server:
        server.wait_for_log("service=https")
        yield server, tls_port, http_port


@pytest.mark.dcmtk
def test_dcmtk_echoscu_over_tls_with_the_helpers_certificates(
    site: Path, tls_server: tuple[ServerProcess, int, int]
) -> None:
    _, tls_port, _ = tls_server
    tls = ["+tls", str(site / "MODALITY1.key"), str(site / "MODALITY1.pem"), "-pw"]
    result = run_dcmtk("echoscu", *tls, "+cf", str(site / "ca.pem"), "-aec", "OPENPACS",
                       HOST, str(tls_port), timeout=30)  # fmt: skip
    assert result.returncode == 0, output(result)


@pytest.mark.dcmtk
def test_dcmtk_refuses_a_server_from_an_unknown_ca(
    site: Path, tmp_path: Path, tls_server: tuple[ServerProcess, int, int]
) -> None:
    stranger = make_site(tmp_path / "stranger")
    _, tls_port, _ = tls_server
    tls = ["+tls", str(site / "MODALITY1.key"), str(site / "MODALITY1.pem"), "-pw"]
    result = run_dcmtk("echoscu", *tls, "+cf", str(stranger / "ca.pem"), HOST, str(tls_port),
                       timeout=30)  # fmt: skip
    assert result.returncode != 0, output(result)


def client_context(site: Path, ca: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    context.load_cert_chain(site / "MODALITY1.pem", site / "MODALITY1.key")
    return context


@pytest.mark.parametrize("name", ["localhost", HOST])
def test_python_ssl_verifies_the_server_by_name_and_address(
    site: Path, tls_server: tuple[ServerProcess, int, int], name: str
) -> None:
    _, tls_port, _ = tls_server
    context = client_context(site, site / "ca.pem")
    with (
        socket.create_connection((HOST, tls_port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=name) as tls,
    ):
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
        peer = tls.getpeercert()
        assert ("DNS", "localhost") in peer["subjectAltName"]


def test_python_ssl_refuses_the_server_under_another_name_or_ca(
    site: Path, tmp_path: Path, tls_server: tuple[ServerProcess, int, int]
) -> None:
    _, tls_port, _ = tls_server
    stranger = make_site(tmp_path / "stranger")
    for ca, name in ((site / "ca.pem", "pacs.example.org"), (stranger / "ca.pem", "localhost")):
        context = client_context(site, ca)
        with (
            socket.create_connection((HOST, tls_port), timeout=10) as raw,
            pytest.raises(ssl.SSLCertVerificationError),
        ):
            context.wrap_socket(raw, server_hostname=name)


@pytest.mark.parametrize("name", ["localhost", HOST])
def test_https_health_through_a_client_that_trusts_the_ca(
    site: Path, tls_server: tuple[ServerProcess, int, int], name: str
) -> None:
    _, _, http_port = tls_server
    context = ssl.create_default_context(cafile=str(site / "ca.pem"))
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    with (
        socket.create_connection((HOST, http_port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=name) as tls,
    ):
        tls.sendall(f"GET /health HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.split()[1] == b"200", answer
    assert json.loads(rest.split(b"\r\n\r\n", 1)[1]) == {"status": "ok"}


def test_https_refuses_a_client_that_does_not_trust_the_ca(
    site: Path, tmp_path: Path, tls_server: tuple[ServerProcess, int, int]
) -> None:
    _, _, http_port = tls_server
    stranger = make_site(tmp_path / "stranger")
    context = ssl.create_default_context(cafile=str(stranger / "ca.pem"))
    with (
        socket.create_connection((HOST, http_port), timeout=10) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        context.wrap_socket(raw, server_hostname="localhost")


def test_the_images_healthcheck_passes_against_openpacs_over_https(
    tls_server: tuple[ServerProcess, int, int],
) -> None:
    from tests.deploy.test_deploy_container import healthcheck, stages

    _, _, http_port = tls_server
    dockerfile = stages(ROOT / "deploy" / "Dockerfile")
    assert healthcheck(dockerfile, f"https://127.0.0.1:{http_port}/health") == 0
    assert healthcheck(dockerfile, f"https://127.0.0.1:{http_port}/api/session") != 0  # 401
