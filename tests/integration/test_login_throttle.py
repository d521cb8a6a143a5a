"""Failed logins cannot lock a user out (an account lockout denial of service), on every backend.

An attacker at 127.0.0.2 hammers a user's password through the UI login, HTTP Basic on
DICOMweb and unknown bearer tokens, while the user works from 127.0.0.3 (both loopback
addresses). Past the per-(user, address) allowance the attacker gets 429 with Retry-After,
never 401 and without the password being checked; the user, from the other address, logs in
with the right password on every path, and a valid API token works even from the attacker's
address. The counts live in the database, so a second server on the same database (a second
HTTP server on a fresh archive) throttles the attacker the same way and lets the user in.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from openpacs.compose import build_archive, build_http_server
from openpacs.web.auth.throttle import PAIR_FREE
from tests.support.backends import Backend
from tests.support.node import HOST
from tests.support.web import WebNode, running_web_node

ATTACKER = "127.0.0.2"
USER = "127.0.0.3"
VICTIM = "victim"


@dataclass(frozen=True)
class Servers:
    web: WebNode
    second_url: str
    password: str

    def client(self, address: str, url: str | None = None) -> httpx.Client:
        """A client whose connections come from `address`."""
        return httpx.Client(
            base_url=url or self.web.url,
            transport=httpx.HTTPTransport(local_address=address),
            timeout=30,
        )


@pytest.fixture
def servers(tmp_path: Path, backend: Backend) -> Iterator[Servers]:
    with running_web_node(tmp_path, backend=backend) as web:
        password = web.add_user(VICTIM, "user", "correct-horse-battery-1")
        second_archive = build_archive(web.settings)
        second = build_http_server(
            second_archive, web.settings, port=0, grace_seconds=5, create_admin=False
        )
        second.start()
        try:
            yield Servers(web, f"{second.scheme}://{HOST}:{second.port}", password)
        finally:
            second.stop()
            second_archive.close()


def _ui_login(client: httpx.Client, password: str) -> httpx.Response:
    return client.post("/api/session", json={"username": VICTIM, "password": password})


def _dicomweb(client: httpx.Client, password: str) -> httpx.Response:
    return client.get("/dicom-web/studies", auth=(VICTIM, password))


def test_attack_and_legitimate_logins_side_by_side(
    servers: Servers, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="openpacs.auth")
    with servers.web.client(auth=(VICTIM, servers.password)) as owner:
        created = owner.post("/api/tokens", json={"name": "nightly"})
    assert created.status_code == 201, created.text
    token = {"Authorization": f"Bearer {created.json()['token']}"}
    with servers.client(ATTACKER) as attacker:
        for attempt in range(PAIR_FREE):
            guess = (_ui_login if attempt % 2 else _dicomweb)(attacker, f"guess-{attempt}")
            assert guess.status_code == 401, guess.text
        attacker.get("/api/session", headers={"Authorization": "Bearer opt_not-a-token"})
    for url in (servers.web.url, servers.second_url):  # the counts are in the database
        with servers.client(ATTACKER, url) as attacker, servers.client(USER, url) as user:
            for attack in (_ui_login, _dicomweb):
                for password in ("guess-again", servers.password):  # not even checked
                    throttled = attack(attacker, password)
                    assert throttled.status_code == 429, throttled.text
                    assert int(throttled.headers["retry-after"]) >= 1
                    assert "www-authenticate" not in throttled.headers
                    assert "too many failed logins" in throttled.json()["detail"]
                # Side by side: the user, from another address, gets in on every path.
                assert _ui_login(user, servers.password).status_code == 200
                assert _dicomweb(user, servers.password).status_code == 200
            # A valid API token is never throttled, even from the attacker's address.
            assert attacker.get("/dicom-web/studies", headers=token).status_code == 200
            assert attacker.get("/api/session", headers=token).json()["username"] == VICTIM
    assert any("login throttled subject=pair:" in r.getMessage() for r in caplog.records)
