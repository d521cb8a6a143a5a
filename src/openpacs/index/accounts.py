"""Users, login sessions, API tokens and failed-login counters, in the database.

Everything lives in the database so that several servers share it (a session made on one
server works on the next; failed logins against one count on all). Sessions and tokens are
kept as SHA-256 digests of high-entropy random secrets: a copy of the database does not
give anyone a way in.
"""

from __future__ import annotations

import json
from typing import Any, cast

from sqlalchemy import Connection, Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from openpacs.archive.records import ApiToken, Role, User
from openpacs.index import schema
from openpacs.index.transaction import Transactions, now_iso

_users = schema.users
_sessions = schema.sessions
_tokens = schema.api_tokens
_failures = schema.login_failures


def _user(row: Any) -> User:
    return User(
        row.username, cast(Role, row.role), row.password_hash, row.created_at, _groups(row.groups)
    )


def _groups(text: str | None) -> tuple[str, ...]:
    try:
        value = json.loads(text or "[]")
    except ValueError:
        return ()
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def _token(row: Any) -> ApiToken:
    return ApiToken(
        row.token_id, row.username, row.name, row.created_at, row.expires_epoch, row.last_used_at
    )


class SqlAccounts:
    def __init__(self, engine: Engine) -> None:
        self._tx = Transactions(engine)

    def close(self) -> None:
        self._tx.engine.dispose()

    # -- users ------------------------------------------------------------------------------

    def user(self, username: str) -> User | None:
        def work(conn: Connection) -> User | None:
            row = conn.execute(select(_users).where(_users.c.username == username)).first()
            return _user(row) if row is not None else None

        return self._tx.read(work)

    def users(self) -> list[User]:
        statement = select(_users).order_by(_users.c.username)
        return self._tx.read(lambda conn: [_user(r) for r in conn.execute(statement)])

    def count_users(self) -> int:
        return self._tx.read(
            lambda conn: int(conn.execute(select(func.count()).select_from(_users)).scalar_one())
        )

    def add_user(self, username: str, role: Role, password_hash: str) -> bool:
        """False when the name is taken (by this or a racing server)."""
        now = now_iso()
        row = {
            "username": username,
            "role": role,
            "password_hash": password_hash,
            "created_at": now,
            "updated_at": now,
        }
        try:
            self._tx.write(lambda conn: conn.execute(_users.insert().values(row)))
        except IntegrityError:
            return False
        return True

    def update_user(
        self,
        username: str,
        *,
        role: Role | None = None,
        password_hash: str | None = None,
        groups: tuple[str, ...] | None = None,
    ) -> bool:
        values: dict[str, Any] = {"updated_at": now_iso()}
        if groups is not None:
            values["groups"] = json.dumps(sorted(groups))
        if role is not None:
            values["role"] = role
        if password_hash is not None:
            values["password_hash"] = password_hash

        def work(conn: Connection) -> bool:
            changed = conn.execute(
                update(_users).where(_users.c.username == username).values(values)
            ).rowcount
            if changed and password_hash is not None:  # a new password ends old sessions
                conn.execute(delete(_sessions).where(_sessions.c.username == username))
            return bool(changed)

        return self._tx.write(work)

    def remove_user(self, username: str) -> bool:
        """Remove a user with their sessions and tokens."""

        def work(conn: Connection) -> bool:
            conn.execute(delete(_sessions).where(_sessions.c.username == username))
            conn.execute(delete(_tokens).where(_tokens.c.username == username))
            return bool(conn.execute(delete(_users).where(_users.c.username == username)).rowcount)

        return self._tx.write(work)

    # -- sessions ---------------------------------------------------------------------------

    def add_session(self, token_sha256: str, username: str, expires_epoch: float) -> None:
        row = {
            "token_sha256": token_sha256,
            "username": username,
            "created_at": now_iso(),
            "expires_epoch": expires_epoch,
        }
        self._tx.write(lambda conn: conn.execute(_sessions.insert().values(row)))

    def session_user(self, token_sha256: str, now_epoch: float) -> User | None:
        """The user of a live session, or None (unknown, expired, or the user is gone)."""
        statement = (
            select(_users)
            .join(_sessions, _sessions.c.username == _users.c.username)
            .where(_sessions.c.token_sha256 == token_sha256)
            .where(_sessions.c.expires_epoch > now_epoch)
        )

        def work(conn: Connection) -> User | None:
            row = conn.execute(statement).first()
            return _user(row) if row is not None else None

        return self._tx.read(work)

    def remove_session(self, token_sha256: str) -> None:
        self._tx.write(
            lambda conn: conn.execute(
                delete(_sessions).where(_sessions.c.token_sha256 == token_sha256)
            )
        )

    def purge_sessions(self, now_epoch: float) -> int:
        return self._tx.write(
            lambda conn: (
                conn.execute(
                    delete(_sessions).where(_sessions.c.expires_epoch <= now_epoch)
                ).rowcount
            )
        )

    # -- API tokens -------------------------------------------------------------------------

    def add_token(
        self,
        token_id: str,
        token_sha256: str,
        username: str,
        name: str,
        expires_epoch: float | None,
    ) -> ApiToken:
        created_at = now_iso()
        row = {
            "token_id": token_id,
            "token_sha256": token_sha256,
            "username": username,
            "name": name,
            "created_at": created_at,
            "expires_epoch": expires_epoch,
            "last_used_at": None,
        }
        self._tx.write(lambda conn: conn.execute(_tokens.insert().values(row)))
        return ApiToken(token_id, username, name, created_at, expires_epoch, None)

    def token_user(self, token_sha256: str, now_epoch: float) -> User | None:
        """The owner of a live token, or None; records when the token was last used."""
        statement = (
            select(_users, _tokens.c.pk.label("token_pk"), _tokens.c.expires_epoch)
            .join(_tokens, _tokens.c.username == _users.c.username)
            .where(_tokens.c.token_sha256 == token_sha256)
        )

        def work(conn: Connection) -> User | None:
            row = conn.execute(statement).first()
            if row is None or (row.expires_epoch is not None and row.expires_epoch <= now_epoch):
                return None
            conn.execute(
                update(_tokens).where(_tokens.c.pk == row.token_pk).values(last_used_at=now_iso())
            )
            return _user(row)

        return self._tx.write(work)

    def tokens(self, username: str | None = None) -> list[ApiToken]:
        statement = select(_tokens).order_by(_tokens.c.created_at)
        if username is not None:
            statement = statement.where(_tokens.c.username == username)
        return self._tx.read(lambda conn: [_token(r) for r in conn.execute(statement)])

    def revoke_token(self, token_id: str, username: str | None = None) -> bool:
        """Delete a token (only `username`'s when given); False when there is none."""
        statement = delete(_tokens).where(_tokens.c.token_id == token_id)
        if username is not None:
            statement = statement.where(_tokens.c.username == username)
        return self._tx.write(lambda conn: bool(conn.execute(statement).rowcount))

    # -- failed logins ----------------------------------------------------------------------

    def login_failures(self, subject: str) -> tuple[int, float]:
        """(consecutive failures, time of the last one) for a user name or peer address."""

        def work(conn: Connection) -> tuple[int, float]:
            row = conn.execute(select(_failures).where(_failures.c.subject == subject)).first()
            return (row.failures, row.last_epoch) if row is not None else (0, 0.0)

        return self._tx.read(work)

    def record_login_failure(self, subject: str, now_epoch: float) -> int:
        """Count one more failure; returns the new count."""

        def work(conn: Connection) -> int:
            changed = conn.execute(
                update(_failures)
                .where(_failures.c.subject == subject)
                .values(failures=_failures.c.failures + 1, last_epoch=now_epoch)
            ).rowcount
            if not changed:
                conn.execute(
                    _failures.insert().values(subject=subject, failures=1, last_epoch=now_epoch)
                )
            return int(
                conn.execute(
                    select(_failures.c.failures).where(_failures.c.subject == subject)
                ).scalar_one()
            )

        try:
            return self._tx.write(work)
        except IntegrityError:  # a racing server inserted the row first: count on it
            return self._tx.write(work)

    def clear_login_failures(self, subject: str) -> None:
        self._tx.write(
            lambda conn: conn.execute(delete(_failures).where(_failures.c.subject == subject))
        )
