"""The `openpacs` command."""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from openpacs import __version__
from openpacs.errors import OpenPacsError

log = logging.getLogger("openpacs")

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from openpacs.config import Settings


class _LazyGroup(click.Group):
    """Command groups kept in modules of their own (`name -> "module:attribute"`), imported
    only when that command runs or help lists it: `openpacs serve` never loads cryptography
    for `openpacs certs`."""

    def __init__(self, *args: Any, lazy: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self._lazy])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self._lazy:
            return super().get_command(ctx, cmd_name)
        module, attribute = self._lazy[cmd_name].split(":")
        # By name for start-up time only: these modules always ship, and a wrong name fails
        # tests/unit/test_imports.py. Besides the optional extras' check in errors.py, the one
        # dynamic import tests/unit/test_architecture.py allows.
        command: click.Command = getattr(import_module(module), attribute)
        return command


@click.group(
    cls=_LazyGroup,
    lazy={
        "users": "openpacs.cli.users:users",
        "certs": "openpacs.cli.certs:certs",
        "store": "openpacs.cli.store:store",
    },
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="openpacs")
def cli() -> None:
    """openpacs: an open-source medical imaging archive (PACS)."""


@cli.command()
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML configuration file (defaults apply without one).",
)
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="INFO",
    show_default=True,
)
@click.option(
    "--grace",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds running associations may take to finish on SIGTERM.",
)
# How serve becomes the supervisor and starts workers (cli/supervisor.py); not for operators.
@click.option("--supervise", type=int, hidden=True)
@click.option("--worker", type=int, hidden=True)
@click.option("--ready-fd", type=int, hidden=True)
def serve(
    config_file: Path | None,
    log_level: str,
    grace: float,
    supervise: int | None,
    worker: int | None,
    ready_fd: int | None,
) -> None:
    """Run the archive: the DICOM listener(s) on the configured ports."""
    from openpacs.cli.runtime import configure_logging

    if supervise is not None:  # the supervisor imports nothing but the standard library
        from openpacs.cli.supervisor import supervise as run_supervisor

        configure_logging(log_level)
        raise SystemExit(run_supervisor(config_file, log_level, grace, supervise))
    from openpacs.cli import serve as serving

    if worker is not None and ready_fd is not None:
        raise SystemExit(serving.serve_worker(config_file, log_level, grace, worker, ready_fd))
    configure_logging(log_level)
    raise SystemExit(serving.serve(config_file, log_level, grace))


@cli.group()
def db() -> None:
    """Index database schema: current revision and upgrades."""


_CONFIG_OPTION = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML configuration file (defaults apply without one).",
)


@db.command()
@_CONFIG_OPTION
def upgrade(config_file: Path | None) -> None:
    """Upgrade the schema to this version's revision (safe to run again); with
    `[storage] url = "postgresql"` also make the blob tables, so that a role made by `db
    grant` (which may not create tables) can use them."""
    from openpacs.compose import build_index_engine, build_store
    from openpacs.config import load_settings
    from openpacs.index import migrate

    _configure_logging("INFO")
    engine = _engine_or_exit(config_file, build_index_engine)
    try:
        migrate.upgrade(engine)
        click.echo(f"schema at revision {migrate.current(engine)}")
    finally:
        engine.dispose()
    settings = load_settings(config_file)
    if settings.storage.url == "postgresql":
        store = build_store(settings)
        try:
            store.check()  # makes the tables when missing
        except OpenPacsError as exc:
            click.echo(f"error: {exc.reason}", err=True)
            raise SystemExit(2) from None
        finally:
            store.close()
        click.echo("blob tables ready")


@db.command()
@_CONFIG_OPTION
@click.argument("role")
@click.option("--rds-iam", is_flag=True, help="Log in with RDS IAM tokens (grant rds_iam).")
def grant(config_file: Path | None, role: str, rds_iam: bool) -> None:
    """Create ROLE for the servers (if missing) with row access to the schema; run by the
    schema's owner after `db upgrade`, so the servers never connect as the owner."""
    from openpacs.compose import build_index_engine
    from openpacs.index.grants import grant_server_role

    _configure_logging("INFO")
    engine = _engine_or_exit(config_file, build_index_engine)
    try:
        grant_server_role(engine, role, rds_iam=rds_iam)
        click.echo(f"role {role} may read and write the index")
    except OpenPacsError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()


@db.command()
@_CONFIG_OPTION
def current(config_file: Path | None) -> None:
    """Print the schema revision of the database and the one this version needs."""
    from openpacs.compose import build_index_engine
    from openpacs.index import migrate

    engine = _engine_or_exit(config_file, build_index_engine)
    try:
        click.echo(f"database: {migrate.current(engine) or 'empty'}")
        click.echo(f"this version: {migrate.HEAD_REVISION}")
    finally:
        engine.dispose()


@cli.command()
@_CONFIG_OPTION
@click.option("--checksums", is_flag=True, help="Also read every blob and check its SHA-256.")
@click.option(
    "--repair",
    is_flag=True,
    help="Delete old orphan blobs and staging leftovers; drop rows of lost blobs.",
)
@click.option(
    "--min-orphan-age",
    type=float,
    default=3600.0,
    show_default=True,
    help="Seconds an unindexed blob, or a staging file no live server owns, must have existed"
    " to count as left over.",
)
def verify(config_file: Path | None, checksums: bool, repair: bool, min_orphan_age: float) -> None:
    """Compare the index with the blob store; exit 1 when something is wrong."""
    from openpacs.archive.verify import verify as run_verify
    from openpacs.compose import build_archive
    from openpacs.config import load_settings

    _configure_logging("WARNING")
    try:
        archive = build_archive(load_settings(config_file))
    except OpenPacsError as exc:
        click.echo(f"error: {exc.reason}", err=True)
        raise SystemExit(2) from None
    try:
        report = run_verify(
            archive, checksums=checksums, repair=repair, min_orphan_age=min_orphan_age
        )
    finally:
        archive.close()
    click.echo(f"instances indexed: {report.instances}")
    click.echo(f"blobs stored:      {report.blobs}")
    for title, items in (
        ("orphan blobs (stored, not indexed)", report.orphan_blobs),
        ("missing blobs (indexed, not stored)", report.missing_blobs),
        ("size mismatches", report.size_mismatches),
        ("checksum mismatches", report.checksum_mismatches),
    ):
        click.echo(f"{title}: {len(items)}")
        for item in items[:50]:
            click.echo(f"  {item}")
    if report.young_orphans:
        click.echo(
            f"unindexed blobs younger than {min_orphan_age:.0f} s (left alone): "
            f"{report.young_orphans}"
        )
    click.echo(
        f"staging files:     {report.staging_files} ({report.staging_bytes} bytes); left"
        f" over (no live server, older than {min_orphan_age:.0f} s):"
        f" {len(report.staging_leftovers)} ({report.staging_leftover_bytes} bytes)"
    )
    for item in report.staging_leftovers[:50]:
        click.echo(f"  {item}")
    for line in report.repaired:
        click.echo(f"repaired: {line}")
    if not report.clean and not repair:
        raise SystemExit(1)
    if report.checksum_mismatches:
        raise SystemExit(1)


_S3_ENDPOINT_OPTION = click.option(
    "--s3-endpoint",
    help="Endpoint of an S3-compatible service for s3:// sources (default: the store's"
    " s3_endpoint, else AWS).",
)


@cli.command("import")
@_CONFIG_OPTION
@click.argument("sources", nargs=-1)
@click.option(
    "--files-from",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A file listing paths to import, one a line.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Processes storing at once (default: one per core, fewer for few files).",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default="import-report.jsonl",
    show_default=True,
    help="JSON lines: every refused, failed or skipped file with its reason.",
)
@_S3_ENDPOINT_OPTION
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
@click.option(
    "--watch",
    "queue",
    metavar="sqs://QUEUE",
    help="Import the objects an intake bucket's S3 notifications on this SQS queue name.",
)
@click.option(
    "--after",
    type=click.Choice(["delete", "tag"]),
    default="delete",
    show_default=True,
    help="With --watch: delete each stored object from the intake bucket, or tag it"
    " openpacs-import=stored.",
)
@click.option("--sqs-endpoint", help="Endpoint of an SQS-compatible service for --watch.")
@click.option(
    "--idle-exit",
    type=click.FloatRange(min=0),
    help="With --watch: stop after this many seconds without a notification.",
)
def import_command(
    config_file: Path | None,
    sources: tuple[str, ...],
    files_from: Path | None,
    workers: int | None,
    report_path: Path,
    s3_endpoint: str | None,
    progress: bool,
    queue: str | None,
    after: str,
    sqs_endpoint: str | None,
    idle_exit: float | None,
) -> None:
    """Import the DICOM files of SOURCES (folders, files, ZIP archives, DICOMDIRs,
    s3://bucket/prefix) the way C-STORE stores them, or with --watch the objects landing in
    an intake bucket; exit 1 if any was refused."""

    from openpacs.cli.importer import S3Access, run_import

    if not sources and files_from is None and queue is None:
        raise click.UsageError("name at least one SOURCE, --files-from or --watch")
    if queue is not None and (sources or files_from is not None):
        raise click.UsageError("--watch imports from its queue only: no SOURCE with it")
    settings = _settings_or_exit(config_file)
    _configure_logging("INFO" if queue else "WARNING")
    s3 = S3Access(
        s3_endpoint or settings.storage.s3_endpoint or None, settings.storage.s3_region or None
    )
    try:
        if queue is not None:
            from openpacs.cli.watch import watch

            tally = watch(
                config_file,
                queue,
                s3=s3,
                sqs_endpoint=sqs_endpoint,
                after="tag" if after == "tag" else "delete",
                report_path=report_path,
                idle_exit=idle_exit,
            )
        else:
            tally = run_import(
                config_file,
                list(sources),
                files_from=files_from,
                workers=workers,
                report_path=report_path,
                s3=s3,
                show_progress=progress,
            )
    except OpenPacsError as exc:
        click.echo(f"error: {exc.reason}", err=True)
        raise SystemExit(2) from None
    click.echo(tally.summary())
    if tally.counts["refused"] or tally.counts["failed"] or tally.counts["skipped"]:
        click.echo(f"report: {report_path}")
    if tally.problems:
        raise SystemExit(1)


@cli.command()
@_CONFIG_OPTION
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Processes indexing at once (default: one per core, fewer for few blobs).",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default="reindex-report.jsonl",
    show_default=True,
    help="JSON lines: every blob not indexed, with the reason.",
)
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
def reindex(
    config_file: Path | None, workers: int | None, report_path: Path, progress: bool
) -> None:
    """Rebuild the index from the blob store (after losing the database); run again, it
    indexes only the blobs still missing. Exit 1 if a blob could not be indexed."""

    from openpacs.cli.reindexing import run_reindex

    _settings_or_exit(config_file)
    _configure_logging("WARNING")
    try:
        counts, known, rates = run_reindex(
            config_file,
            workers=workers,
            report_path=report_path,
            show_progress=progress,
        )
    except OpenPacsError as exc:
        click.echo(f"error: {exc.reason}", err=True)
        raise SystemExit(2) from None
    outcomes = ", ".join(
        f"{name} {counts[name]}" for name in ("indexed", "duplicate", "unreadable", "failed")
    )
    click.echo(f"{rates}: {outcomes}; already indexed {known}")
    if counts["duplicate"] or counts["unreadable"] or counts["failed"]:
        click.echo(f"report: {report_path}")
    if counts["unreadable"] or counts["failed"]:
        raise SystemExit(1)


@cli.command()
@_CONFIG_OPTION
@click.option(
    "-k",
    "--key",
    "keys",
    multiple=True,
    metavar="KEYWORD=VALUE",
    help="Match an indexed key with the C-FIND rules (PatientID=P1, StudyDate=20240101-20241231,"
    " PatientName=DOE*, Modality=CT); repeat for several. None: everything.",
)
@click.option(
    "--to",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write a media set (DICOMDIR and files) to this new or empty folder.",
)
@click.option(
    "--zip",
    "zip_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the media set to this ZIP archive.",
)
def export(
    config_file: Path | None, keys: tuple[str, ...], folder: Path | None, zip_path: Path | None
) -> None:
    """Export the instances a query selects as a DICOMDIR media set, in a folder or a ZIP."""
    from openpacs.archive.export import export_media_set, export_zip
    from openpacs.compose import build_archive
    from openpacs.dicom.query import export_conditions

    if (folder is None) == (zip_path is None):
        raise click.UsageError("give exactly one of --to FOLDER and --zip FILE")
    try:
        conditions = export_conditions(keys)
    except OpenPacsError as exc:
        raise click.UsageError(exc.reason) from None
    settings = _settings_or_exit(config_file)
    _configure_logging("WARNING")
    try:
        archive = build_archive(settings)
    except OpenPacsError as exc:
        click.echo(f"error: {exc.reason}", err=True)
        raise SystemExit(2) from None
    try:
        if folder is not None:
            result = export_media_set(archive, conditions, folder)
        else:
            assert zip_path is not None
            result = export_zip(archive, conditions, zip_path)
    except OpenPacsError as exc:
        click.echo(f"error: {exc.reason}", err=True)
        raise SystemExit(2) from None
    finally:
        archive.close()
    click.echo(f"exported {result.written} instances to {folder or zip_path}")
    for sop_uid, reason in result.left_out:
        click.echo(f"left out {sop_uid}: {reason}", err=True)
    if result.left_out:
        raise SystemExit(1)


@cli.command()
@_CONFIG_OPTION
@click.option(
    "--list",
    "listing",
    type=click.Choice(["sop-classes", "transfer-syntaxes"]),
    help="Print every supported SOP class or transfer syntax, one a line.",
)
def check(config_file: Path | None, listing: str | None) -> None:
    """Check the configuration, index and store; show what DICOM is supported."""
    from openpacs.cli import check as checks
    from openpacs.config import load_settings

    if listing == "sop-classes":
        for uid, name in checks.storage_sop_classes():
            click.echo(f"{uid}  {name}")
        return
    if listing == "transfer-syntaxes":
        for syntax in checks.accepted_syntaxes():
            decoding = ", ".join(syntax.plugins) if syntax.compressed else "native"
            state = decoding if syntax.decodable else "stored and sent as received only"
            click.echo(f"{syntax.uid}  {syntax.name}  [{state}]")
        return
    _configure_logging("WARNING")
    try:
        settings = load_settings(config_file)
    except OpenPacsError as exc:
        click.echo(f"configuration: FAILED\n{exc.reason}", err=True)
        raise SystemExit(2) from None
    click.echo("configuration: ok")
    findings = checks.backend_findings(settings)
    for finding in findings:
        click.echo(f"{finding.name}: {'ok' if finding.ok else 'FAILED'} ({finding.detail})")
    syntaxes = checks.accepted_syntaxes()
    undecodable = [s.name for s in syntaxes if s.compressed and not s.decodable]
    click.echo("services: C-ECHO, C-STORE, C-FIND, C-GET, C-MOVE")
    click.echo(f"query/retrieve models: {len(checks.query_retrieve_models())}")
    click.echo(f"storage SOP classes: {len(checks.storage_sop_classes())}")
    click.echo(
        f"transfer syntaxes accepted: {len(syntaxes)}, convertible to uncompressed:"
        f" {sum(s.decodable for s in syntaxes)}"
    )
    if undecodable:
        click.echo(
            f"kept and sent only as received (no decoder): {len(undecodable)}"
            " (openpacs check --list transfer-syntaxes)"
        )
    click.echo(f"matching: {'; '.join(checks.MATCHING)}")
    if not all(finding.ok for finding in findings):
        raise SystemExit(1)


def _engine_or_exit(config_file: Path | None, build: Callable[[Settings], Engine]) -> Engine:
    from openpacs.config import load_settings

    try:
        return build(load_settings(config_file))
    except OpenPacsError as exc:
        click.echo(f"error: {exc.reason}", err=True)
        raise SystemExit(2) from None


def _settings_or_exit(config_file: Path | None) -> Settings:
    from openpacs.config import load_settings

    try:
        return load_settings(config_file)
    except OpenPacsError as exc:
        click.echo(f"error: {exc.reason}", err=True)
        raise SystemExit(2) from None


def _configure_logging(level: str) -> None:
    from openpacs.cli.runtime import configure_logging

    configure_logging(level)
