"""What only the S3 store has: encryption, multipart, streaming reads, retries, start-up checks
and the mapping of keys under a prefix. The BlobStore contract itself runs in
test_blob_store_contract.py.

moto enforces no IAM or bucket policy unless told so before it is imported, so "access denied"
comes from a proxy in front of it that answers 403 AccessDenied the way S3 does.
"""

from __future__ import annotations

import io
import os
import socket
import threading
import time
import tracemalloc
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.credentials import CredentialResolver

from openpacs.errors import NotFound, StoreUnavailable
from openpacs.storage.s3 import MIB, S3Store
from tests.support import s3 as s3_support
from tests.support.blobs import holds, put, read_at
from tests.support.s3 import (
    HOST,
    FaultProxy,
    aws_session,
    client,
    deny,
    fail_first,
    free_port,
)

# Fixtures shared with other S3 test modules (assigned, so that pytest finds them here).
s3_endpoint = s3_support.s3_endpoint
s3_bucket = s3_support.s3_bucket

PREFIX = "some/prefix"
BIG = 11 * MIB  # three parts of a 5 MiB multipart upload


def _store(endpoint: str, bucket: str, **options: Any) -> S3Store:
    options.setdefault("prefix", PREFIX)
    options.setdefault("multipart_threshold", 5 * MIB)
    options.setdefault("multipart_chunksize", 5 * MIB)
    return S3Store(
        bucket, endpoint_url=endpoint, region="us-east-1", session=aws_session(), **options
    )


def _pattern(offset: int, length: int) -> bytes:
    """Bytes ``offset..offset+length`` of an endless 251-byte cycle (a prime, so a misplaced
    part or range at any power-of-two offset shows)."""
    block = bytes(range(251)) * (length // 251 + 2)
    return block[offset % 251 : offset % 251 + length]


def _raw_keys(endpoint: str, bucket: str) -> list[str]:
    listed = client(endpoint).list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listed.get("Contents", ()))


class _Boom(Exception):
    """A caller-side failure midway through an upload."""


class _Trickle:
    """A stream of ``size`` pattern bytes in short reads, optionally failing after ``fail_at``."""

    def __init__(
        self, size: int, *, step: int = 64 * 1024, fail_at: int = -1, error: Exception | None = None
    ) -> None:
        self._size, self._step, self._fail_at = size, step, fail_at
        self._error = error or _Boom()
        self.offset = 0

    def read(self, size: int = -1) -> bytes:
        if 0 <= self._fail_at <= self.offset:
            raise self._error
        length = min(self._step, self._size - self.offset, size if size >= 0 else self._step)
        chunk = _pattern(self.offset, length)
        self.offset += length
        return chunk


@pytest.fixture
def kms_key(s3_endpoint: str) -> str:
    arn: str = client(s3_endpoint, "kms").create_key()["KeyMetadata"]["Arn"]
    return arn


# -- server-side encryption, single and multipart -----------------------------------------------

_PUTS = {
    "single-put_stream": lambda store, tmp: put(store, "k.dcm", b"small"),
    "multipart-put_stream": lambda store, tmp: store.put_stream("k.dcm", _Trickle(BIG)),
    "multipart-put_file": lambda store, tmp: store.put_file("k.dcm", _big_file(tmp)),
}


def _big_file(tmp_path: Path) -> Path:
    path = tmp_path / "big.dcm"
    path.write_bytes(_pattern(0, BIG))
    return path


@pytest.mark.parametrize("how", sorted(_PUTS))
@pytest.mark.parametrize("sse", ["AES256", "aws:kms"])
def test_every_put_is_encrypted(
    s3_endpoint: str, s3_bucket: str, kms_key: str, tmp_path: Path, sse: str, how: str
) -> None:
    kms_key_id = kms_key if sse == "aws:kms" else ""
    store = _store(s3_endpoint, s3_bucket, sse=sse, kms_key_id=kms_key_id)
    _PUTS[how](store, tmp_path)
    head = client(s3_endpoint).head_object(Bucket=s3_bucket, Key=f"{PREFIX}/k.dcm")
    assert head["ServerSideEncryption"] == sse
    assert head.get("SSEKMSKeyId", "") == kms_key_id
    multipart = how.startswith("multipart")
    assert head["ETag"].strip('"').endswith("-3") == multipart  # an ETag counts its parts
    assert head["ContentLength"] == (BIG if multipart else len(b"small"))


def test_put_stream_makes_full_parts_from_short_reads(s3_endpoint: str, s3_bucket: str) -> None:
    store = _store(s3_endpoint, s3_bucket)
    assert store.put_stream("k", _Trickle(BIG, step=1000)) == BIG
    assert read_at(store, "k", BIG - 7, 100) == _pattern(BIG - 7, 7)


@pytest.mark.parametrize(
    ("error", "raised"),
    [
        pytest.param(_Boom(), _Boom, id="caller-error"),
        pytest.param(OSError(5, "EIO"), StoreUnavailable, id="io-error"),
    ],
)
def test_multipart_stream_failing_midway_stores_nothing(
    s3_endpoint: str, s3_bucket: str, error: Exception, raised: type[Exception]
) -> None:
    store = _store(s3_endpoint, s3_bucket)
    with pytest.raises(raised):
        store.put_stream("k", _Trickle(BIG, fail_at=6 * MIB, error=error))
    assert not holds(store, "k")
    uploads = client(s3_endpoint).list_multipart_uploads(Bucket=s3_bucket)
    assert uploads.get("Uploads", []) == []  # aborted, not left to accrue storage charges


# -- streaming reads ----------------------------------------------------------------------------


class _PatternServer:
    """Serves ``size`` pattern bytes for any GET, in 64 KiB writes, honouring Range; the first
    ``cuts`` GETs break off after ``cut_after`` bytes. Records each request's headers."""

    ETAG = '"pattern-etag"'

    def __init__(self, size: int, *, cut_after: int = -1, cuts: int = 1) -> None:
        self.size, self.cut_after, self.cuts = size, cut_after, cuts
        self.requests: list[dict[str, str]] = []

    def __enter__(self) -> _PatternServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                owner.requests.append(dict(self.headers.items()))
                start, status = 0, 200
                if "Range" in self.headers:
                    start, status = int(self.headers["Range"].split("=")[1].split("-")[0]), 206
                self.send_response(status)
                self.send_header("Content-Length", str(owner.size - start))
                self.send_header("ETag", owner.ETAG)
                if status == 206:
                    self.send_header(
                        "Content-Range", f"bytes {start}-{owner.size - 1}/{owner.size}"
                    )
                self.end_headers()
                stop = owner.size
                if owner.cut_after >= 0 and len(owner.requests) <= owner.cuts:
                    stop, self.close_connection = min(start + owner.cut_after, stop), True
                for offset in range(start, stop, 64 * 1024):
                    self.wfile.write(_pattern(offset, min(64 * 1024, stop - offset)))

            def log_message(self, format: str, *args: Any) -> None:
                pass

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


def test_open_streams_without_holding_the_object() -> None:
    size = 40 * MIB
    with _PatternServer(size) as server:
        store = S3Store("bucket", endpoint_url=server.endpoint, session=aws_session())
        total = 0
        tracemalloc.start()
        try:
            with store.open("big.dcm") as blob:
                while chunk := blob.read(MIB):
                    assert chunk == _pattern(total, len(chunk))
                    total += len(chunk)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert total == size
    assert peak < 8 * MIB


def test_a_broken_stream_resumes_on_the_same_version() -> None:
    size = 8 * MIB
    with _PatternServer(size, cut_after=3 * MIB) as server:
        store = S3Store("bucket", endpoint_url=server.endpoint, session=aws_session())
        with store.open("k") as blob:
            assert blob.read() == _pattern(0, size)
    first, resumed = server.requests
    assert "Range" not in first
    assert resumed["Range"] == f"bytes={3 * MIB}-"
    assert resumed["If-Match"] == _PatternServer.ETAG


def test_a_stream_that_keeps_breaking_is_unavailable() -> None:
    with _PatternServer(MIB, cut_after=0, cuts=100) as server:
        store = S3Store("bucket", endpoint_url=server.endpoint, session=aws_session())
        with store.open("k") as blob, pytest.raises(StoreUnavailable, match="cannot read blob 'k'"):
            blob.read()
    assert len(server.requests) == 3  # the first GET and two resumptions, none with progress


def test_open_is_seekable(s3_endpoint: str, s3_bucket: str) -> None:
    store = _store(s3_endpoint, s3_bucket)
    data = _pattern(0, 3 * MIB)
    put(store, "k", data)
    with store.open("k") as blob:
        assert blob.read(10) == data[:10]
        assert blob.seek(2 * MIB) == 2 * MIB
        assert blob.read(5) == data[2 * MIB : 2 * MIB + 5]
        assert blob.tell() == 2 * MIB + 5
        blob.seek(-3, io.SEEK_END)
        assert blob.read() == data[-3:]
        blob.seek(0)
        assert blob.read(4) == data[:4]


def test_a_blob_replaced_while_read_is_not_mixed(s3_endpoint: str, s3_bucket: str) -> None:
    store = _store(s3_endpoint, s3_bucket)
    put(store, "k", _pattern(0, 3 * MIB))
    with store.open("k") as blob:
        blob.read(10)
        put(store, "k", b"the new version")
        blob.seek(2 * MIB)
        with pytest.raises(StoreUnavailable, match="replaced"):
            blob.read(5)


def test_local_path_is_a_temporary_copy(s3_endpoint: str, s3_bucket: str) -> None:
    store = _store(s3_endpoint, s3_bucket)
    put(store, "a/b.dcm", b"DICM")
    with store.local_path("a/b.dcm") as path:
        assert (path.suffix, path.read_bytes()) == (".dcm", b"DICM")
    assert not path.exists()


# -- keys under the prefix ----------------------------------------------------------------------


def test_keys_map_exactly_under_the_prefix(s3_endpoint: str, s3_bucket: str) -> None:
    raw = client(s3_endpoint)
    outside = ["some/prefix", "some/prefix2/x", "some/other", "top", "x"]
    inside_but_not_keys = [f"{PREFIX}/bad key", f"{PREFIX}/dir/", f"{PREFIX}/.openpacs-check~1"]
    for name in outside + inside_but_not_keys:
        raw.put_object(Bucket=s3_bucket, Key=name, Body=b"theirs")
    store = _store(s3_endpoint, s3_bucket, prefix="/some/prefix/")
    put(store, "a/b.dcm", b"ours")
    put(store, "x", b"ours")
    assert sorted(store.iterate()) == ["a/b.dcm", "x"]
    assert f"{PREFIX}/a/b.dcm" in _raw_keys(s3_endpoint, s3_bucket)
    store.delete("a/b.dcm")
    store.delete("x")
    assert list(store.iterate()) == []
    assert _raw_keys(s3_endpoint, s3_bucket) == sorted(outside + inside_but_not_keys)


def test_an_empty_prefix_is_the_bucket_root(s3_endpoint: str, s3_bucket: str) -> None:
    store = _store(s3_endpoint, s3_bucket, prefix="")
    put(store, "a/b", b"x")
    assert _raw_keys(s3_endpoint, s3_bucket) == ["a/b"]
    assert list(store.iterate()) == ["a/b"]


def test_iterate_follows_every_page(s3_endpoint: str, s3_bucket: str) -> None:
    keys = [f"k{i}" for i in range(7)]
    store = _store(s3_endpoint, s3_bucket)
    for key in keys:
        put(store, key, b"x")
    with FaultProxy(s3_endpoint) as proxy:
        assert list(_store(proxy.endpoint, s3_bucket, list_page_size=2).iterate()) == keys
    assert len(proxy.seen) == 4


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"prefix": "a b"}, "invalid S3 prefix", id="prefix"),
        pytest.param({"prefix": "p" * 512}, "S3 prefix is longer", id="long-prefix"),
        pytest.param({"sse": "aes256"}, "server-side encryption", id="sse"),
        pytest.param({"kms_key_id": "alias/k"}, "aws:kms", id="kms-without-sse"),
    ],
)
def test_bad_settings_are_rejected(options: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        S3Store("bucket", endpoint_url="http://127.0.0.1:9", session=aws_session(), **options)


# -- retries and failures -----------------------------------------------------------------------


def test_throttling_is_retried(s3_endpoint: str, s3_bucket: str) -> None:
    with FaultProxy(s3_endpoint, fail_first(2)) as proxy:
        put(_store(proxy.endpoint, s3_bucket), "k", b"retried")
    assert proxy.statuses() == [503, 503, 200]
    assert read_at(_store(s3_endpoint, s3_bucket), "k", 0, 100) == b"retried"


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda s: put(s, "k", b"x"), id="put"),
        pytest.param(lambda s: holds(s, "k"), id="exists"),
        pytest.param(lambda s: s.open("k"), id="open"),
    ],
)
def test_throttling_after_retries_is_unavailable(
    s3_endpoint: str, s3_bucket: str, call: Any
) -> None:
    with FaultProxy(s3_endpoint, fail_first(1000)) as proxy:
        store = _store(proxy.endpoint, s3_bucket, max_attempts=2)
        with pytest.raises(
            StoreUnavailable,
            match=r"throttling or unavailable \((SlowDown, )?HTTP 503\) after 2 tries",
        ):
            call(store)  # never NotFound nor False: the blob may well be there
    assert proxy.statuses() == [503, 503]


def test_write_denied_is_unavailable_and_consumes_the_source(
    s3_endpoint: str, s3_bucket: str, tmp_path: Path
) -> None:
    source = tmp_path / "incoming"
    source.write_bytes(b"x")
    with FaultProxy(s3_endpoint, deny("PUT")) as proxy:
        store = _store(proxy.endpoint, s3_bucket)
        with pytest.raises(StoreUnavailable, match=f"access to bucket {s3_bucket} denied"):
            store.put_file("k", source, consume=True)
    assert not source.exists()
    with pytest.raises(NotFound):
        _store(s3_endpoint, s3_bucket).size("k")


# -- start-up check -----------------------------------------------------------------------------


def test_check_leaves_nothing_behind(s3_endpoint: str, s3_bucket: str) -> None:
    _store(s3_endpoint, s3_bucket, sse="AES256").check()
    assert _raw_keys(s3_endpoint, s3_bucket) == []


def test_a_missing_aws_profile_is_a_clear_start_up_error(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "openpacs-no-such-profile")
    with pytest.raises(StoreUnavailable, match="openpacs-no-such-profile"):
        S3Store("openpacs-bucket", endpoint_url=s3_endpoint, region="us-east-1")


def test_check_missing_bucket(s3_endpoint: str) -> None:
    with pytest.raises(StoreUnavailable, match="bucket openpacs-missing does not exist"):
        _store(s3_endpoint, "openpacs-missing").check()


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        pytest.param(deny("HEAD"), "access to bucket {bucket} denied", id="bucket"),
        pytest.param(
            deny("PUT"),
            "cannot write a probe object under s3://{bucket}/some/prefix: access to bucket"
            " {bucket} denied",
            id="write",
        ),
        pytest.param(deny("GET"), "cannot read back a probe object", id="read"),
        pytest.param(deny("HEAD", ".openpacs-check~"), "grant s3:ListBucket", id="missing-403"),
    ],
)
def test_check_access_denied(s3_endpoint: str, s3_bucket: str, rule: Any, message: str) -> None:
    with (
        FaultProxy(s3_endpoint, rule) as proxy,
        pytest.raises(StoreUnavailable, match=message.format(bucket=s3_bucket)),
    ):
        _store(proxy.endpoint, s3_bucket).check()
    assert _raw_keys(s3_endpoint, s3_bucket) == []  # no probe left behind


def test_check_endpoint_unreachable() -> None:
    port = free_port()  # nothing listens there any more
    store = _store(f"http://{HOST}:{port}", "bucket", max_attempts=2, connect_timeout=1)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match=f"cannot reach S3 endpoint http://{HOST}:{port}"):
        store.check()
    assert time.monotonic() - started < 5


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """Accepts connections (the kernel does, from the backlog) and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        sock.listen(8)
        yield f"http://{HOST}:{sock.getsockname()[1]}"


def test_check_endpoint_silent(silent_endpoint: str) -> None:
    store = _store(silent_endpoint, "bucket", max_attempts=1, read_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="did not answer in time"):
        store.check()
    assert time.monotonic() - started < 5


# -- credentials --------------------------------------------------------------------------------


def _session(credentials: tuple[str, str] | None) -> boto3.session.Session:
    """A session isolated from the machine: these credentials, or none at all."""
    core = botocore.session.Session()
    core.set_config_variable("config_file", os.devnull)
    core.set_config_variable("credentials_file", os.devnull)
    if credentials is None:
        core.register_component("credential_provider", CredentialResolver([]))
    else:
        core.set_credentials(*credentials)
    return boto3.session.Session(botocore_session=core, region_name="us-east-1")


def test_missing_credentials_are_named(s3_endpoint: str, s3_bucket: str) -> None:
    store = S3Store(s3_bucket, endpoint_url=s3_endpoint, session=_session(None))
    with pytest.raises(StoreUnavailable, match="no AWS credentials found"):
        put(store, "k", b"x")


def test_credentials_never_reach_messages(s3_endpoint: str, s3_bucket: str) -> None:
    session = _session(("AKIDLEAKCHECK", "SECRETLEAKCHECK"))
    messages = []
    with FaultProxy(s3_endpoint, deny("PUT")) as proxy:
        for store in (
            S3Store(s3_bucket, endpoint_url=proxy.endpoint, session=session),
            S3Store(
                s3_bucket,
                endpoint_url=f"http://{HOST}:{free_port()}",
                session=session,
                max_attempts=1,
            ),
        ):
            with pytest.raises(StoreUnavailable) as raised:
                store.check()
            messages.append(str(raised.value))
    assert "denied" in messages[0]
    assert "cannot reach" in messages[1]
    assert not any("LEAKCHECK" in message for message in messages)
