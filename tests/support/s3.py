"""S3 for tests: moto's server on a free loopback port, and a proxy that injects S3 errors.

Nothing here reads the machine's AWS setup: clients come from a session with dummy keys whose
config and credentials files are /dev/null. A test module makes the fixtures its own by
assignment (``s3_endpoint = s3_support.s3_endpoint``; an import would trip ruff's F811 on every
test argument): ``s3_endpoint`` is one server for the whole session, ``s3_bucket`` a new bucket
per test.
"""

from __future__ import annotations

import functools
import http.client
import logging
import os
import socket
import threading
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.session
import pytest
from moto.server import ThreadedMotoServer

HOST = "127.0.0.1"
REGION = "us-east-1"
DUMMY_KEY = "testing"


def free_port() -> int:
    """A loopback port that was free a moment ago (bind port 0, read it, close it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@functools.cache
def aws_session() -> boto3.session.Session:
    """A session with dummy keys that ignores ~/.aws and AWS_* credentials (shared: clients
    built from one session reuse its parsed service models)."""
    core = botocore.session.Session()
    core.set_config_variable("config_file", os.devnull)
    core.set_config_variable("credentials_file", os.devnull)
    core.set_credentials(DUMMY_KEY, DUMMY_KEY)
    return boto3.session.Session(botocore_session=core, region_name=REGION)


def client(endpoint: str, service: str = "s3") -> Any:
    """A plain boto3 client on ``endpoint`` for arranging and inspecting test state."""
    return aws_session().client(service, endpoint_url=endpoint, region_name=REGION)


@contextmanager
def moto_server() -> Iterator[str]:
    """Run moto's server (all services, in-memory) in a thread; yield its endpoint URL."""
    werkzeug = logging.getLogger("werkzeug")
    level = werkzeug.level
    werkzeug.setLevel(logging.WARNING)  # one line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address=HOST, port=port, verbose=False)
    server.start()
    endpoint = f"http://{HOST}:{port}"
    try:
        yield endpoint
    finally:
        try:  # moto keeps its state in this process after the server stops: drop it all
            reset = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
            with urllib.request.urlopen(reset, timeout=30):
                pass
        finally:
            server.stop()
            werkzeug.setLevel(level)


def make_bucket(endpoint: str, name: str | None = None) -> str:
    """Create a bucket (a unique name unless given) and return its name."""
    name = name or f"openpacs-test-{uuid.uuid4().hex[:16]}"
    client(endpoint).create_bucket(Bucket=name)
    return name


def remove_bucket(endpoint: str, name: str) -> None:
    """Delete a bucket with its objects and unfinished multipart uploads."""
    s3 = client(endpoint)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for item in page.get("Contents", ()):
            s3.delete_object(Bucket=name, Key=item["Key"])
    for upload in s3.list_multipart_uploads(Bucket=name).get("Uploads", ()):
        s3.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
    s3.delete_bucket(Bucket=name)


class _SharedServer:
    """One moto server however many modules hold the session fixture (pytest makes one
    fixture definition per module that imports it); stopped when the last lets go."""

    def __init__(self) -> None:
        self._users = 0
        self._stack = ExitStack()
        self._endpoint = ""

    @contextmanager
    def use(self) -> Iterator[str]:
        if self._users == 0:
            self._endpoint = self._stack.enter_context(moto_server())
        self._users += 1
        try:
            yield self._endpoint
        finally:
            self._users -= 1
            if self._users == 0:
                self._stack.close()


_SHARED = _SharedServer()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with _SHARED.use() as endpoint:
        yield endpoint


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    """A fresh bucket per test; left in place (moto is reset when the server stops) because
    emptying and deleting it would double the requests of a short test."""
    return make_bucket(s3_endpoint)


# -- fault injection ----------------------------------------------------------------------------

#: Decides per request (method, path) whether to answer with an error (status, S3 code).
Rule = Callable[[str, str], "tuple[int, str] | None"]


def fail_first(count: int, status: int = 503, code: str = "SlowDown") -> Rule:
    """Fail the first ``count`` requests, then forward everything."""
    left = [count]
    lock = threading.Lock()

    def rule(method: str, path: str) -> tuple[int, str] | None:
        with lock:
            if left[0] > 0:
                left[0] -= 1
                return status, code
        return None

    return rule


def deny(method: str, path_part: str = "") -> Rule:
    """Answer 403 AccessDenied to ``method`` requests whose path contains ``path_part``."""

    def rule(seen_method: str, path: str) -> tuple[int, str] | None:
        return (403, "AccessDenied") if seen_method == method and path_part in path else None

    return rule


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    status: int


_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "expect", "date", "server"}


@dataclass
class FaultProxy:
    """An HTTP proxy in front of an S3 endpoint; ``rule`` picks requests to fail."""

    target: str
    rule: Rule = field(default=lambda method, path: None)
    seen: list[Seen] = field(default_factory=list)
    endpoint: str = ""

    def __enter__(self) -> FaultProxy:
        proxy = self

        class Handler(_ProxyHandler):
            owner = proxy

        self._server = ThreadingHTTPServer((HOST, 0), Handler)
        self._server.daemon_threads = True
        self.endpoint = f"http://{HOST}:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def statuses(self) -> list[int]:
        return [seen.status for seen in self.seen]


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and 100-continue, as botocore expects
    owner: FaultProxy

    def do_GET(self) -> None:
        self._relay()

    do_PUT = do_POST = do_DELETE = do_HEAD = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _relay(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        failure = self.owner.rule(self.command, self.path)
        if failure is not None:
            status, code = failure
            payload = (
                b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>'
                + code.encode()
                + b"</Code><Message>injected by the test proxy</Message></Error>"
            )
            self._answer(status, [("Content-Type", "application/xml")], payload)
        else:
            target = urlsplit(self.owner.target)
            upstream = http.client.HTTPConnection(target.hostname or HOST, target.port, timeout=30)
            try:
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                payload = response.read()
                status = response.status
                kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
            finally:
                upstream.close()
            self._answer(status, kept, payload)
        self.owner.seen.append(Seen(self.command, self.path, headers, status))

    def _answer(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
        self.send_response(status)
        for key, value in headers:
            if key.lower() != "content-length" or self.command == "HEAD":
                self.send_header(key, value)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        else:
            if not any(key.lower() == "content-length" for key, _ in headers):
                self.send_header("Content-Length", "0")
            self.end_headers()
