"""One settings tree for openpacs, built once by :func:`load_settings` and passed in.

Keys and defaults follow the configuration contract in the architecture document; every key can
come from the TOML file, ``OPENPACS_<SECTION>__<KEY>`` or ``OPENPACS_<SECTION>__<KEY>_FILE``
(see :mod:`openpacs.config_sources`). Any problem raises one :class:`ConfigError` that lists
every problem as ``section.key: what is wrong``. Secrets (passwords in URLs) never reach a repr,
an error message or :func:`redacted`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self, cast, get_origin
from urllib.parse import SplitResult, unquote, urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from openpacs.config_sources import (
    SCHEME,
    Schema,
    describe_errors,
    gather,
    key_problems,
    problem,
    redact_url,
    show_value,
)
from openpacs.errors import ConfigError

__all__ = [
    "ArchiveSettings",
    "AuthSettings",
    "DatabaseSettings",
    "DicomSettings",
    "HttpSettings",
    "OidcSettings",
    "PeerPermissions",
    "RemoteAE",
    "Settings",
    "StorageSettings",
    "VisibilityRule",
    "load_settings",
    "redact_url",
    "redacted",
    "settings_reference",
]

# --- value checks: each raises a message meant for the operator ------------------------------


_INTEGER = re.compile(r"\s*[+-]?[0-9]+\s*")


def _int_between(low: int, high: int, *, off: int | None = None) -> Callable[[object], int]:
    """An integer (or its text) in ``low..high``, or exactly ``off`` (which disables a feature)."""

    def check(value: object) -> int:
        number = value if isinstance(value, int) and not isinstance(value, bool) else None
        if isinstance(value, str) and _INTEGER.fullmatch(value):
            number = int(value)
        if number is None:
            raise problem(f"must be an integer (got {show_value(value)})")
        if number == off or low <= number <= high:
            return number
        zero = f"{off} or " if off is not None else ""
        raise problem(f"must be {zero}between {low} and {high} (got {number})")

    return check


def _positive_seconds(value: object) -> float:
    number = math.nan
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        with contextlib.suppress(ValueError):  # reported below with the value
            number = float(value.strip())
    if math.isfinite(number) and number > 0:
        return number
    raise problem(f"must be a number of seconds greater than 0 (got {show_value(value)})")


_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _to_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | str) and str(value).strip().lower() in _BOOLEANS:
        return _BOOLEANS[str(value).strip().lower()]
    raise problem(f"must be true or false (also 1/0, yes/no) (got {show_value(value)})")


def _ae_title(value: str) -> str:
    """PS3.5 6.2 (AE): 1-16 characters of the default repertoire, no backslash; the leading and
    trailing spaces are not significant."""
    title = value.strip(" ")
    if not title:
        raise problem("must not be empty or only spaces")
    if len(title) > 16:
        raise problem(f"must be at most 16 characters (got {len(title)}: {show_value(title)})")
    if any(not " " <= char <= "~" or char == "\\" for char in title):
        raise problem(f"must be printable ASCII without backslash (got {show_value(value)})")
    return title


def _not_empty(value: str) -> str:
    if not value.strip():
        raise problem("must not be empty")
    return value.strip()


def _existing_file(value: str) -> str:
    """An empty value means unset; anything else must name an existing file (cwd-relative)."""
    if value and not Path(value).exists():
        raise problem(f"file not found: {value}")
    if value and not Path(value).is_file():
        raise problem(f"not a file: {value}")
    return value


_ORIGIN = re.compile(r"https?://[^/?#\s]+")


def _cors_origins(origins: tuple[str, ...]) -> tuple[str, ...]:
    for origin in origins:  # browsers send scheme://host[:port]; a path never matches
        if origin != "*" and not _ORIGIN.fullmatch(origin):
            raise problem(f'each must be "*" or http(s)://host[:port] (got {show_value(origin)})')
    return origins


def _database_url(value: str) -> str:
    try:  # never echo the value: it may hold a password
        backend = make_url(value).get_backend_name()
    except (ArgumentError, ValueError):
        raise problem(
            "not a valid SQLAlchemy URL (e.g. sqlite:///data/index.db, postgresql://user@host/db)"
        ) from None
    if backend not in {"sqlite", "postgresql"}:
        raise problem(f"unsupported database {backend!r}: use sqlite or postgresql")
    return value


_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")  # S3 general purpose bucket naming
_IPV4 = re.compile(r"\d+\.\d+\.\d+\.\d+")


def _storage_url(value: str) -> str:
    value = _not_empty(value)
    if value == "postgresql":
        return value  # blobs in the index database
    scheme = SCHEME.match(value)
    if scheme is None:
        return value  # a folder path
    parts = urlsplit(value)
    if scheme[1].lower() == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise problem(f"must be file:///absolute/path (got {show_value(value)})")
    elif scheme[1].lower() == "s3":
        if "@" in parts.netloc:
            raise problem("must not contain credentials: use the AWS credential chain")
        bucket = parts.netloc
        if not _BUCKET.fullmatch(bucket) or ".." in bucket or _IPV4.fullmatch(bucket):
            raise problem(f"invalid S3 bucket name {show_value(bucket)}")
        if parts.query or parts.fragment:
            raise problem("must be s3://bucket/prefix, without a query or fragment")
    elif scheme[1].lower() in ("postgresql", "postgres"):
        try:  # never echo the value: it may hold a password
            parsed = make_url(value)
        except (ArgumentError, ValueError):
            raise problem("not a valid postgresql://user@host/db URL") from None
        if parsed.drivername not in ("postgresql", "postgresql+psycopg") or not parsed.database:
            raise problem("must be postgresql://user@host/db, naming the database")
    else:
        raise problem(
            f"unsupported scheme {scheme[1]!r}: use a folder path, file:///absolute/path, "
            's3://bucket/prefix, "postgresql" or postgresql://user@host/db'
        )
    return value


def _proxy_networks(values: tuple[str, ...]) -> tuple[str, ...]:
    """Addresses or CIDR networks of reverse proxies, each normalised (``10.0.0.0/16``)."""
    networks = []
    for value in values:
        try:
            networks.append(str(ipaddress.ip_network(value.strip(), strict=False)))
        except ValueError:
            raise problem(
                f"{show_value(value)} is not an IP address or network (e.g. 10.0.0.0/16)"
            ) from None
    return tuple(networks)


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if value and (parts.scheme.lower() not in ("http", "https") or not parts.netloc):
        raise problem(f"must be empty or an http(s):// URL (got {show_value(value)})")
    return value


AETitle = Annotated[str, AfterValidator(_ae_title)]
Port = Annotated[int, BeforeValidator(_int_between(0, 65535))]
PeerPort = Annotated[int, BeforeValidator(_int_between(1, 65535))]
Seconds = Annotated[float, BeforeValidator(_positive_seconds)]
Flag = Annotated[bool, BeforeValidator(_to_bool)]
Text = Annotated[str, AfterValidator(_not_empty)]
FileName = Annotated[str, AfterValidator(_existing_file)]

# --- the settings tree -----------------------------------------------------------------------


class _Section(BaseModel):
    """Immutable, no unknown keys; the repr hides passwords in URLs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, redact_url(value) if isinstance(value, str) else value


class RemoteAE(_Section):
    """A known DICOM peer: a C-MOVE destination or a forwarding target."""

    aet: AETitle = Field(description="The peer's AE title.")
    host: Text = Field(description="Host name or IP address of the peer.")
    port: PeerPort = Field(description="The peer's DIMSE port (1-65535).")
    tls: Flag = Field(default=False, description="Connect to the peer over TLS.")


DimseOperation = Literal["echo", "store", "find", "get", "move"]


class PeerPermissions(_Section):
    """What one calling AE may ask of us ([[dicom.peers]]), checked on every request."""

    aet: AETitle = Field(description="The peer's (calling) AE title.")
    allow: tuple[DimseOperation, ...] = Field(
        default=("echo",), description="Of echo, store, find, get and move: what it may ask."
    )
    addresses: Annotated[tuple[str, ...], AfterValidator(_proxy_networks)] = Field(
        default=(),
        description="Addresses or networks it must call from (e.g. 10.1.2.0/24); empty: any.",
    )
    tls_subject: str = Field(
        default="",
        description="Common name of the TLS client certificate it must present (the TLS "
        "port, with dicom.tls_ca); empty: any or none.",
    )
    move_destinations: tuple[str, ...] = Field(
        default=(),
        description='AE titles it may C-MOVE to ("*": any known remote); empty: only to itself.',
    )


class DicomSettings(_Section):
    """The DIMSE front door (pynetdicom)."""

    aet: AETitle = Field(default="OPENPACS", description="Our AE title (1-16 characters).")
    port: Port = Field(default=4242, description="Plain DIMSE port; 0 disables it.")
    tls_port: Port = Field(default=0, description="DIMSE over TLS port; 0 disables it.")
    tls_cert: FileName = Field(default="", description="PEM certificate; required with tls_port.")
    tls_key: FileName = Field(default="", description="PEM private key; required with tls_port.")
    tls_ca: FileName = Field(default="", description="PEM CA to verify peers' certificates.")
    tls_require_client_cert: Flag = Field(
        default=False, description="Refuse TLS peers without a certificate signed by tls_ca."
    )
    accept_unknown_aets: Flag = Field(
        default=True,
        description="false: only AEs listed in [[dicom.remotes]] or [[dicom.peers]] may associate.",
    )
    remotes: tuple[RemoteAE, ...] = Field(
        default=(), description="Known peers: [[dicom.remotes]] tables (JSON in the environment)."
    )
    peers: tuple[PeerPermissions, ...] = Field(
        default=(),
        description="What calling AEs may do: [[dicom.peers]] tables (JSON in the "
        "environment); an AE listed nowhere may do everything while accept_unknown_aets is "
        "true, and may not associate when it is false.",
    )
    workers: Annotated[int, BeforeValidator(_int_between(0, 64))] = Field(
        default=0,
        description="Extension: DIMSE worker processes sharing the ports (SO_REUSEPORT), "
        "so associations use every core; 0: one per CPU core, at most 8.",
    )
    max_associations: Annotated[int, BeforeValidator(_int_between(1, 1000))] = Field(
        default=100,
        description="Extension: most associations served at once by each worker (1-1000).",
    )
    move_associations: Annotated[int, BeforeValidator(_int_between(1, 16))] = Field(
        default=3,
        description="Extension: associations a C-MOVE opens to its destination to send "
        "sub-operations at once (1-16); a destination that refuses more gets them over one.",
    )
    max_pdu: Annotated[int, BeforeValidator(_int_between(4096, 2**32 - 1, off=0))] = Field(
        default=1048576, description="Extension: largest PDU we accept (bytes); 0: unlimited."
    )
    network_timeout: Seconds = Field(
        default=60.0, description="Extension: seconds an association may stay idle."
    )
    dimse_timeout: Seconds = Field(
        default=60.0, description="Extension: seconds to wait for a DIMSE message."
    )
    acse_timeout: Seconds = Field(
        default=30.0, description="Extension: seconds to wait for association (ACSE) messages."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[tuple[str, str]] = []
        if self.tls_port and self.tls_port == self.port:
            problems.append(("tls_port", f"must differ from dicom.port (both {self.port})"))
        for key in ("tls_cert", "tls_key"):
            if self.tls_port and not getattr(self, key):
                problems.append((key, "required when dicom.tls_port is set"))
        if self.tls_require_client_cert and not self.tls_ca:
            problems.append(("tls_require_client_cert", "requires dicom.tls_ca"))
        first: dict[str, int] = {}
        for index, remote in enumerate(self.remotes):
            if remote.aet in first:
                where = f"remotes[{first[remote.aet]}]"
                problems.append((f"remotes[{index}].aet", f"duplicate AE title (see {where})"))
            first.setdefault(remote.aet, index)
        seen: dict[str, int] = {}
        for index, peer in enumerate(self.peers):
            if peer.aet in seen:
                problems.append(
                    (f"peers[{index}].aet", f"duplicate AE title (see peers[{seen[peer.aet]}])")
                )
            seen.setdefault(peer.aet, index)
            if peer.tls_subject and not self.tls_ca:
                problems.append((f"peers[{index}].tls_subject", "requires dicom.tls_ca"))
        key_problems(problems)
        return self


class HttpSettings(_Section):
    """The HTTP front door (DICOMweb, REST, UI)."""

    host: Text = Field(default="127.0.0.1", description="Address the HTTP server binds to.")
    port: Port = Field(default=8042, description="HTTP port; 0 disables HTTP.")
    tls_cert: FileName = Field(
        default="", description="PEM certificate for HTTPS; set with tls_key."
    )
    tls_key: FileName = Field(
        default="", description="PEM private key for HTTPS; set with tls_cert."
    )
    cors_origins: Annotated[tuple[str, ...], AfterValidator(_cors_origins)] = Field(
        default=(),
        description='Browser origins allowed to call the API (an OHIF); "*": any origin.',
    )
    trusted_proxies: Annotated[tuple[str, ...], AfterValidator(_proxy_networks)] = Field(
        default=(),
        description="Extension: addresses or CIDR networks of reverse proxies (a load "
        "balancer) whose X-Forwarded-For and X-Forwarded-Proto are believed, so the audit "
        "trail and the login throttle see the real client; empty: those headers are ignored.",
    )
    stow_max_mb: Annotated[int, BeforeValidator(_int_between(1, 1_000_000))] = Field(
        default=4096, description="Extension: largest STOW-RS body accepted, in MiB (413 above)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if bool(self.tls_cert) != bool(self.tls_key):
            unset, other = ("tls_key", "tls_cert") if self.tls_cert else ("tls_cert", "tls_key")
            key_problems([(unset, f"required when http.{other} is set")])
        return self


class DatabaseSettings(_Section):
    """The index database."""

    url: Annotated[str, AfterValidator(_database_url)] = Field(
        default="sqlite:///data/index.db",
        description="SQLAlchemy URL: sqlite:///relative.db, sqlite:////absolute.db or "
        "postgresql://user@host/db (a secret: prefer OPENPACS_DATABASE__URL_FILE).",
    )
    password: SecretStr = Field(
        default=SecretStr(""),
        description="Database password, used when the URL has none (a secret: set "
        "OPENPACS_DATABASE__PASSWORD_FILE). Either the password itself or the JSON "
        '{"username": ..., "password": ...} that AWS Secrets Manager keeps for RDS.',
    )
    password_file: FileName = Field(
        default="",
        description="Extension: file holding the password (or that JSON), read again for every "
        "new connection, so a rotated secret (RDS rotates its managed password) applies "
        "without a restart.",
    )
    rds_iam: Flag = Field(
        default=False,
        description="Extension: log in with an RDS IAM authentication token made for every new "
        "connection (the URL names the user; AWS credentials and region from the SDK's "
        "chain), so no database password exists.",
    )
    pool_size: Annotated[int, BeforeValidator(_int_between(1, 200))] = Field(
        default=10, description="Extension: connections kept open per server process."
    )
    max_overflow: Annotated[int, BeforeValidator(_int_between(0, 1000))] = Field(
        default=20, description="Extension: extra connections allowed under load."
    )
    auto_migrate: Flag = Field(
        default=False,
        description="Extension: upgrade an out-of-date schema at start-up instead of refusing "
        "to start (an empty database is always initialised).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.password_file and self.password.get_secret_value():
            key_problems([("password_file", "set either database.password or password_file")])
        if self.rds_iam:
            url = make_url(self.url)
            if self.password_file or self.password.get_secret_value() or url.password:
                key_problems([("rds_iam", "a token replaces the password: set no password")])
            if url.get_backend_name() != "postgresql" or not url.username:
                key_problems([("rds_iam", "needs a postgresql:// URL that names the user")])
        return self

    def credentials(self) -> tuple[str | None, str]:
        """(user name, password) from `password` or, read now, `password_file`; the URL's
        user name wins over the secret's; None when neither has one."""
        if self.password_file:
            try:
                secret = Path(self.password_file).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"database.password_file: cannot read it: {exc}") from None
        else:
            secret = self.password.get_secret_value()
        username, password = _credentials(secret.strip())
        return make_url(self.url).username or username, password

    def sqlalchemy_url(self) -> URL:
        """The URL to connect with, completed with the user and password from `password`
        or `password_file` (its content now: the engine reads it again for each connection)."""
        url = make_url(self.url)
        username, password = self.credentials()
        if not password or url.password:
            return url
        return url.set(username=username, password=password)


def _credentials(secret: str) -> tuple[str | None, str]:
    """A plain password, or the JSON {"username", "password"} of an RDS-managed secret."""
    if not secret.startswith("{"):
        return None, secret
    try:
        document = json.loads(secret)
    except ValueError:
        raise ConfigError("database.password: not valid JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("password"), str):
        raise ConfigError('database.password: JSON without a "password" string')
    username = document.get("username")
    return (username if isinstance(username, str) else None), document["password"]


class StorageSettings(_Section):
    """The blob store, with the helpers its factory needs."""

    url: Annotated[str, AfterValidator(_storage_url)] = Field(
        default="data/blobs",
        description="A folder (relative to the working directory), file:///absolute/path, "
        's3://bucket/prefix, "postgresql" (blobs in the index database, which must be '
        "PostgreSQL) or postgresql://user@host/db (a database for blobs; a secret when it "
        "holds a password: prefer OPENPACS_STORAGE__URL_FILE).",
    )
    postgres_chunk_kib: Annotated[int, BeforeValidator(_int_between(4, 65536))] = Field(
        default=1024,
        description="Extension: size of the chunks a PostgreSQL blob store keeps a blob in, "
        "in KiB (each write and read moves one chunk per statement).",
    )
    s3_endpoint: Annotated[str, AfterValidator(_http_url)] = Field(
        default="", description="S3 endpoint URL; empty: AWS, otherwise MinIO, Ceph, ..."
    )
    s3_region: str = Field(default="", description="S3 region; empty: the SDK's default.")
    s3_sse: Literal["", "AES256", "aws:kms"] = Field(
        default="", description='Server-side encryption: "", "AES256" or "aws:kms".'
    )
    s3_kms_key_id: str = Field(default="", description='KMS key when s3_sse = "aws:kms".')

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.s3_kms_key_id and self.s3_sse != "aws:kms":
            key_problems([("s3_kms_key_id", 'only allowed when storage.s3_sse is "aws:kms"')])
        return self

    @property
    def kind(self) -> Literal["folder", "s3", "postgresql"]:
        """Which blob store the URL asks for."""
        lowered = self.url.lower()
        if lowered.startswith("s3://"):
            return "s3"
        if lowered == "postgresql" or lowered.startswith(("postgresql", "postgres://")):
            return "postgresql"
        return "folder"

    @property
    def shown_url(self) -> str:
        """The URL as it may be printed: a postgresql:// URL's password masked."""
        if self.kind == "postgresql" and self.url != "postgresql":
            return make_url(self.url).render_as_string(hide_password=True)
        return self.url

    @property
    def folder_path(self) -> Path:
        """The folder of a path or file:// URL; a relative path stays relative to the cwd."""
        if self.kind != "folder":
            raise ConfigError(f"storage.url: {self.url} is not a folder")
        return Path(unquote(urlsplit(self.url).path)) if SCHEME.match(self.url) else Path(self.url)

    @property
    def s3_bucket(self) -> str:
        """The bucket of an s3:// URL."""
        return self._s3_url().netloc

    @property
    def s3_prefix(self) -> str:
        """The key prefix of an s3:// URL, without surrounding slashes ("" for none)."""
        return self._s3_url().path.strip("/")

    def _s3_url(self) -> SplitResult:
        if self.kind != "s3":
            raise ConfigError(f"storage.url: {self.url} is not an s3:// URL")
        return urlsplit(self.url)


def _absolute_folders(values: tuple[str, ...]) -> tuple[str, ...]:
    """Absolute folder paths, normalised (no trailing slash, no `..`)."""
    folders = []
    for value in values:
        if not value.startswith("/"):
            raise problem(f"{show_value(value)} is not an absolute path")
        folders.append(os.path.normpath(value))
    return tuple(folders)


class ArchiveSettings(_Section):
    """Archive policy."""

    duplicates: Literal["keep", "overwrite", "reject"] = Field(
        default="keep",
        description="A second copy of a SOP instance: keep the first, overwrite or reject.",
    )
    server_lease_seconds: Annotated[float, BeforeValidator(_positive_seconds)] = Field(
        default=30.0,
        description="Extension: how long a server's lease in the database lasts (renewed "
        "every third of it); the jobs of a server whose lease ran out are taken over by "
        "another. Servers sharing a database need clocks that agree well within it.",
    )
    import_folders: Annotated[tuple[str, ...], AfterValidator(_absolute_folders)] = Field(
        default=(),
        description="Extension: server folders (absolute) administrators may import from "
        "through the web, with everything below them; empty: only s3:// prefixes and ZIP "
        "uploads.",
    )


_ROLE_NAMES = ("admin", "user", "uploader")


def _role_mappings(values: tuple[str, ...]) -> tuple[str, ...]:
    """``claim value=role`` entries; the first whose value the user's claim holds wins."""
    for value in values:
        claim, equals, role = value.rpartition("=")
        if not equals or not claim.strip() or role.strip() not in _ROLE_NAMES:
            raise problem(
                f'each must be "claim value=role" with a role of {", ".join(_ROLE_NAMES)} '
                f"(got {show_value(value)})"
            )
    return tuple(value.strip() for value in values)


class OidcSettings(_Section):
    """Single sign-on with an OpenID Connect provider, beside the local users."""

    issuer: Annotated[str, AfterValidator(_http_url)] = Field(
        default="",
        description="The provider's issuer URL (its discovery document is read from "
        "`<issuer>/.well-known/openid-configuration`); empty: single sign-on is off.",
    )
    client_id: str = Field(default="", description="Our client id at the provider.")
    client_secret_file: FileName = Field(
        default="",
        description="File holding our client secret at the provider; empty: a public client "
        "(PKCE, no secret: `token_endpoint_auth_method` none).",
    )
    redirect_uri: Annotated[str, AfterValidator(_http_url)] = Field(
        default="",
        description="The callback registered at the provider, ending in /api/oidc/callback; "
        "empty: derived from the request (set it behind a reverse proxy).",
    )
    scopes: Text = Field(
        default="openid profile", description="Scopes asked for at login (with openid)."
    )
    username_claim: Text = Field(
        default="preferred_username", description="The claim that names the user."
    )
    role_claim: Text = Field(
        default="groups", description="The claim (a string or a list) the role is mapped from."
    )
    roles: Annotated[tuple[str, ...], AfterValidator(_role_mappings)] = Field(
        default=(),
        description="Role mapping, checked at each login and for each access token: "
        '"claim value=role" entries, the first the claim holds wins; none: refused.',
    )
    audience: str = Field(
        default="",
        description="The `aud` the provider's access tokens carry for openpacs; they are "
        "accepted as bearer tokens on the REST API and DICOMweb; empty: they are not.",
    )
    clock_skew_seconds: Annotated[int, BeforeValidator(_int_between(0, 300))] = Field(
        default=30, description="Seconds of clock difference allowed on exp, iat and nbf."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[tuple[str, str]] = []
        if self.issuer:
            if not self.client_id:
                problems.append(("client_id", "required when auth.oidc.issuer is set"))
            if not self.roles:
                problems.append(("roles", "required when auth.oidc.issuer is set"))
        if self.audience and not self.issuer:
            problems.append(("audience", "requires auth.oidc.issuer"))
        key_problems(problems)
        return self


_Values = tuple[str, ...]


class VisibilityRule(_Section):
    """Studies some users see: they see a study when any of this rule's values match it (and
    only such studies, over every rule that names them). Admins are never restricted."""

    users: _Values = Field(default=(), description="User names the rule applies to.")
    groups: _Values = Field(
        default=(), description="Provider groups (the [auth.oidc] role_claim) it applies to."
    )
    institutions: _Values = Field(
        default=(), description="InstitutionName of the study's first instance."
    )
    calling_aets: _Values = Field(
        default=(), description="The AE title that sent the study (C-STORE calling AE)."
    )
    called_aets: _Values = Field(
        default=(), description="Our AE title the study was sent to (C-STORE called AE)."
    )
    referring_physicians: _Values = Field(
        default=(), description="ReferringPhysicianName (case-insensitive), e.g. SMITH^JOHN."
    )
    labels: _Values = Field(default=(), description="Labels on the study.")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[tuple[str, str]] = []
        if not self.users and not self.groups:
            problems.append(("users", "a rule needs users or groups"))
        values = (
            self.institutions,
            self.calling_aets,
            self.called_aets,
            self.referring_physicians,
            self.labels,
        )
        if not any(values):
            problems.append(("labels", "a rule needs at least one value to match studies on"))
        key_problems(problems)
        return self


class AuthSettings(_Section):
    """Authentication of HTTP users."""

    admin_user: Text = Field(default="admin", description="Name of the first administrator.")
    admin_password_file: FileName = Field(
        default="",
        description="File holding the admin password; empty: generated and printed once.",
    )
    session_hours: Annotated[float, BeforeValidator(_positive_seconds)] = Field(
        default=12.0, description="Extension: hours a login session lasts."
    )
    oidc: OidcSettings = Field(
        default_factory=OidcSettings, description="Single sign-on: the [auth.oidc] table."
    )
    visibility: tuple[VisibilityRule, ...] = Field(
        default=(),
        description="Study visibility: [[auth.visibility]] tables (JSON in the environment); "
        "a user named by none sees every study.",
    )


_IN_INDEX_DATABASE = (
    '"postgresql" keeps blobs in the index database: set a postgresql:// database.url, '
    "or give the blobs a postgresql:// URL"
)


class Settings(_Section):
    """The whole configuration, one immutable tree."""

    dicom: DicomSettings = Field(default_factory=DicomSettings, description="DIMSE service.")
    http: HttpSettings = Field(default_factory=HttpSettings, description="HTTP service.")
    database: DatabaseSettings = Field(
        default_factory=DatabaseSettings, description="Index database."
    )
    storage: StorageSettings = Field(default_factory=StorageSettings, description="Blob store.")
    archive: ArchiveSettings = Field(default_factory=ArchiveSettings, description="Archive policy.")
    auth: AuthSettings = Field(default_factory=AuthSettings, description="Authentication.")

    def with_storage_url(self, url: str) -> Settings:
        """These settings with another `[storage] url`, checked as the file's would be."""
        try:
            storage = StorageSettings.model_validate({**self.storage.model_dump(), "url": url})
        except ValidationError as exc:
            errors = [{**error, "loc": ("storage", *error["loc"])} for error in exc.errors()]
            raise ConfigError("\n".join(describe_errors(errors, {}))) from None  # type: ignore[arg-type]
        if storage.url == "postgresql" and not self.database.url.startswith("postgres"):
            raise ConfigError(f"storage.url: {_IN_INDEX_DATABASE}")
        return self.model_copy(update={"storage": storage})

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.storage.url == "postgresql" and not self.database.url.startswith("postgres"):
            key_problems(
                [
                    (
                        "storage.url",
                        _IN_INDEX_DATABASE,
                    )
                ]
            )
        return self


# --- loading ---------------------------------------------------------------------------------


def load_settings(
    config_file: Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Build the settings from defaults, the TOML file, then the environment (``os.environ``)."""
    sources = gather(config_file, os.environ if environ is None else environ, _schema())
    problems = list(sources.problems)
    settings: Settings | None = None
    if not sources.fatal:
        try:
            settings = Settings.model_validate(sources.data)
        except ValidationError as exc:
            problems += describe_errors(exc.errors(), sources.origins)
    # Raised outside the except block: the ValidationError (which shows raw input values,
    # passwords included) must not ride along as __context__.
    if problems or settings is None:
        raise ConfigError("\n".join(problems))
    return settings


def _schema() -> Schema:
    """Section -> key -> whether the environment gives it as JSON (list values)."""
    return {section: _keys(_model(field)) for section, field in Settings.model_fields.items()}


def _keys(model: type[BaseModel], prefix: str = "") -> dict[str, bool]:
    """A section's keys; a nested table's keys as ``table__key`` (``[auth.oidc] issuer``:
    ``OPENPACS_AUTH__OIDC__ISSUER``)."""
    keys: dict[str, bool] = {}
    for key, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys.update(_keys(annotation, f"{prefix}{key}__"))
        else:
            keys[prefix + key] = get_origin(annotation) in (tuple, list)
    return keys


def _model(field: FieldInfo) -> type[BaseModel]:
    """The model class of a section field (our own declarations, so always a model)."""
    return cast(type[BaseModel], field.annotation)


def redacted(settings: Settings) -> dict[str, Any]:
    """The settings as a plain JSON-able dict that is safe to log."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: clean(item) for key, item in value.items()}
        if isinstance(value, list):
            return [clean(item) for item in value]
        return redact_url(value) if isinstance(value, str) else value

    safe: dict[str, Any] = clean(settings.model_dump(mode="json"))
    return safe


def settings_reference() -> str:
    """A markdown table of every key, its default and description, generated from the models."""
    rows = [
        "Every key can also be set as `OPENPACS_<SECTION>__<KEY>` (lists as JSON; a key of a "
        "nested table as `OPENPACS_AUTH__OIDC__ISSUER`) or read from a file named by "
        "`OPENPACS_<SECTION>__<KEY>_FILE`.",
        "",
        "| Section | Key | Default | Description |",
        "|---|---|---|---|",
    ]
    tables: list[tuple[str, type[BaseModel]]] = []
    for section, field in Settings.model_fields.items():
        tables.append((f"[{section}]", _model(field)))
        if section == "dicom":
            tables.append(("[[dicom.remotes]]", RemoteAE))
            tables.append(("[[dicom.peers]]", PeerPermissions))
        if section == "auth":
            tables.append(("[auth.oidc]", OidcSettings))
            tables.append(("[[auth.visibility]]", VisibilityRule))
    for table, model in tables:
        for key, field in model.model_fields.items():
            if field.annotation is OidcSettings:
                default = "the table below"
            elif field.default is PydanticUndefined:
                default = "required"
            elif isinstance(field.default, SecretStr):
                default = '`""`' if not field.default.get_secret_value() else "(secret)"
            else:
                default = f"`{json.dumps(field.default)}`"
            text = (field.description or "").replace("|", "\\|")
            rows.append(f"| {table} | `{key}` | {default} | {text} |")
    return "\n".join(rows) + "\n"
