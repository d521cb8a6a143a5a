"""The BlobStore contract, run over every backend.

Written against the protocol only, so a new backend joins by adding one factory to
``_BACKENDS``; anything backend-specific belongs in that backend's unit tests.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from openpacs.errors import NotFound, StoreUnavailable
from openpacs.storage.base import BlobStore
from openpacs.storage.folder import FolderStore
from openpacs.storage.s3 import S3Store
from tests.support import postgres as pg_support
from tests.support import s3 as s3_support
from tests.support.blobs import holds, put, read_at
from tests.support.s3 import aws_session

# Fixtures shared with other S3 test modules (assigned, so that pytest finds them here).
s3_endpoint = s3_support.s3_endpoint
s3_bucket = s3_support.s3_bucket


def _folder(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    return FolderStore(tmp_path / "blobs")


def _s3(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    """moto's S3 over HTTP, a bucket per test, keys under a prefix, AES256 on every put."""
    return S3Store(
        request.getfixturevalue("s3_bucket"),
        prefix="some/prefix",
        endpoint_url=request.getfixturevalue("s3_endpoint"),
        region="us-east-1",
        sse="AES256",
        session=aws_session(),
    )


def _postgresql(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    """The session's PostgreSQL database, emptied; 64 KiB chunks so that blobs span many."""
    store = pg_support.blob_store(request.getfixturevalue("postgres_url"), chunk_size=64 * 1024)
    request.addfinalizer(store.close)
    return store


_BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], BlobStore]] = {
    "folder": _folder,
    "s3": _s3,
    "postgresql": _postgresql,
}


@pytest.fixture(params=sorted(_BACKENDS))
def blob_store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    factory = _BACKENDS[request.param]
    return factory(request, tmp_path)


class _Boom(Exception):
    """A caller-side failure, e.g. a client hanging up mid-upload."""


class _FailingStream(io.BytesIO):
    """Yields some bytes, then raises: an upload that breaks midway."""

    def __init__(self, good: bytes, error: BaseException) -> None:
        super().__init__()
        self._good = good
        self._error = error

    def read(self, size: int | None = -1) -> bytes:
        if self._good:
            chunk, self._good = self._good, b""
            return chunk
        raise self._error


def _read(store: BlobStore, key: str) -> bytes:
    with store.open(key) as blob:
        return blob.read()


def _spool_source(store: BlobStore, tmp_path: Path, data: bytes) -> Path:
    folder = store.staging_dir() or tmp_path
    source = folder / "incoming.part"
    source.write_bytes(data)
    return source


def _no_staging_leftovers(store: BlobStore) -> bool:
    staging = store.staging_dir()
    return staging is None or not any(staging.iterdir())


# -- round trips --------------------------------------------------------------------------------


def test_put_stream_round_trip_returns_length(blob_store: BlobStore) -> None:
    data = bytes(range(256)) * 10_000  # spans several copy chunks
    assert blob_store.put_stream("s/k", io.BytesIO(data)) == len(data)
    assert _read(blob_store, "s/k") == data


def test_put_empty_blob(blob_store: BlobStore) -> None:
    assert blob_store.put_stream("empty", io.BytesIO(b"")) == 0
    assert blob_store.size("empty") == 0
    assert _read(blob_store, "empty") == b""


def test_put_file_keeps_source_by_default(blob_store: BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "source.dcm"
    source.write_bytes(b"file bytes")
    blob_store.put_file("f/k", source)
    assert _read(blob_store, "f/k") == b"file bytes"
    assert source.read_bytes() == b"file bytes"


def test_put_file_consume_from_staging(blob_store: BlobStore, tmp_path: Path) -> None:
    source = _spool_source(blob_store, tmp_path, b"spooled")
    blob_store.put_file("c/k", source, consume=True)
    assert _read(blob_store, "c/k") == b"spooled"
    assert not source.exists()
    assert _no_staging_leftovers(blob_store)


def test_put_file_consume_from_elsewhere(blob_store: BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "elsewhere.dcm"
    source.write_bytes(b"handed over")
    blob_store.put_file("c/k", source, consume=True)
    assert _read(blob_store, "c/k") == b"handed over"
    assert not source.exists()


def test_put_file_missing_source_stores_nothing(blob_store: BlobStore, tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable):
        blob_store.put_file("k", tmp_path / "absent")
    assert not holds(blob_store, "k")
    assert _no_staging_leftovers(blob_store)


def test_local_path_holds_the_bytes(blob_store: BlobStore) -> None:
    put(blob_store, "l/k", b"on disk")
    with blob_store.local_path("l/k") as path:
        assert path.read_bytes() == b"on disk"


# -- ranges, sizes, existence -------------------------------------------------------------------

_DATA = b"0123456789abcdef"


@pytest.mark.parametrize(
    ("start", "length", "expected"),
    [
        pytest.param(0, 4, b"0123", id="start"),
        pytest.param(5, 3, b"567", id="middle"),
        pytest.param(12, 4, b"cdef", id="end"),
        pytest.param(14, 10, b"ef", id="across-end"),
        pytest.param(16, 4, b"", id="at-end"),
        pytest.param(100, 4, b"", id="past-end"),
        pytest.param(3, 0, b"", id="empty"),
    ],
)
def test_open_reads_from_any_offset(
    blob_store: BlobStore, start: int, length: int, expected: bytes
) -> None:
    put(blob_store, "r", _DATA)
    assert read_at(blob_store, "r", start, length) == expected


def test_modified_is_when_the_blob_was_written(blob_store: BlobStore) -> None:
    before = time.time()
    put(blob_store, "dated/blob", b"x")
    written = blob_store.modified("dated/blob")
    # S3 keeps whole seconds; clocks of a server may differ a little from ours.
    assert before - 2 <= written <= time.time() + 2
    with pytest.raises(NotFound):
        blob_store.modified("dated/absent")


def test_size(blob_store: BlobStore) -> None:
    with pytest.raises(NotFound):
        blob_store.size("a/b")
    put(blob_store, "a/b", _DATA)
    assert blob_store.size("a/b") == len(_DATA)


def test_a_key_prefix_is_not_a_key(blob_store: BlobStore) -> None:
    put(blob_store, "study/series/instance", b"x")
    for prefix in ("study", "study/series"):
        with pytest.raises(NotFound):
            blob_store.size(prefix)


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda s: s.open("missing/k"), id="open"),
        pytest.param(lambda s: s.size("missing/k"), id="size"),
        pytest.param(lambda s: s.local_path("missing/k").__enter__(), id="local_path"),
    ],
)
def test_missing_key_is_not_found(
    blob_store: BlobStore, call: Callable[[BlobStore], object]
) -> None:
    with pytest.raises(NotFound):
        call(blob_store)


# -- overwrite, delete, iterate -----------------------------------------------------------------


def test_overwrite_replaces_the_whole_blob(blob_store: BlobStore) -> None:
    put(blob_store, "o", b"a much longer first version")
    put(blob_store, "o", b"short")
    assert _read(blob_store, "o") == b"short"
    assert blob_store.size("o") == len(b"short")
    assert list(blob_store.iterate()) == ["o"]


def test_delete_is_idempotent(blob_store: BlobStore) -> None:
    put(blob_store, "d/k", b"x")
    blob_store.delete("d/k")
    assert not holds(blob_store, "d/k")
    blob_store.delete("d/k")
    blob_store.delete("never/stored")
    with pytest.raises(NotFound):
        blob_store.open("d/k")


def test_delete_leaves_other_keys(blob_store: BlobStore) -> None:
    put(blob_store, "d/1", b"1")
    put(blob_store, "d/2", b"2")
    blob_store.delete("d/1")
    assert list(blob_store.iterate()) == ["d/2"]


def test_iterate_lists_exactly_the_stored_keys(blob_store: BlobStore, tmp_path: Path) -> None:
    assert list(blob_store.iterate()) == []
    keys = {"top", "1.2/3.4/5.dcm", "1.2/3.4/6.dcm", "1.2/7/8", "x-y_z.bin"}
    for key in keys:
        put(blob_store, key, key.encode())
    blob_store.put_file("from-file", _spool_source(blob_store, tmp_path, b"f"), consume=True)
    put(blob_store, "gone", b"g")
    blob_store.delete("gone")
    listed = list(blob_store.iterate())
    assert sorted(listed) == sorted(keys | {"from-file"})
    assert len(listed) == len(set(listed))


# -- failures -----------------------------------------------------------------------------------


def test_stream_failing_midway_stores_nothing(blob_store: BlobStore) -> None:
    with pytest.raises(_Boom):
        blob_store.put_stream("f/k", _FailingStream(b"partial", _Boom()))
    assert not holds(blob_store, "f/k")
    assert list(blob_store.iterate()) == []
    assert _no_staging_leftovers(blob_store)


def test_stream_failing_midway_keeps_the_previous_blob(blob_store: BlobStore) -> None:
    put(blob_store, "f/k", b"previous")
    with pytest.raises(_Boom):
        blob_store.put_stream("f/k", _FailingStream(b"partial", _Boom()))
    assert _read(blob_store, "f/k") == b"previous"
    assert _no_staging_leftovers(blob_store)


def test_io_error_while_writing_is_store_unavailable(blob_store: BlobStore) -> None:
    stream = _FailingStream(b"partial", OSError(5, "Input/output error"))
    with pytest.raises(StoreUnavailable):
        blob_store.put_stream("f/k", stream)
    assert not holds(blob_store, "f/k")
    assert _no_staging_leftovers(blob_store)


_BAD_KEYS = [
    pytest.param("../x", id="parent"),
    pytest.param("a/../../x", id="parent-inside"),
    pytest.param("/abs", id="absolute"),
    pytest.param("a//b", id="empty-part"),
    pytest.param("a/./b", id="dot"),
    pytest.param(".", id="dot-only"),
    pytest.param("a/", id="trailing-slash"),
    pytest.param("", id="empty"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("a\\..\\b", id="backslash"),
    pytest.param("sp ace", id="space"),
    pytest.param("caf\u00e9", id="non-ascii"),
    pytest.param("k" * 513, id="too-long"),
]

_KEYED_CALLS = [
    pytest.param(lambda s, k: s.put_stream(k, io.BytesIO(b"x")), id="put_stream"),
    pytest.param(lambda s, k: s.open(k), id="open"),
    pytest.param(lambda s, k: s.local_path(k).__enter__(), id="local_path"),
    pytest.param(lambda s, k: s.size(k), id="size"),
    pytest.param(lambda s, k: s.modified(k), id="modified"),
    pytest.param(lambda s, k: s.delete(k), id="delete"),
]


@pytest.mark.parametrize("key", _BAD_KEYS)
@pytest.mark.parametrize("call", _KEYED_CALLS)
def test_invalid_keys_are_rejected(
    blob_store: BlobStore, key: str, call: Callable[[BlobStore, str], object]
) -> None:
    with pytest.raises(ValueError, match="key"):
        call(blob_store, key)
    assert list(blob_store.iterate()) == []


@pytest.mark.parametrize("key", _BAD_KEYS)
def test_put_file_rejects_invalid_key_and_keeps_source(
    blob_store: BlobStore, tmp_path: Path, key: str
) -> None:
    source = tmp_path / "source"
    source.write_bytes(b"x")
    with pytest.raises(ValueError, match="key"):
        blob_store.put_file(key, source, consume=True)
    assert source.read_bytes() == b"x"  # rejected before the hand-over
    assert list(blob_store.iterate()) == []


def test_longest_valid_key_is_accepted(blob_store: BlobStore) -> None:
    key = "/".join(["k" * 127] * 4)  # 4 * 127 + 3 slashes = 511 characters
    put(blob_store, key, b"x")
    assert list(blob_store.iterate()) == [key]


def test_check_passes_on_a_usable_store(blob_store: BlobStore) -> None:
    blob_store.check()
    assert list(blob_store.iterate()) == []
    assert _no_staging_leftovers(blob_store)
