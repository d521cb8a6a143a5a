"""`openpacs store migrate`: move the archive's blobs to another store (folder, S3,
PostgreSQL) while the servers run, then point the configuration at it."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import click

from openpacs.errors import ConfigError, OpenPacsError

if TYPE_CHECKING:
    from openpacs.archive.store_migration import KnownBlob


@click.group()
def store() -> None:
    """The blob store: move an archive to another store."""


@store.command()
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML configuration file (defaults apply without one).",
)
@click.option(
    "--to",
    "target_url",
    required=True,
    help='The store to copy to: a folder, file:///path, s3://bucket/prefix, "postgresql" or '
    "postgresql://user@host/db (the other [storage] keys, such as s3_endpoint, apply).",
)
@click.option(
    "--from",
    "source_url",
    help="Copy from this store instead of the configured one: after the servers switched, "
    "the old store, for the blobs stored while they were switching.",
)
@click.option(
    "--switch",
    is_flag=True,
    help="When every blob is copied and verified, set [storage] url in the --config file "
    "to the new store (restart the servers to use it).",
)
def migrate(
    config_file: Path | None, target_url: str, source_url: str | None, switch: bool
) -> None:
    """Copy every blob to another store, verifying each (size and SHA-256); resumable."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from openpacs.archive.store_migration import known_blobs, migrate_blobs
    from openpacs.cli.runtime import configure_logging
    from openpacs.compose import build_archive, build_store
    from openpacs.config import load_settings

    configure_logging("WARNING")
    if switch and config_file is None:
        raise click.UsageError("--switch needs the --config file to change")
    if switch and "OPENPACS_STORAGE__URL" in os.environ:
        raise click.UsageError(
            "--switch: OPENPACS_STORAGE__URL is set and wins over the file: change it instead"
        )
    try:
        settings = load_settings(config_file)
        target_settings = settings.with_storage_url(target_url)
        source_settings = settings.with_storage_url(source_url) if source_url else settings
        if target_settings.storage.url == source_settings.storage.url:
            raise ConfigError("--to: the store to copy to is the store to copy from")
        archive = build_archive(settings)
    except OpenPacsError as exc:
        click.echo(f"error: {exc.reason}", err=True)
        raise SystemExit(2) from None
    try:
        try:
            source = build_store(source_settings) if source_url else archive.store
            target = build_store(target_settings)
            source.check()
            target.check()
        except OpenPacsError as exc:
            click.echo(f"error: {exc.reason}", err=True)
            raise SystemExit(2) from None

        def known() -> dict[str, KnownBlob]:
            rows = archive.index.iter_blobs()
            return known_blobs((b.blob_key, b.blob_size, b.blob_sha256) for b in rows)

        console = Console(stderr=True)
        with Progress(
            "{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        ) as bar:
            task = bar.add_task("copying blobs", total=None)
            report = migrate_blobs(
                source,
                target,
                known,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        if source is not archive.store:
            source.close()
        target.close()
    finally:
        archive.close()
    click.echo(f"copied:   {report.copied} ({report.bytes_copied} bytes)")
    click.echo(f"already:  {report.already} (in the target, verified)")
    click.echo(f"vanished: {report.vanished} (deleted from the source meanwhile)")
    click.echo(f"failed:   {len(report.failed)}")
    for line in report.failed[:50]:
        click.echo(f"  {line}")
    if not report.clean:
        click.echo("not every blob was copied: fix the causes and run again", err=True)
        raise SystemExit(1)
    if switch:
        assert config_file is not None
        _switch(config_file, target_settings.storage.url)
        if load_settings(config_file).storage.url != target_settings.storage.url:
            raise click.ClickException(f"{config_file}: [storage] url did not change")
        shown = target_settings.storage.shown_url
        click.echo(f"{config_file}: [storage] url = {shown!r}; restart the servers, then")
    else:
        click.echo("set [storage] url to the new store and restart the servers, then")
    click.echo(
        "run this again with --from <the old store> --to <the new store> for the blobs stored"
        " while the servers were switching"
    )


_SECTION = re.compile(r"^\s*\[([^\]]+)\]\s*(#.*)?$")
_URL_LINE = re.compile(r"^(\s*url\s*=\s*)(\"[^\"]*\"|'[^']*')(.*)$")


def _switch(config_file: Path, url: str) -> None:
    """Set `url` in the file's [storage] table, keeping every other line as it is."""
    lines = (
        config_file.read_text(encoding="utf-8").splitlines(keepends=True)
        if config_file.exists()
        else []
    )
    value = '"' + url.replace("\\", "\\\\").replace('"', '\\"') + '"'
    section = None
    for number, line in enumerate(lines):
        header = _SECTION.match(line)
        if header:
            section = header[1].strip()
            continue
        match = _URL_LINE.match(line)
        if section == "storage" and match:
            ending = "\n" if line.endswith("\n") else ""
            lines[number] = f"{match[1]}{value}{match[3].rstrip()}{ending}"
            break
    else:
        where = next(
            (
                n + 1
                for n, line in enumerate(lines)
                if (h := _SECTION.match(line)) and h[1].strip() == "storage"
            ),
            None,
        )
        if where is None:
            if lines and not lines[-1].endswith("\n"):
                lines[-1] += "\n"
            lines += ["\n", "[storage]\n", f"url = {value}\n"]
        else:
            lines.insert(where, f"url = {value}\n")
    temporary = config_file.with_name(config_file.name + ".new")
    temporary.write_text("".join(lines), encoding="utf-8")
    os.replace(temporary, config_file)
