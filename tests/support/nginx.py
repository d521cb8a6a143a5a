"""Debian's nginx as a reverse proxy in front of a test server: a load balancer that adds
X-Forwarded-For, or a TLS front for a plain-HTTP server (moto's S3 as an HTTPS MinIO)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.process import free_port

_CONF = """
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    client_max_body_size 0;
    server {{
        listen 127.0.0.1:{port}{ssl};
        {certificates}
        location / {{
            proxy_pass {upstream};
            proxy_http_version 1.1;
            proxy_request_buffering off;
            proxy_set_header Host $http_host;
            {bind}
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
"""


@contextmanager
def nginx(
    folder: Path,
    upstream: str,
    *,
    bind: str | None = None,
    tls: tuple[Path, Path] | None = None,
) -> Iterator[int]:
    """nginx on a free loopback port in front of `upstream`; yields the port. `bind`: the
    address it connects to the upstream from; `tls`: (certificate, key) to serve HTTPS."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).is_file():
        pytest.skip("nginx is not installed (scripts/test installs it)")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    certificates = f"ssl_certificate {tls[0]}; ssl_certificate_key {tls[1]};" if tls else ""
    config = folder / "nginx.conf"
    config.write_text(
        _CONF.format(
            folder=folder, port=port, upstream=upstream, ssl=" ssl" if tls else "",
            certificates=certificates, bind=f"proxy_bind {bind};" if bind else "",
        ),
        encoding="utf-8",
    )  # fmt: skip
    process = subprocess.Popen(
        [binary, "-c", str(config), "-p", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,  # errors go to error.log
    )
    try:
        _wait_until_listening(port, process, folder)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_until_listening(port: int, process: subprocess.Popen[bytes], folder: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with httpx.Client(verify=False, timeout=2) as client:  # any answer will do
                for scheme in ("http", "https"):
                    try:
                        client.get(f"{scheme}://127.0.0.1:{port}/")
                        return
                    except httpx.RemoteProtocolError:
                        continue
        except httpx.TransportError:
            pass
        log = folder / "error.log"
        if process.poll() is not None or time.monotonic() > deadline:
            error = log.read_text() if log.exists() else ""
            raise AssertionError(f"nginx did not start: {error}")
        time.sleep(0.05)
