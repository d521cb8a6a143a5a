"""Failed-login throttling, with the counters in the database so every server sees them.

Failures are counted per (user name, peer address), per user name alone and per peer alone:

- a user name may fail `PAIR_FREE` times from one address; after that, attempts for that name
  from that address wait `FIRST_DELAY` seconds after the last failure, doubling with every
  further failure up to `MAX_DELAY`. Someone guessing from one address slows down only
  there: the user, from any other address, still logs in (throttling the name alone would
  let anyone lock any user out);
- a user name may fail `USER_FREE` times over all addresses (a guess spread over many
  addresses) before it is throttled everywhere: far more than one address may try;
- a peer may fail `PEER_FREE` times over all names (password spraying), unknown API tokens
  included.

An attempt during a delay is refused without checking the password (`LoginThrottled`: 429
with Retry-After, never 401, which would tell the client the password is wrong). A success
clears the counters of the pair and of the user name. A valid API token is never throttled.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time

from openpacs.archive.ports import Accounts
from openpacs.errors import LoginThrottled

log = logging.getLogger("openpacs.auth")

PAIR_FREE = 5
USER_FREE = 100
PEER_FREE = 100
FIRST_DELAY = 15.0
MAX_DELAY = 300.0
FORGET_AFTER = 3600.0
"""A counter whose last failure is older than this starts again from zero."""
_SUBJECT_LENGTH = 200  # login_failures.subject


def _delay(failures: int, free: int) -> float:
    if failures < free:
        return 0.0
    return min(FIRST_DELAY * 2.0 ** (failures - free), MAX_DELAY)


def _subject(kind: str, value: str) -> str:
    """A counter's key; long values (a user name is whatever a client sends) are hashed."""
    subject = f"{kind}:{value}"
    if len(subject) <= _SUBJECT_LENGTH:
        return subject
    return f"{kind}:sha256:{hashlib.sha256(value.encode()).hexdigest()}"


class LoginThrottle:
    def __init__(
        self,
        accounts: Accounts,
        *,
        pair_free: int = PAIR_FREE,
        user_free: int = USER_FREE,
        peer_free: int = PEER_FREE,
    ) -> None:
        self._accounts = accounts
        self._free = {"pair": pair_free, "user": user_free, "peer": peer_free}

    def _subjects(self, username: str, peer: str) -> list[tuple[str, int]]:
        name = username.lower()
        return [
            (_subject("pair", f"{peer} {name}"), self._free["pair"]),
            (_subject("user", name), self._free["user"]),
            (_subject("peer", peer), self._free["peer"]),
        ]

    def check(self, username: str, peer: str) -> None:
        """Raise LoginThrottled while a delay of the pair, the user name or the peer runs."""
        self._check(self._subjects(username, peer))

    def check_peer(self, peer: str) -> None:
        """Raise LoginThrottled while the peer's delay runs (unknown API tokens)."""
        self._check([(_subject("peer", peer), self._free["peer"])])

    def _check(self, subjects: list[tuple[str, int]]) -> None:
        now = time.time()
        waits = []
        for subject, free in subjects:
            failures, last = self._accounts.login_failures(subject)
            if failures and now - last <= FORGET_AFTER:
                waits.append((last + _delay(failures, free) - now, subject, failures))
        wait, subject, failures = max(waits, default=(0.0, "", 0))
        if wait > 0:
            log.warning("login throttled subject=%s failures=%d", subject, failures)
            raise LoginThrottled(
                f"too many failed logins; try again in {math.ceil(wait)} s", math.ceil(wait)
            )

    def failed(self, username: str, peer: str) -> None:
        pair, user, _peer = self._record([subject for subject, _ in self._subjects(username, peer)])
        log.warning(
            "login failed subject=%s peer=%s failures=%d user_failures=%d",
            _subject("user", username.lower()),
            peer,
            pair,
            user,
        )

    def failed_token(self, peer: str) -> None:
        self._record([_subject("peer", peer)])

    def _record(self, subjects: list[str]) -> list[int]:
        now = time.time()
        counts = []
        for subject in subjects:
            failures, last = self._accounts.login_failures(subject)
            if failures and now - last > FORGET_AFTER:
                self._accounts.clear_login_failures(subject)
            counts.append(self._accounts.record_login_failure(subject, now))
        return counts

    def succeeded(self, username: str, peer: str) -> None:
        for subject, _free in self._subjects(username, peer)[:2]:
            self._accounts.clear_login_failures(subject)
