"""FolderStore specifics: layout on disk, durability, concurrency and failure paths.

The backend-agnostic behaviour is in tests/integration/test_blob_store_contract.py.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import tempfile
import threading
import time
from pathlib import Path

import pytest

from openpacs.errors import StoreUnavailable
from openpacs.storage.base import BlobStore
from openpacs.storage.folder import STAGING, FolderStore
from tests.support.blobs import holds, put

_TIMEOUT = 10.0


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "blobs"


@pytest.fixture
def store(root: Path) -> FolderStore:
    return FolderStore(root)


def _staged(store: FolderStore) -> list[str]:
    return sorted(p.name for p in store.staging_dir().iterdir())


def _read(store: FolderStore, key: str) -> bytes:
    with store.open(key) as blob:
        return blob.read()


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_construction_creates_root_and_staging(root: Path) -> None:
    typed: BlobStore = FolderStore(root / "nested")  # mypy checks the protocol here
    assert typed.staging_dir() == root / "nested" / STAGING
    assert (root / "nested" / STAGING).is_dir()


def test_construction_on_a_regular_file_is_store_unavailable(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_bytes(b"")
    with pytest.raises(StoreUnavailable, match="cannot create"):
        FolderStore(not_a_folder)


def test_keys_map_to_files_under_root(store: FolderStore, root: Path) -> None:
    put(store, "1.2.840/1.3/1.4.dcm", b"x")
    assert (root / "1.2.840" / "1.3" / "1.4.dcm").read_bytes() == b"x"
    with store.local_path("1.2.840/1.3/1.4.dcm") as path:
        assert path == root / "1.2.840" / "1.3" / "1.4.dcm"


@pytest.mark.parametrize(
    "key", ["../escape", "a/../../escape", "/tmp/escape", "..", "a/..", "..\\escape"]
)
def test_path_traversal_is_impossible(store: FolderStore, tmp_path: Path, key: str) -> None:
    before = _tree(tmp_path)
    with pytest.raises(ValueError, match="key"):
        put(store, key, b"evil")
    with pytest.raises(ValueError, match="key"):
        store.delete(key)
    assert _tree(tmp_path) == before


@pytest.mark.parametrize("key", [".staging/x", ".STAGING/x", ".staging"])
def test_staging_is_not_a_key(store: FolderStore, key: str) -> None:
    with pytest.raises(ValueError, match="reserved"):
        put(store, key, b"x")


def test_a_part_longer_than_a_file_name_is_rejected(store: FolderStore) -> None:
    with pytest.raises(ValueError, match="longer"):
        put(store, "k" * 256, b"x")


# -- atomicity and durability -------------------------------------------------------------------


class _BlockingStream(io.BytesIO):
    """Hands out one chunk, then waits for the test before ending the stream."""

    def __init__(self, first: bytes, last: bytes) -> None:
        super().__init__()
        self._chunks = [first, last]
        self.midway = threading.Event()
        self.release = threading.Event()

    def read(self, size: int | None = -1) -> bytes:
        if len(self._chunks) == 1:
            self.midway.set()
            if not self.release.wait(_TIMEOUT):
                raise TimeoutError("test never released the stream")
        return self._chunks.pop(0) if self._chunks else b""


def test_a_blob_is_invisible_until_complete(store: FolderStore, root: Path) -> None:
    stream = _BlockingStream(b"first half ", b"second half")
    results: list[int] = []
    writer = threading.Thread(target=lambda: results.append(store.put_stream("s/k", stream)))
    writer.start()
    try:
        assert stream.midway.wait(_TIMEOUT)
        assert not holds(store, "s/k")
        assert list(store.iterate()) == []
        assert not (root / "s" / "k").exists()
        assert len(_staged(store)) == 1  # the bytes so far live only under a temporary name
    finally:
        stream.release.set()
        writer.join(_TIMEOUT)
    assert results == [len(b"first half second half")]
    assert _read(store, "s/k") == b"first half second half"
    assert _staged(store) == []


def test_concurrent_readers_see_whole_versions(store: FolderStore) -> None:
    versions = (b"A" * 200_000, b"B" * 150_000)
    put(store, "k", versions[0])
    done = threading.Event()

    def overwrite() -> None:
        for i in range(40):
            put(store, "k", versions[i % 2])
        done.set()

    writer = threading.Thread(target=overwrite)
    writer.start()
    seen: set[bytes] = set()
    deadline = time.monotonic() + _TIMEOUT
    while not done.is_set() and time.monotonic() < deadline:
        with store.open("k") as blob:
            seen.add(blob.read())
    writer.join(_TIMEOUT)
    assert done.is_set()
    assert seen <= set(versions)


def test_an_open_reader_keeps_the_version_it_opened(store: FolderStore) -> None:
    put(store, "k", b"old version")
    with store.open("k") as blob:
        put(store, "k", b"new version")
        store.delete("k")
        assert blob.read() == b"old version"


def test_writes_fsync_file_folder_and_new_folders(
    store: FolderStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.fstat(fd).st_ino)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    put(store, "n1/n2/k", b"durable")
    inodes = {p: os.stat(p).st_ino for p in (root, root / "n1", root / "n1/n2", root / "n1/n2/k")}
    assert set(inodes.values()) <= set(synced)
    assert synced.index(inodes[root / "n1/n2/k"]) < synced.index(inodes[root / "n1/n2"])


# -- consuming a handed-over file ---------------------------------------------------------------


def test_consume_from_staging_is_a_rename(store: FolderStore) -> None:
    source = store.staging_dir() / "incoming.part"
    source.write_bytes(b"spooled")
    inode = source.stat().st_ino
    store.put_file("a/b", source, consume=True)
    with store.local_path("a/b") as path:
        assert path.stat().st_ino == inode
    assert not source.exists()


def test_consume_across_filesystems_copies(
    store: FolderStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "elsewhere"
    source.write_bytes(b"far away")
    real_replace = os.replace

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(src) == source:
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    store.put_file("k", source, consume=True)
    assert _read(store, "k") == b"far away"
    assert not source.exists()
    assert _staged(store) == []


def test_consume_from_another_filesystem_copies(store: FolderStore, root: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(root).st_dev:
        pytest.skip("no second filesystem at /dev/shm")
    fd, name = tempfile.mkstemp(dir=shm, prefix="openpacs-test-")
    with os.fdopen(fd, "wb") as out:
        out.write(b"in memory")
    store.put_file("k", Path(name), consume=True)
    assert not Path(name).exists()
    assert _read(store, "k") == b"in memory"
    assert _staged(store) == []


def test_consume_of_a_symlink_stores_a_regular_file(store: FolderStore, tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_bytes(b"linked")
    link = store.staging_dir() / "link"
    link.symlink_to(target)
    store.put_file("k", link, consume=True)
    with store.local_path("k") as path:
        assert stat.S_ISREG(path.lstat().st_mode)
        assert path.read_bytes() == b"linked"
    assert not link.is_symlink()
    assert target.read_bytes() == b"linked"


def test_failed_consume_removes_the_source(store: FolderStore) -> None:
    put(store, "a", b"a blob, so a/b cannot be a file")
    source = store.staging_dir() / "incoming.part"
    source.write_bytes(b"x")
    with pytest.raises(StoreUnavailable, match="'a/b'"):
        store.put_file("a/b", source, consume=True)
    assert _staged(store) == []
    assert list(store.iterate()) == ["a"]


# -- failures while writing ---------------------------------------------------------------------


def test_enospc_is_store_unavailable(store: FolderStore) -> None:
    class Full(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(StoreUnavailable, match="No space") as caught:
        store.put_stream("k", Full())
    assert isinstance(caught.value.__cause__, OSError)
    assert caught.value.__cause__.errno == errno.ENOSPC
    assert not holds(store, "k")
    assert _staged(store) == []


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_write_failure_leaves_no_temporary_file(
    store: FolderStore, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    def fail(*args: object) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(os, failing, fail)
    with pytest.raises(StoreUnavailable, match="Permission denied"):
        put(store, "a/k", b"x")
    monkeypatch.undo()
    assert not holds(store, "a/k")
    assert _staged(store) == []


def test_write_survives_a_concurrent_prune_of_its_folder(
    store: FolderStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_replace = os.replace
    calls: list[str] = []

    def replace_after_prune(src: str, dst: str) -> None:
        if not calls:  # a concurrent delete removed the empty folder just before the rename
            os.rmdir(Path(dst).parent)
        calls.append(dst)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_after_prune)
    put(store, "p/k", b"x")
    assert len(calls) == 2
    assert (root / "p" / "k").read_bytes() == b"x"


# -- delete, iterate, sweep ---------------------------------------------------------------------


def test_delete_prunes_empty_folders_only(store: FolderStore, root: Path) -> None:
    put(store, "s/1/a", b"a")
    put(store, "s/2/b", b"b")
    store.delete("s/1/a")
    assert not (root / "s" / "1").exists()
    assert (root / "s" / "2").is_dir()
    store.delete("s/2/b")
    assert sorted(p.name for p in root.iterdir()) == [STAGING]


def test_delete_of_a_key_prefix_does_nothing(store: FolderStore) -> None:
    put(store, "s/1/a", b"a")
    store.delete("s/1")
    assert list(store.iterate()) == ["s/1/a"]


def test_iterate_skips_staging_and_foreign_files(store: FolderStore, root: Path) -> None:
    put(store, "s/k", b"k")
    (store.staging_dir() / "put-leftover.tmp").write_bytes(b"partial")
    (root / "lost+found").mkdir()
    (root / "lost+found" / "k").write_bytes(b"fsck")
    (root / "s" / "not a key").write_bytes(b"?")
    (root / ".check~probe").mkdir()
    assert list(store.iterate()) == ["s/k"]


# -- start-up check -----------------------------------------------------------------------------


def test_check_passes_and_leaves_nothing(store: FolderStore, root: Path) -> None:
    store.check()
    assert sorted(p.name for p in root.iterdir()) == [STAGING]
    assert _staged(store) == []


def test_check_fails_without_staging(store: FolderStore, root: Path) -> None:
    (root / STAGING).rmdir()
    with pytest.raises(StoreUnavailable, match="missing"):
        store.check()


def test_check_fails_on_a_root_that_is_a_regular_file(store: FolderStore, root: Path) -> None:
    """Works for every user, root included, unlike a read-only mode."""
    (root / STAGING).rmdir()
    root.rmdir()
    root.write_bytes(b"not a folder")
    with pytest.raises(StoreUnavailable, match="not a folder"):
        store.check()
    with pytest.raises(StoreUnavailable):
        put(store, "k", b"x")
