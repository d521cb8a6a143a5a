"""HTTPS (TLS 1.2+, HSTS), CORS, and `openpacs serve` running HTTP beside DIMSE in its worker
processes with the admin's generated password shown once."""

from __future__ import annotations

import re
import ssl
import time
import warnings
from pathlib import Path

import httpx
import pytest

from tests.support.node import write_config
from tests.support.pki import make_pki
from tests.support.process import free_port, serving
from tests.support.web import running_web_node


def test_https_with_tls_1_2_or_newer_and_hsts(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    http = {"tls_cert": str(pki.server_cert), "tls_key": str(pki.server_key)}
    with running_web_node(tmp_path / "node", http=http) as web:
        assert web.url.startswith("https://")
        context = ssl.create_default_context(cafile=str(pki.ca_cert))
        context.check_hostname = False
        response = httpx.get(f"{web.url}/health", verify=context)
        assert response.status_code == 200
        assert response.headers["strict-transport-security"].startswith("max-age=")
        login = httpx.post(
            f"{web.url}/api/session",
            json={"username": "admin", "password": web.password},
            verify=context,
        )
        assert "secure" in login.headers["set-cookie"].lower()
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.check_hostname = False
        old.verify_mode = ssl.CERT_NONE
        with warnings.catch_warnings():  # asking for the deprecated versions is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            old.minimum_version = ssl.TLSVersion.TLSv1
            old.maximum_version = ssl.TLSVersion.TLSv1_1
        old.set_ciphers("ALL:@SECLEVEL=0")
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{web.url}/health", verify=old)
        with pytest.raises(httpx.TransportError):  # plain HTTP on the TLS port
            httpx.get(web.url.replace("https://", "http://") + "/health")


def test_cors_allows_only_configured_origins(tmp_path: Path) -> None:
    origin = "https://viewer.example.org"
    with running_web_node(tmp_path, http={"cors_origins": [origin]}) as web:
        preflight = {"Origin": origin, "Access-Control-Request-Method": "GET",
                     "Access-Control-Request-Headers": "authorization"}  # fmt: skip
        allowed = httpx.options(f"{web.url}/api/studies", headers=preflight)
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == origin
        other = httpx.options(
            f"{web.url}/api/studies", headers={**preflight, "Origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in other.headers
        simple = httpx.get(f"{web.url}/api/session", auth=web.admin, headers={"Origin": origin})
        assert simple.headers["access-control-allow-origin"] == origin


@pytest.mark.slow
def test_serve_runs_http_in_every_worker(tmp_path: Path) -> None:
    dicom_port, http_port = free_port(), free_port()
    config = write_config(
        tmp_path,
        {"dicom": {"port": dicom_port, "workers": 2}, "http": {"port": http_port}},
    )
    with serving(config, port=dicom_port, log_dir=tmp_path) as server:
        url = f"http://127.0.0.1:{http_port}"
        deadline = time.monotonic() + 120
        while "ready workers=2" not in server.stderr():  # both workers serve HTTP by then
            assert time.monotonic() < deadline, server.diagnostics()
            time.sleep(0.2)
        assert httpx.get(f"{url}/health", timeout=30).json() == {"status": "ok"}
        log = server.stderr()
        shown = re.findall(r"created user 'admin' with password (\S+)", log)
        assert len(shown) == 1, log
        for _ in range(6):  # new connections: the kernel spreads them over both workers
            response = httpx.get(f"{url}/api/session", auth=("admin", shown[0]), timeout=30)
            assert response.json() == {"username": "admin", "role": "admin", "sso": False}
        assert len(re.findall(r"listening service=http ", log)) == 2, log
        server.terminate()
