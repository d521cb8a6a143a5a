"""openpacs behind a real reverse proxy (Debian's nginx, as a load balancer would be):
X-Forwarded-For is believed only from `[http] trusted_proxies`, so the audit trail records
the real client and the login throttle counts each client apart; a client that forges the
header directly, or through the proxy, gains nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from openpacs.web.auth.throttle import PAIR_FREE
from tests.support.nginx import nginx
from tests.support.web import WebNode, running_web_node

PROXY_ADDRESS = "127.0.0.1"  # nginx connects to openpacs from here (proxy_bind)
CLIENT_A = "127.0.0.2"
CLIENT_B = "127.0.0.3"


def client_from(address: str, **kwargs: Any) -> httpx.Client:
    """An HTTP client whose connections come from `address` (any 127/8 address is local)."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(transport=transport, timeout=30, **kwargs)


def login_peers(web: WebNode, outcome: str) -> list[str]:
    web.archive.audit.flush()
    response = httpx.get(
        f"{web.url}/api/audit", params={"action": "login", "outcome": outcome}, auth=web.admin
    )
    assert response.status_code == 200, response.text
    return [event["peer"] for event in response.json()["items"]]


def test_behind_nginx_the_real_client_is_audited_and_throttled(tmp_path: Path) -> None:
    http = {"trusted_proxies": [PROXY_ADDRESS]}
    with (
        running_web_node(tmp_path / "node", http=http) as web,
        nginx(tmp_path / "nginx", web.url, bind=PROXY_ADDRESS) as port,
    ):
        proxied = f"http://127.0.0.1:{port}"
        with client_from(CLIENT_A, base_url=proxied) as a:
            # a forged header is only the leftmost entry: nginx appends the real peer
            forged = {"X-Forwarded-For": "198.51.100.7"}
            bad = a.post("/api/session", json={"username": "admin", "password": "no"},
                         headers=forged)  # fmt: skip
            assert bad.status_code == 401
        assert login_peers(web, "failure") == [CLIENT_A]

        # Guessing admin's password from A throttles A (the throttle keys on the real
        # client, not the proxy), while B, behind the same proxy, still logs in as admin.
        with client_from(CLIENT_A, base_url=proxied) as a:
            for _ in range(PAIR_FREE):
                a.post("/api/session", json={"username": "admin", "password": "no"})
            throttled = a.post("/api/session", json={"username": "admin", "password": "no"})
            assert throttled.status_code == 429, throttled.text
            assert int(throttled.headers["retry-after"]) >= 1
        with client_from(CLIENT_B, base_url=proxied) as b:
            login = b.post("/api/session", json={"username": "admin", "password": web.password})
            assert login.status_code == 200, login.text
        assert CLIENT_B in login_peers(web, "success")
        assert set(login_peers(web, "failure")) == {CLIENT_A}


def test_forwarded_headers_from_an_untrusted_peer_are_ignored(tmp_path: Path) -> None:
    """No trusted proxy (the default): a client writing X-Forwarded-For itself is recorded
    under its own address, even from 127.0.0.1 (which uvicorn alone would believe)."""
    with running_web_node(tmp_path) as web:
        for address in (PROXY_ADDRESS, CLIENT_A):
            with client_from(address, base_url=web.url) as client:
                bad = client.post(
                    "/api/session",
                    json={"username": "admin", "password": "no"},
                    headers={"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"},
                )
                assert bad.status_code == 401
                assert "secure" not in bad.headers.get("set-cookie", "").lower()
        assert sorted(login_peers(web, "failure")) == [PROXY_ADDRESS, CLIENT_A]


def test_trusted_proxies_must_be_addresses_or_networks(tmp_path: Path) -> None:
    from openpacs.config import load_settings
    from openpacs.errors import ConfigError
    from tests.support.node import write_config

    good = write_config(tmp_path, {"http": {"trusted_proxies": ["10.0.0.0/16", "10.1.2.3"]}})
    assert load_settings(good, environ={}).http.trusted_proxies == ("10.0.0.0/16", "10.1.2.3/32")
    bad = write_config(tmp_path, {"http": {"trusted_proxies": ["the-load-balancer"]}})
    with pytest.raises(ConfigError, match=r"http\.trusted_proxies: .*not an IP address"):
        load_settings(bad, environ={})
