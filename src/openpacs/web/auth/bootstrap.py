"""The first administrator: created on first start from `[auth] admin_password_file`, or with
a random password printed once to the console (never to the log)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from openpacs.archive.ports import Accounts
from openpacs.config import AuthSettings
from openpacs.errors import ConfigError
from openpacs.web.auth.passwords import MIN_PASSWORD_LENGTH, hash_password, random_password

log = logging.getLogger("openpacs.auth")


def ensure_admin(accounts: Accounts, settings: AuthSettings) -> bool:
    """Create the admin when there is no user at all; True when this call created it.

    Safe with several servers starting at once: the insert is if-absent, and only the server
    whose insert won prints a generated password.
    """
    if accounts.count_users():
        return False
    generated = not settings.admin_password_file
    if generated:
        password = random_password()
    else:
        password = Path(settings.admin_password_file).read_text(encoding="utf-8").strip()
        if len(password) < MIN_PASSWORD_LENGTH:
            raise ConfigError(
                f"auth.admin_password_file: the password must have at least "
                f"{MIN_PASSWORD_LENGTH} characters"
            )
    if not accounts.add_user(settings.admin_user, "admin", hash_password(password)):
        return False
    log.info("created the administrator user=%s", settings.admin_user)
    if generated:
        print(  # shown once on the console by design, kept out of the log
            f"openpacs: created user {settings.admin_user!r} with password {password}\n"
            "openpacs: this password is shown only once; change it with "
            f"`openpacs users passwd {settings.admin_user}`",
            file=sys.stderr,
            flush=True,
        )
    return True
