"""The one place that picks implementations from the settings and wires them together.

Each builder imports what it builds: the supervisor of `openpacs serve` calls
`prepare_shared_state` only and so never loads pynetdicom, pydicom or FastAPI.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from openpacs.config import Settings
from openpacs.errors import ConfigError, require_extra

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.engine import URL

    from openpacs.archive.service import Archive
    from openpacs.dimse.server import DicomServer
    from openpacs.index.accounts import SqlAccounts
    from openpacs.storage.base import BlobStore
    from openpacs.storage.sources import Sources
    from openpacs.web.server import HttpServer

log = logging.getLogger(__name__)


def configure_libraries(staging_dir: Path | None) -> None:
    """Set the library-wide switches openpacs relies on, once, at start-up.

    - temporary files (C-STORE sub-operations pynetdicom receives for jobs, imports) go to
      the store's staging folder, so that storing them is a rename, not a copy;
    - pynetdicom does not log query identifiers (they hold patient data);
    - pydicom reads values as they are, without validating them: an archive keeps what it
      receives, and validation of the identifying attributes is the archive's own;
    - pynetdicom's transport reads each PDU in one buffer (`openpacs.dimse.tuning`).
    """
    from pydicom import config as pydicom_config
    from pynetdicom import _config as pynetdicom_config

    from openpacs.dimse import tuning

    tuning.install()
    pynetdicom_config.LOG_REQUEST_IDENTIFIERS = False
    pynetdicom_config.LOG_RESPONSE_IDENTIFIERS = False
    pydicom_config.settings.reading_validation_mode = pydicom_config.IGNORE
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
    if staging_dir is not None:
        tempfile.tempdir = str(staging_dir)


def build_store(settings: Settings) -> BlobStore:
    storage = settings.storage
    if storage.kind == "folder":
        from openpacs.storage.folder import FolderStore

        return FolderStore(storage.folder_path)
    if storage.kind == "postgresql":
        return build_postgres_store(settings)
    require_extra("s3", "boto3", "an S3 blob store")
    try:
        from openpacs.storage.s3 import S3Store  # boto3 costs ~20 MB: only when used

        return S3Store(
            storage.s3_bucket,
            storage.s3_prefix,
            endpoint_url=storage.s3_endpoint or None,
            region=storage.s3_region or None,
            sse=storage.s3_sse,
            kms_key_id=storage.s3_kms_key_id,
        )
    except ValueError as exc:
        raise ConfigError(f"storage.url: {exc}") from None


def build_postgres_store(settings: Settings) -> BlobStore:
    """Blobs in the index database (`"postgresql"`, with the index's credentials) or in
    a database of their own (a postgresql:// URL)."""
    require_extra("postgresql", "psycopg", "a PostgreSQL blob store")
    from openpacs.index.engine import create_index_engine
    from openpacs.storage.postgres import PostgresStore

    storage, database = settings.storage, settings.database
    if storage.url == "postgresql":
        engine = build_index_engine(settings)
    else:
        engine = create_index_engine(
            storage.url, pool_size=database.pool_size, max_overflow=database.max_overflow
        )
    return PostgresStore(engine, chunk_size=storage.postgres_chunk_kib * 1024)


def build_index_engine(settings: Settings) -> Engine:
    from openpacs.index.engine import create_index_engine

    database = settings.database
    credentials = None
    if database.rds_iam:
        credentials = rds_iam_credentials(database.sqlalchemy_url())
    elif database.password_file:
        credentials = database.credentials
    return create_index_engine(
        database.sqlalchemy_url(),
        pool_size=database.pool_size,
        max_overflow=database.max_overflow,
        credentials=credentials,
    )


def rds_iam_credentials(url: URL) -> Callable[[], tuple[str | None, str]]:
    """(user, a fresh RDS IAM token) for each new connection: a token is a SigV4 signature
    made locally from the AWS credentials, valid 15 minutes for logging in."""
    import boto3  # only with rds_iam

    try:
        client = boto3.client("rds")
    except Exception as exc:  # botocore's NoRegionError and configuration errors
        raise ConfigError(f"database.rds_iam: AWS is not configured: {exc}") from None
    host, port, user = url.host or "", url.port or 5432, url.username or ""

    def credentials() -> tuple[str | None, str]:
        token = client.generate_db_auth_token(DBHostname=host, Port=port, DBUsername=user)
        return user, token

    return credentials


def build_archive(settings: Settings) -> Archive:
    from openpacs.archive.audit import AuditTrail
    from openpacs.archive.presence import Presence
    from openpacs.archive.records import RemoteNode
    from openpacs.archive.remotes import Remotes
    from openpacs.archive.service import Archive
    from openpacs.dimse.client import DicomClient
    from openpacs.index import migrate
    from openpacs.index.accounts import SqlAccounts
    from openpacs.index.audit_log import SqlAuditLog
    from openpacs.index.browse import SqlBrowser
    from openpacs.index.catalog import Catalog
    from openpacs.index.jobs import SqlJobs
    from openpacs.index.remotes import SqlRemotes
    from openpacs.index.servers import SqlServers

    engine = build_index_engine(settings)
    migrate.prepare(engine, auto_migrate=settings.database.auto_migrate)
    catalog = Catalog(engine)
    store = build_store(settings)
    store.check()
    configured = [
        RemoteNode(r.aet, r.host, r.port, r.tls, "config") for r in settings.dicom.remotes
    ]
    archive = Archive(
        catalog,
        store,
        duplicates=settings.archive.duplicates,
        accounts=SqlAccounts(engine),
        audit=AuditTrail(SqlAuditLog(engine)),
        browser=SqlBrowser(engine),
        remotes=Remotes(configured, SqlRemotes(engine)),
        presence=Presence(SqlServers(engine), settings.archive.server_lease_seconds),
        jobs=SqlJobs(engine),
        dicom=lambda archive: DicomClient(archive, settings.dicom),
        sources=lambda archive: _import_sources(archive, settings),
    )
    return archive


def _import_sources(archive: Archive, settings: Settings) -> Sources:
    """What import jobs read: files, ZIP archives, and s3:// prefixes with the AWS chain's
    credentials (on the store's S3 endpoint, if it names one)."""
    from openpacs.storage.sources import Sources

    storage = settings.storage

    def s3_client() -> object:
        require_extra("s3", "boto3", "an s3:// import")
        from openpacs.storage.s3 import make_client  # boto3: only when an import needs it

        return make_client(
            endpoint_url=storage.s3_endpoint or None, region=storage.s3_region or None
        )

    return Sources(archive.staging_dir, s3_client)


def build_accounts(settings: Settings) -> SqlAccounts:
    """The accounts alone (for `openpacs users`), on a current schema."""
    from openpacs.index import migrate
    from openpacs.index.accounts import SqlAccounts

    engine = build_index_engine(settings)
    migrate.prepare(engine, auto_migrate=settings.database.auto_migrate)
    return SqlAccounts(engine)


def build_dicom_server(
    archive: Archive, settings: Settings, *, host: str = "", share_ports: bool = False
) -> DicomServer:
    from openpacs.dimse.server import DicomServer

    return DicomServer(archive, settings.dicom, host=host, share_ports=share_ports)


def build_http_server(
    archive: Archive,
    settings: Settings,
    *,
    port: int | None = None,
    share_port: bool = False,
    grace_seconds: float = 30.0,
    create_admin: bool = True,
) -> HttpServer:
    """The HTTP application on `[http] host/port` (`port` overrides it, e.g. 0 in tests),
    with TLS 1.2+ when `tls_cert`/`tls_key` are set (the BCP 195 context DIMSE uses too)."""
    from openpacs.tls import server_context
    from openpacs.web.app import create_app  # FastAPI costs a second: only when serving HTTP
    from openpacs.web.server import HttpServer

    http = settings.http
    context = None
    if http.tls_cert:
        context = server_context(Path(http.tls_cert), Path(http.tls_key))
    app = create_app(archive, settings, create_admin=create_admin)
    return HttpServer(
        app,
        http.host,
        http.port if port is None else port,
        ssl_context=context,
        share_port=share_port,
        grace_seconds=grace_seconds,
        trusted_proxies=http.trusted_proxies,
    )


def prepare_shared_state(settings: Settings) -> None:
    """What must happen once before several worker processes start: the schema is made
    current (workers would otherwise race to migrate) and the store is checked."""
    from openpacs.index import migrate
    from openpacs.index.accounts import SqlAccounts

    engine = build_index_engine(settings)
    try:
        migrate.prepare(engine, auto_migrate=settings.database.auto_migrate)
        if settings.http.port:  # the admin is created (and a password shown) once, here
            from openpacs.web.auth.bootstrap import ensure_admin

            ensure_admin(SqlAccounts(engine), settings.auth)
    finally:
        engine.dispose()
    build_store(settings).check()
