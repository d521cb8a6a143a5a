"""`openpacs users add|passwd|remove|list`: manage HTTP users in the database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

import click

from openpacs.archive.ports import Accounts
from openpacs.archive.records import ROLES, Role
from openpacs.config import load_settings
from openpacs.errors import OpenPacsError

_CONFIG = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML configuration file (defaults apply without one).",
)
_PASSWORD_FILE = click.option(
    "--password-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Read the password from this file (otherwise it is asked for twice).",
)


@contextmanager
def _accounts(config_file: Path | None) -> Iterator[Accounts]:
    from openpacs.compose import build_accounts

    try:
        accounts = build_accounts(load_settings(config_file))
    except OpenPacsError as exc:
        raise click.ClickException(exc.reason) from None
    try:
        yield accounts
    except OpenPacsError as exc:
        raise click.ClickException(exc.reason) from None
    finally:
        accounts.close()


def _password(password_file: Path | None) -> str:
    from openpacs.web.auth.passwords import MIN_PASSWORD_LENGTH

    if password_file is not None:
        password = password_file.read_text(encoding="utf-8").strip()
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise click.ClickException(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    return password


def _hash(password: str) -> str:
    from openpacs.web.auth.passwords import hash_password

    return hash_password(password)


@click.group()
def users() -> None:
    """HTTP users: admin (everything), user (read and download), uploader (store only)."""


@users.command()
@_CONFIG
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), default="user", show_default=True)
@_PASSWORD_FILE
def add(config_file: Path | None, username: str, role: str, password_file: Path | None) -> None:
    """Create a user."""
    with _accounts(config_file) as accounts:
        if not accounts.add_user(username, cast(Role, role), _hash(_password(password_file))):
            raise click.ClickException(f"user {username!r} already exists")
    click.echo(f"created user {username} role={role}")


@users.command()
@_CONFIG
@click.argument("username")
@_PASSWORD_FILE
def passwd(config_file: Path | None, username: str, password_file: Path | None) -> None:
    """Set a user's password (their sessions end)."""
    with _accounts(config_file) as accounts:
        if accounts.user(username) is None:
            raise click.ClickException(f"no user {username!r}")
        accounts.update_user(username, password_hash=_hash(_password(password_file)))
    click.echo(f"password changed for {username}")


@users.command()
@_CONFIG
@click.argument("username")
def remove(config_file: Path | None, username: str) -> None:
    """Remove a user with their sessions and API tokens."""
    with _accounts(config_file) as accounts:
        if not accounts.remove_user(username):
            raise click.ClickException(f"no user {username!r}")
    click.echo(f"removed user {username}")


@users.command(name="list")
@_CONFIG
def list_users(config_file: Path | None) -> None:
    """List users and their roles."""
    with _accounts(config_file) as accounts:
        for user in accounts.users():
            click.echo(f"{user.username}\t{user.role}\t{user.created_at}")
