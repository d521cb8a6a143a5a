"""web/auth/throttle.py: which counter throttles whom, on a real SQLite index."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from openpacs.errors import LoginThrottled
from openpacs.index.accounts import SqlAccounts
from openpacs.index.engine import create_index_engine
from openpacs.index.migrate import prepare
from openpacs.web.auth.throttle import LoginThrottle


@pytest.fixture
def accounts(tmp_path: Path) -> Iterator[SqlAccounts]:
    engine = create_index_engine(f"sqlite:///{tmp_path / 'index.db'}")
    prepare(engine, auto_migrate=True)
    accounts = SqlAccounts(engine)
    yield accounts
    accounts.close()


def _throttle(accounts: SqlAccounts) -> LoginThrottle:
    return LoginThrottle(accounts, pair_free=3, user_free=10, peer_free=6)


def test_one_address_guessing_throttles_only_that_address(accounts: SqlAccounts) -> None:
    throttle = _throttle(accounts)
    for _ in range(3):
        throttle.check("Admin", "10.0.0.9")
        throttle.failed("Admin", "10.0.0.9")
    with pytest.raises(LoginThrottled) as raised:
        throttle.check("admin", "10.0.0.9")  # user names count without case
    assert raised.value.http_status == 429
    assert raised.value.retry_after >= 1
    throttle.check("admin", "10.0.0.1")  # the user elsewhere
    throttle.check("alice", "10.0.0.9")  # another user from the attacker's address


def test_a_user_guessed_from_many_addresses_is_throttled_everywhere(
    accounts: SqlAccounts,
) -> None:
    throttle = _throttle(accounts)
    for n in range(10):
        throttle.failed("admin", f"10.0.1.{n}")  # under the pair allowance on each address
    with pytest.raises(LoginThrottled):
        throttle.check("admin", "10.0.0.1")


def test_spraying_names_from_one_address_throttles_that_address(accounts: SqlAccounts) -> None:
    throttle = _throttle(accounts)
    for n in range(6):
        throttle.failed(f"user{n}", "10.0.0.9")
    with pytest.raises(LoginThrottled):
        throttle.check("someone-else", "10.0.0.9")
    with pytest.raises(LoginThrottled):
        throttle.check_peer("10.0.0.9")
    throttle.check("someone-else", "10.0.0.1")


def test_unknown_tokens_count_against_the_address(accounts: SqlAccounts) -> None:
    throttle = _throttle(accounts)
    for _ in range(6):
        throttle.check_peer("10.0.0.9")
        throttle.failed_token("10.0.0.9")
    with pytest.raises(LoginThrottled):
        throttle.check_peer("10.0.0.9")
    throttle.check_peer("10.0.0.1")


def test_a_success_clears_the_pair_and_the_user(accounts: SqlAccounts) -> None:
    throttle = _throttle(accounts)
    for _ in range(2):
        throttle.failed("admin", "10.0.0.9")
    throttle.succeeded("admin", "10.0.0.9")
    for _ in range(2):
        throttle.failed("admin", "10.0.0.9")
    throttle.check("admin", "10.0.0.9")  # 2 + 2 failures, but not 4 in a row


def test_a_very_long_user_name_is_counted(accounts: SqlAccounts) -> None:
    throttle = _throttle(accounts)
    name = "x" * 5000
    for _ in range(3):
        throttle.failed(name, "10.0.0.9")
    with pytest.raises(LoginThrottled):
        throttle.check(name, "10.0.0.9")
