"""Credentials in, a Principal out: session cookies, bearer API tokens and HTTP Basic.

Passwords are checked against argon2id hashes, throttled per user name and peer together (a
guess from one address never locks the user out elsewhere), per user name alone at a much
higher count, and per peer; unknown bearer tokens count against the peer, valid ones are never
throttled. HTTP
Basic sends the password with every request (DICOMweb clients fetching frames send hundreds),
so a successful check is remembered for a few minutes under a digest of the name, the
password, the stored hash and the peer address: a changed password or a removed user never
matches it, and a guesser at another address cannot test guesses against it while throttled.
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
import time
from collections.abc import Callable

from openpacs.archive.ports import Accounts
from openpacs.archive.records import ApiToken, Role, User
from openpacs.errors import NotAuthenticated, PermissionDenied
from openpacs.web.auth.oidc import PASSWORD_MARKER, Identity, OidcProvider
from openpacs.web.auth.passwords import (
    digest,
    hash_password,
    needs_rehash,
    new_secret,
    verify_password,
)
from openpacs.web.auth.principal import Principal
from openpacs.web.auth.throttle import LoginThrottle

log = logging.getLogger("openpacs.auth")

SESSION_COOKIE = "openpacs_session"
TOKEN_PREFIX = "opt_"  # noqa: S105 - a marker, not a secret
_BASIC_CACHE_SECONDS = 300.0
_BASIC_CACHE_SIZE = 4096
LoginListener = Callable[[str, str, bool, str], None]
"""Called with (username, peer, succeeded, reason) after each password check."""


class Authenticator:
    def __init__(
        self,
        accounts: Accounts,
        *,
        session_seconds: float,
        on_login: LoginListener | None = None,
        oidc: OidcProvider | None = None,
    ) -> None:
        self.accounts = accounts
        self.oidc = oidc
        self.session_seconds = session_seconds
        self._throttle = LoginThrottle(accounts)
        self._on_login = on_login
        self._verified: dict[str, float] = {}
        self._lock = threading.Lock()

    # -- passwords --------------------------------------------------------------------------

    def login(self, username: str, password: str, peer: str) -> User:
        """Check a password; raises NotAuthenticated or LoginThrottled."""
        try:
            self._throttle.check(username, peer)
        except Exception as exc:
            self._notify(username, peer, False, getattr(exc, "reason", "throttled"))
            raise
        user = self.accounts.user(username)
        if not verify_password(user.password_hash if user else None, password) or user is None:
            self._throttle.failed(username, peer)
            self._notify(username, peer, False, "wrong user name or password")
            raise NotAuthenticated("wrong user name or password")
        self._throttle.succeeded(username, peer)
        if needs_rehash(user.password_hash):
            self.accounts.update_user(username, password_hash=hash_password(password))
        self._notify(username, peer, True, "")
        return user

    def provider_login(self, identity: Identity, peer: str) -> User:
        """The user of a verified provider login, created on first login and given the
        role of its claim at each; a local user of the same name is never taken over."""
        user = self.accounts.user(identity.username)
        if user is None:
            self.accounts.add_user(identity.username, identity.role, PASSWORD_MARKER)
            user = self.accounts.user(identity.username)  # ours, or a racing local add's
        if user is None or user.password_hash != PASSWORD_MARKER:
            self._notify(identity.username, peer, False, "single sign-on: a local user")
            raise PermissionDenied("a local user of that name exists; log in with its password")
        self.accounts.update_user(
            identity.username, role=identity.role, groups=tuple(sorted(identity.groups))
        )
        user = self.accounts.user(identity.username)
        if user is None:
            raise PermissionDenied("the user was removed during the login")
        self._notify(user.username, peer, True, "single sign-on")
        return user

    def notify_sso_failure(self, peer: str, reason: str) -> None:
        self._notify("", peer, False, f"single sign-on: {reason}")

    def _notify(self, username: str, peer: str, succeeded: bool, reason: str) -> None:
        if self._on_login is not None:
            self._on_login(username, peer, succeeded, reason)

    def _basic(self, value: str, peer: str) -> User:
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise NotAuthenticated("malformed Basic credentials") from None
        username, colon, password = decoded.partition(":")
        if not colon:
            raise NotAuthenticated("malformed Basic credentials")
        user = self.accounts.user(username)
        if user is not None:
            key = digest(f"{username}\0{password}\0{user.password_hash}\0{peer}")
            if self._verified.get(key, 0.0) > time.monotonic():
                return user
        user = self.login(username, password, peer)
        with self._lock:
            if len(self._verified) >= _BASIC_CACHE_SIZE:
                self._verified.clear()
            key = digest(f"{username}\0{password}\0{user.password_hash}\0{peer}")
            self._verified[key] = time.monotonic() + _BASIC_CACHE_SECONDS
        return user

    def _bearer(self, value: str, peer: str) -> Principal:
        """A valid token is never throttled; unknown or invalid ones count against the peer.

        Our API tokens start with `opt_`; anything else shaped as a JWT is an access token of
        the OpenID provider when one is configured."""
        value = value.strip()
        if self.oidc is not None and not value.startswith(TOKEN_PREFIX) and value.count(".") == 2:
            self._throttle.check_peer(peer)
            try:
                identity = self.oidc.verify_access_token(value)
            except NotAuthenticated as exc:
                self._throttle.failed_token(peer)
                log.warning("provider access token refused peer=%s reason=%s", peer, exc.reason)
                raise
            return Principal(identity.username, identity.role, "oidc", peer, identity.groups)
        user = self.accounts.token_user(digest(value), time.time())
        if user is not None:
            return _principal(user, "token", peer)
        self._throttle.check_peer(peer)
        self._throttle.failed_token(peer)
        raise NotAuthenticated("unknown, expired or revoked token")

    # -- sessions ---------------------------------------------------------------------------

    def open_session(self, user: User) -> str:
        """A new session for `user`; the returned secret goes into the cookie."""
        secret = new_secret("")
        self.accounts.purge_sessions(time.time())
        self.accounts.add_session(digest(secret), user.username, time.time() + self.session_seconds)
        return secret

    def close_session(self, secret: str) -> None:
        self.accounts.remove_session(digest(secret))

    # -- API tokens -------------------------------------------------------------------------

    def create_token(
        self, username: str, name: str, expires_in: float | None
    ) -> tuple[str, ApiToken]:
        """A new API token for `username`: (the secret, shown once; its public facts)."""
        secret = new_secret(TOKEN_PREFIX)
        token_id = digest(secret)[:16]
        expires = time.time() + expires_in if expires_in else None
        return secret, self.accounts.add_token(token_id, digest(secret), username, name, expires)

    # -- requests ---------------------------------------------------------------------------

    def authenticate(self, authorization: str | None, cookie: str | None, peer: str) -> Principal:
        """The caller of a request, from its Authorization header or else its session cookie;
        raises NotAuthenticated (or LoginThrottled) without valid credentials."""
        if authorization:
            scheme, _, value = authorization.strip().partition(" ")
            scheme = scheme.lower()
            if scheme == "bearer":
                return self._bearer(value, peer)
            if scheme == "basic":
                return _principal(self._basic(value, peer), "basic", peer)
            raise NotAuthenticated(f"unsupported authorization scheme {scheme[:20]!r}")
        if cookie:
            user = self.accounts.session_user(digest(cookie), time.time())
            if user is None:
                raise NotAuthenticated("the session has expired; log in again")
            return _principal(user, "session", peer)
        raise NotAuthenticated("authentication required")


def _principal(user: User, via: str, peer: str) -> Principal:
    role: Role = user.role
    return Principal(user.username, role, via, peer, frozenset(user.groups))  # type: ignore[arg-type]
