"""Failed-login throttling, with the counters in the database so every server sees them.

A user name may fail `FREE_FAILURES` times in a row, a peer address `FREE_PEER_FAILURES`
times (password spraying over many names); after that each attempt must wait a delay that
doubles with every further failure, up to `MAX_DELAY` seconds. An attempt during the delay is
refused without checking the password. A success clears the user name's counter.
"""

from __future__ import annotations

import logging
import math
import time

from openpacs.archive.ports import Accounts
from openpacs.errors import LoginThrottled

log = logging.getLogger("openpacs.auth")

FREE_FAILURES = 5
FREE_PEER_FAILURES = 20
MAX_DELAY = 300.0
FORGET_AFTER = 3600.0
"""A counter whose last failure is older than this starts again from zero."""


def _delay(failures: int, free: int) -> float:
    if failures < free:
        return 0.0
    return min(2.0 ** (failures - free), MAX_DELAY)


class LoginThrottle:
    def __init__(self, accounts: Accounts) -> None:
        self._accounts = accounts

    @staticmethod
    def _subjects(username: str, peer: str) -> list[tuple[str, int]]:
        return [(f"user:{username.lower()}", FREE_FAILURES), (f"peer:{peer}", FREE_PEER_FAILURES)]

    def check(self, username: str, peer: str) -> None:
        """Raise LoginThrottled while a subject's delay runs."""
        now = time.time()
        for subject, free in self._subjects(username, peer):
            failures, last = self._accounts.login_failures(subject)
            if now - last > FORGET_AFTER:
                continue
            wait = last + _delay(failures, free) - now
            if wait > 0:
                log.warning("login throttled subject=%s failures=%d", subject, failures)
                raise LoginThrottled(
                    f"too many failed logins; try again in {math.ceil(wait)} s", math.ceil(wait)
                )

    def failed(self, username: str, peer: str) -> None:
        now = time.time()
        for subject, _free in self._subjects(username, peer):
            failures, last = self._accounts.login_failures(subject)
            if failures and now - last > FORGET_AFTER:
                self._accounts.clear_login_failures(subject)
            count = self._accounts.record_login_failure(subject, now)
            if subject.startswith("user:"):
                log.warning("login failed subject=%s peer=%s failures=%d", subject, peer, count)

    def succeeded(self, username: str) -> None:
        self._accounts.clear_login_failures(f"user:{username.lower()}")
