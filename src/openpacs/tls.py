"""TLS contexts for DICOM over TLS (PS3.15 Annex B) and HTTPS alike.

Both sides follow the BCP195 secure transport connection profiles (PS3.15 B.9, B.10; RFC 9325):
TLS 1.2 or newer only, forward-secret AEAD cipher suites only, no compression, no
renegotiation. Every file problem becomes a `ConfigError` at start-up, naming the file, so an
operator sees it before the first peer connects rather than as a failed handshake later.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from openpacs.errors import ConfigError

# RFC 9325 section 4.2: ECDHE/DHE key exchange with AES-GCM or ChaCha20-Poly1305. This string
# governs TLS 1.2 only; OpenSSL's TLS 1.3 suites are all AEAD and forward-secret already.
_TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL:!DSS:!PSK"

# OP_NO_COMPRESSION: CRIME (RFC 9325 3.3). OP_NO_RENEGOTIATION: TLS 1.2 renegotiation, which
# TLS 1.3 has dropped anyway.
_OPTIONS = ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION


def server_context(
    cert: Path,
    key: Path,
    ca: Path | None = None,
    require_client_cert: bool = False,
    *,
    key_password: str | None = None,
) -> ssl.SSLContext:
    """Build the context a TLS listener (DICOM or HTTP) wraps accepted connections with.

    With `ca`, client certificates are verified against it: optional by default (a client
    may still connect without one), mandatory with `require_client_cert`. Without `ca`,
    clients are not asked for a certificate.
    """
    if require_client_cert and ca is None:
        raise ConfigError("TLS: requiring client certificates needs a CA file to verify them")
    context = _base_context(server_side=True)
    context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    _load_cert_chain(context, cert, key, key_password)
    if ca is not None:
        _load_ca(context, ca)
        context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    return context


def client_context(
    ca: Path | None = None,
    cert: Path | None = None,
    key: Path | None = None,
    check_hostname: bool = True,
    *,
    key_password: str | None = None,
) -> ssl.SSLContext:
    """Build the context for associating with a peer over TLS.

    The peer's certificate is always verified, against `ca` or else the system's default
    CAs; `check_hostname=False` only drops the name match, for peers known by address.
    `cert` and `key` go together and are presented when the peer asks for a client
    certificate.
    """
    if (cert is None) != (key is None):
        raise ConfigError("TLS: a client certificate needs both a certificate and a key file")
    context = _base_context(server_side=False)
    context.check_hostname = check_hostname
    if ca is not None:
        _load_ca(context, ca)
    else:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if cert is not None and key is not None:
        _load_cert_chain(context, cert, key, key_password)
    return context


def common_name(certificate: Mapping[str, Any]) -> str | None:
    """The subject CN of a peer's verified certificate (`SSLSocket.getpeercert()`), which
    names the peer in logs, audit events and `[[dicom.peers]]`. None for a certificate
    without one, or an unverified peer's (Python reports those as an empty dict)."""
    subject = cast("tuple[tuple[tuple[str, str], ...], ...]", certificate.get("subject", ()))
    for rdn in subject:
        for name, value in rdn:
            if name == "commonName":
                return str(value)
    return None


def _base_context(*, server_side: bool) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server_side else ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(_TLS12_CIPHERS)
    context.options |= _OPTIONS
    # Python 3.13's defaults: reject malformed certificates (RFC 5280), and let a configured
    # intermediate CA serve as the trust anchor.
    context.verify_flags |= ssl.VERIFY_X509_STRICT | ssl.VERIFY_X509_PARTIAL_CHAIN
    return context


def _require_file(path: Path, what: str) -> None:
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise ConfigError(f"TLS {what} file {path}: {exc.strerror or exc}") from exc


def _load_ca(context: ssl.SSLContext, ca: Path) -> None:
    _require_file(ca, "CA")
    try:
        context.load_verify_locations(cafile=ca)
    except ssl.SSLError as exc:
        raise ConfigError(f"TLS CA file {ca}: no PEM certificate could be read ({exc})") from exc


def _load_cert_chain(
    context: ssl.SSLContext, cert: Path, key: Path, key_password: str | None
) -> None:
    _require_file(cert, "certificate")
    _require_file(key, "key")
    # A callable, even for no password: with None, OpenSSL would prompt on the terminal for
    # an encrypted key and block start-up.
    try:
        context.load_cert_chain(cert, key, password=lambda: key_password or "")
    except ssl.SSLError as exc:
        raise ConfigError(_explain_chain_error(exc, cert, key, key_password)) from exc


def _explain_chain_error(exc: ssl.SSLError, cert: Path, key: Path, key_password: str | None) -> str:
    """Say which of the two files is at fault; OpenSSL's 'PEM lib' names neither."""
    if exc.reason == "KEY_VALUES_MISMATCH":
        return f"TLS key file {key} does not match certificate file {cert}"
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=cert)
    except ssl.SSLError:
        return f"TLS certificate file {cert}: no PEM certificate could be read ({exc})"
    problem = "the password is wrong" if key_password else "encrypted and no password was given"
    return f"TLS key file {key}: not a PEM private key, or {problem} ({exc})"
