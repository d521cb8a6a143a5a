"""A PostgreSQL login role for the servers, with what serving needs and nothing more.

The schema's owner (RDS' master user) runs migrations; the servers connect as a role that may
read and write the index's rows but not change, drop or own its tables, and, on RDS, logs in
with IAM tokens (membership of `rds_iam`) instead of a password. `openpacs db grant` runs
after `openpacs db upgrade`, by the owner; it is safe to run again.
"""

from __future__ import annotations

import logging
import re

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from openpacs.errors import ConfigError

log = logging.getLogger("openpacs.index")

_ROLE = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def grant_server_role(engine: Engine, role: str, *, rds_iam: bool = False) -> None:
    """Create `role` (LOGIN, no password) if missing and grant it row access to the schema."""
    if engine.dialect.name != "postgresql":
        raise ConfigError("database: roles and grants need PostgreSQL")
    if not _ROLE.fullmatch(role):
        raise ConfigError(f"role {role!r}: lower-case letters, digits and _ (at most 63)")
    try:
        _grant(engine, role, rds_iam=rds_iam)
    except DBAPIError as exc:  # e.g. the connecting user may not create roles
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise ConfigError(f"database: cannot grant role {role}: {reason}") from None
    log.info("database role=%s granted row access rds_iam=%s", role, rds_iam)


def _grant(engine: Engine, role: str, *, rds_iam: bool) -> None:
    quoted = f'"{role}"'
    with engine.begin() as connection:
        database = connection.execute(text("SELECT current_database()")).scalar_one()
        exists = connection.execute(
            text("SELECT 1 FROM pg_roles WHERE rolname = :role"), {"role": role}
        ).first()
        if not exists:
            connection.execute(text(f"CREATE ROLE {quoted} LOGIN"))
        if rds_iam:
            connection.execute(text(f"GRANT rds_iam TO {quoted}"))
        statements = (
            f'GRANT CONNECT ON DATABASE "{database}" TO {quoted}',
            f"GRANT USAGE ON SCHEMA public TO {quoted}",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {quoted}",
            f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {quoted}",
            # tables a later migration adds, made by this same owner
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {quoted}",
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
            f"GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {quoted}",
        )
        for statement in statements:
            connection.execute(text(statement))
