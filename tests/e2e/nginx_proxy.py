"""Debian's nginx as the one origin in front of OHIF and openpacs, as a site deploys them:
`/dicom-web/` goes to openpacs with the Authorization header the proxy adds (the viewer
holds no credential), everything else to the OHIF site. Run in the foreground from a
folder of its own (configuration, pid, logs, temporary files), on a port that was free.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from tests.support.process import free_port

NGINX = "/usr/sbin/nginx"
_START_SECONDS = 15.0

_CONFIG = """daemon off;
master_process off;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location /dicom-web/ {{
            proxy_pass http://{openpacs};
            proxy_set_header Host $http_host;
            proxy_set_header Authorization "{authorization}";
            proxy_buffering off;
        }}
        location / {{
            proxy_pass http://{site};
        }}
    }}
}}
"""


@contextmanager
def nginx_in_front(
    folder: Path, *, openpacs_url: str, site_url: str, authorization: str
) -> Iterator[str]:
    """nginx serving both behind one origin; yields that origin (http://127.0.0.1:PORT)."""
    if shutil.which(NGINX) is None:
        raise RuntimeError(f"{NGINX} is missing: install Debian's nginx (scripts/test does)")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = folder / "nginx.conf"
    config.write_text(
        _CONFIG.format(
            folder=folder,
            port=port,
            openpacs=urlsplit(openpacs_url).netloc,
            site=urlsplit(site_url).netloc,
            authorization=authorization,
        ),
        encoding="utf-8",
    )
    process = subprocess.Popen(
        [NGINX, "-p", str(folder), "-c", str(config), "-e", str(folder / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_listening(port, process, folder)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


def _wait_listening(port: int, process: subprocess.Popen[bytes], folder: Path) -> None:
    deadline = time.monotonic() + _START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = (folder / "error.log").read_text(errors="replace") if folder.exists() else ""
            raise RuntimeError(f"nginx exited with {process.returncode}: {log[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nginx did not listen on port {port} within {_START_SECONDS} s")
