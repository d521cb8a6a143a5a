"""`openpacs certs`: a small private CA for demos, test sites and DICOM TLS peers.

It makes what browsers and DICOM peers insist on, so the certificates work the first time:

- a CA certificate (basicConstraints CA:TRUE and keyUsage keyCertSign/cRLSign, both critical),
  to be trusted by the browsers and peers that connect;
- server certificates with the host names and addresses in subjectAltName (browsers ignore the
  common name), extendedKeyUsage serverAuth, keyUsage digitalSignature (+ keyEncipherment for
  RSA) and at most 825 days of validity (Apple's limit for TLS server certificates, which Chrome
  on macOS applies too);
- client certificates (extendedKeyUsage clientAuth) for DICOM TLS peers, verified by
  ``[dicom] tls_ca`` when ``tls_require_client_cert`` is on (PS3.15 B.9).

Every certificate carries subject and authority key identifiers, as RFC 5280 asks and OpenSSL's
strict verification (``VERIFY_X509_STRICT``, used by openpacs' own TLS contexts) requires.
Private keys are written unencrypted (a service reads them unattended) with mode 0600; existing
files are never overwritten without ``--force``, so a CA key cannot be lost by a second run.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import click
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KeyType = Literal["rsa", "ec"]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

#: Apple's ceiling for TLS server certificates (and what Chrome on macOS enforces with it).
MAX_LEAF_DAYS = 825
CA_FILE, CA_KEY_FILE = "ca.pem", "ca.key"
SERVER_FILE, SERVER_KEY_FILE = "server.pem", "server.key"
_BACKDATE = dt.timedelta(minutes=5)  # tolerate a peer whose clock is slightly behind


@dataclass(frozen=True)
class Issuer:
    """A CA certificate and its key, able to sign."""

    cert: x509.Certificate
    key: PrivateKey


def new_key(key_type: KeyType) -> PrivateKey:
    """RSA 2048 works with every DICOM TLS stack; P-256 is smaller and faster."""
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(common_name: str, organization: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_usage(*, sign_certs: bool, key_encipherment: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not sign_certs,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=sign_certs,
        crl_sign=sign_certs,
        encipher_only=False,
        decipher_only=False,
    )


def make_ca(common_name: str, *, organization: str, days: int, key_type: KeyType = "rsa") -> Issuer:
    """A self-signed root that may sign end-entity certificates only (pathLen 0)."""
    key = new_key(key_type)
    start = dt.datetime.now(dt.UTC) - _BACKDATE
    subject = _name(common_name, organization)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(sign_certs=True, key_encipherment=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issuer(cert, key)


def parse_hosts(hosts: Sequence[str]) -> list[x509.GeneralName]:
    """Each host as an IP address SAN when it is one, else as a DNS name SAN."""
    names: list[x509.GeneralName] = []
    for host in hosts:
        host = host.strip()
        if not host:
            raise click.BadParameter("a host name must not be empty", param_hint="--host")
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def issue(
    issuer: Issuer,
    common_name: str,
    *,
    usage: Literal["server", "client"],
    sans: Sequence[x509.GeneralName],
    days: int,
    key_type: KeyType = "rsa",
) -> tuple[x509.Certificate, PrivateKey]:
    """An end-entity certificate signed by `issuer`, for TLS servers or TLS clients."""
    if not 1 <= days <= MAX_LEAF_DAYS:
        raise click.BadParameter(f"must be between 1 and {MAX_LEAF_DAYS}", param_hint="--days")
    key = new_key(key_type)
    # Browsers measure notAfter - notBefore, so the backdated start counts against the limit.
    start = dt.datetime.now(dt.UTC) - _BACKDATE
    not_after = min(start + dt.timedelta(days=days), issuer.cert.not_valid_after_utc)
    purpose = (
        ExtendedKeyUsageOID.SERVER_AUTH if usage == "server" else (ExtendedKeyUsageOID.CLIENT_AUTH)
    )
    issuer_ski = issuer.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, _organization(issuer.cert)))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            _key_usage(sign_certs=False, key_encipherment=isinstance(key, rsa.RSAPrivateKey)),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([purpose]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski.value),
            critical=False,
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return builder.sign(issuer.key, hashes.SHA256()), key


def _organization(cert: x509.Certificate) -> str:
    values = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return str(values[0].value) if values else "openpacs"


# --- files ----------------------------------------------------------------------------------


def _refuse_existing(paths: Sequence[Path], force: bool) -> None:
    existing = [str(path) for path in paths if path.exists()]
    if existing and not force:
        raise click.ClickException(
            f"{', '.join(existing)} already exist(s); use --force to replace"
        )


def write_pair(cert: x509.Certificate, key: PrivateKey, cert_path: Path, key_path: Path) -> None:
    """The certificate (0644) and its unencrypted PKCS#8 key (0600, created so from the start)."""
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key_path.unlink(missing_ok=True)
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(key_bytes)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    cert_path.chmod(0o644)


def load_issuer(ca_dir: Path) -> Issuer:
    """The CA that `openpacs certs ca` wrote to `ca_dir`, with a message naming what is wrong."""
    cert_path, key_path = ca_dir / CA_FILE, ca_dir / CA_KEY_FILE
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except FileNotFoundError as exc:
        raise click.ClickException(
            f"{exc.filename}: not found (run `openpacs certs ca {ca_dir}` first)"
        ) from None
    except (ValueError, TypeError) as exc:
        raise click.ClickException(f"{ca_dir}: cannot read the CA: {exc}") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise click.ClickException(f"{key_path}: only RSA and EC keys are supported")
    if cert.public_key().public_numbers() != key.public_key().public_numbers():
        raise click.ClickException(f"{key_path} is not the key of {cert_path}")
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    if not constraints.ca:
        raise click.ClickException(f"{cert_path} is not a CA certificate")
    return Issuer(cert, key)


# --- the command ----------------------------------------------------------------------------

_DIR = click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
_KEY_TYPE = click.option(
    "--key-type",
    type=click.Choice(["rsa", "ec"]),
    default="rsa",
    show_default=True,
    help="RSA 2048 (works with every DICOM TLS stack) or EC P-256.",
)
_FORCE = click.option("--force", is_flag=True, help="Replace existing files.")
_CA_DIR = click.option(
    "--ca-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder holding ca.pem and ca.key (default: DIRECTORY).",
)
_LEAF_DAYS = click.option(
    "--days",
    type=int,
    default=MAX_LEAF_DAYS,
    show_default=True,
    help=f"Validity in days (at most {MAX_LEAF_DAYS}, and never past the CA's).",
)


@click.group()
def certs() -> None:
    """A private CA and its certificates, for demos and DICOM TLS peers.

    \b
    openpacs certs ca tls/
    openpacs certs server tls/ --host pacs.example.org --host 10.0.0.5
    openpacs certs client tls/ --name MODALITY1
    """


@certs.command("ca")
@_DIR
@click.option("--name", default="openpacs demo CA", show_default=True, help="CA common name.")
@click.option("--organization", default="openpacs", show_default=True)
@click.option("--days", type=click.IntRange(1, 7305), default=3650, show_default=True)
@_KEY_TYPE
@_FORCE
def ca_command(
    directory: Path, name: str, organization: str, days: int, key_type: KeyType, force: bool
) -> None:
    """Create a CA: DIRECTORY/ca.pem (trust this one) and DIRECTORY/ca.key (keep it private)."""
    paths = [directory / CA_FILE, directory / CA_KEY_FILE]
    _refuse_existing(paths, force)
    issuer = make_ca(name, organization=organization, days=days, key_type=key_type)
    write_pair(issuer.cert, issuer.key, *paths)
    click.echo(f"wrote {paths[0]} and {paths[1]}")


@certs.command("server")
@_DIR
@click.option(
    "--host",
    "hosts",
    multiple=True,
    required=True,
    help="A DNS name or IP address clients use (repeat for more); the first is the CN.",
)
@_CA_DIR
@_LEAF_DAYS
@_KEY_TYPE
@_FORCE
def server_command(
    directory: Path,
    hosts: tuple[str, ...],
    ca_dir: Path | None,
    days: int,
    key_type: KeyType,
    force: bool,
) -> None:
    """A server certificate for HTTPS and DICOM TLS: DIRECTORY/server.pem and server.key."""
    issuer = load_issuer(ca_dir or directory)
    paths = [directory / SERVER_FILE, directory / SERVER_KEY_FILE]
    _refuse_existing(paths, force)
    cert, key = issue(
        issuer, hosts[0], usage="server", sans=parse_hosts(hosts), days=days, key_type=key_type
    )
    write_pair(cert, key, *paths)
    click.echo(f"wrote {paths[0]} and {paths[1]}")


@certs.command("client")
@_DIR
@click.option("--name", required=True, help="The peer's name, e.g. its AE title (the CN).")
@_CA_DIR
@_LEAF_DAYS
@_KEY_TYPE
@_FORCE
def client_command(
    directory: Path, name: str, ca_dir: Path | None, days: int, key_type: KeyType, force: bool
) -> None:
    """A client certificate for a DICOM TLS peer: DIRECTORY/NAME.pem and NAME.key."""
    stem = name.strip()
    if not stem or any(char in stem for char in "/\\\0") or stem.startswith("."):
        raise click.BadParameter("must be a plain name, without slashes", param_hint="--name")
    issuer = load_issuer(ca_dir or directory)
    paths = [directory / f"{stem}.pem", directory / f"{stem}.key"]
    _refuse_existing(paths, force)
    cert, key = issue(issuer, stem, usage="client", sans=(), days=days, key_type=key_type)
    write_pair(cert, key, *paths)
    click.echo(f"wrote {paths[0]} and {paths[1]}")
