"""Runs the HTTP application with uvicorn on a thread of the serving process.

The listening socket is made here, not by uvicorn, so that a port of 0 is known before the
first request and so that several worker processes can share one port (SO_REUSEPORT), the
way the DIMSE listeners do. TLS uses the context it is given (TLS 1.2+, made by compose).
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from typing import Any

import uvicorn

from openpacs.errors import ConfigError

log = logging.getLogger("openpacs.web")

_START_SECONDS = 30.0


class HttpServer:
    def __init__(
        self,
        app: Any,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        share_port: bool = False,
        grace_seconds: float = 30.0,
        trusted_proxies: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self._host = host
        self._port = port
        self._share_port = share_port
        self._ssl = ssl_context
        config = uvicorn.Config(
            app,
            log_config=None,  # openpacs configures logging
            access_log=False,  # URLs carry patient data (QIDO); the audit trail records access
            server_header=False,
            ws="none",
            lifespan="on",
            # The client address (audit trail, login throttle) comes from X-Forwarded-For only
            # when the connection is from a configured proxy; uvicorn's own default would
            # believe any local process (127.0.0.1) and FORWARDED_ALLOW_IPS.
            proxy_headers=bool(trusted_proxies),
            forwarded_allow_ips=list(trusted_proxies) or None,
            timeout_graceful_shutdown=max(int(grace_seconds), 1),
            ssl_context_factory=(lambda _config, _default: ssl_context) if ssl_context else None,
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def scheme(self) -> str:
        return "https" if self._ssl is not None else "http"

    @property
    def port(self) -> int:
        if self._socket is None:
            raise RuntimeError("the HTTP server is not started")
        return int(self._socket.getsockname()[1])

    def start(self) -> None:
        """Bind, serve on a thread, and return once uvicorn accepts connections."""
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self._share_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind((self._host, self._port))
        except OSError as exc:
            sock.close()
            raise ConfigError(
                f"http.port: cannot listen on {self._host}:{self._port}: {exc.strerror}"
            ) from None
        sock.listen(1024)
        sock.set_inheritable(True)
        self._socket = sock
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="http", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + _START_SECONDS
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError("http: the HTTP server did not start")
            time.sleep(0.01)
        log.info("listening service=%s host=%s port=%d", self.scheme, self._host, self.port)

    def stop(self) -> None:
        """Stop accepting, let running requests finish (the grace period), then return."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=(self._server.config.timeout_graceful_shutdown or 30) + 5)
        if self._socket is not None:
            self._socket.close()
