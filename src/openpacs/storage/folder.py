"""A blob store in a local folder: one file per key under a root directory.

Durability follows the POSIX recipe (fsync the file, rename it to its final name, fsync the
directory) because the archive acknowledges a C-STORE as soon as the blob and the index are
durable, and no half-written file may ever stand under its final name, not even after a power
loss. Temporary files live only in ``root/.staging``, on the same
filesystem as the blobs, so a rename is atomic and ``iterate`` never sees a partial blob.
Several processes may share one root: nothing here relies on in-process locks.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from openpacs.errors import NotFound, StoreUnavailable
from openpacs.grouping import GroupRunner
from openpacs.storage.base import ByteSource, validate_key

STAGING = ".staging"
_CHUNK = 1024 * 1024
_NAME_MAX = 255  # longest file name on ext4, XFS, btrfs and ZFS
# A concurrent delete prunes empty folders; a writer whose parent vanished between mkdir and
# rename tries again a few times before giving up.
_RENAME_ATTEMPTS = 3


class FolderStore:
    """BlobStore over a local folder; keys map to paths under ``root``."""

    def __init__(self, root: Path) -> None:
        """Create ``root`` and its staging folder; StoreUnavailable if that fails."""
        self._root = Path(root).absolute()
        self._staging = self._root / STAGING
        try:
            self._staging.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(
                f"cannot create blob store folder {self._staging}: {_why(exc)}"
            ) from exc
        self._staging_dev = os.stat(self._staging).st_dev
        # Writers that finish together (several associations) share their folder's fsync.
        self._folder_syncs: GroupRunner[Path, None] = GroupRunner(_fsync_dirs)

    def __repr__(self) -> str:
        return f"FolderStore(root={str(self._root)!r})"

    # -- writing ------------------------------------------------------------------------------

    def put_file(self, key: str, source: Path, *, consume: bool = False) -> None:
        path = self._path(key)
        source = Path(source)
        moved = False
        try:
            if consume:
                moved = self._move_file(key, source, path)
            if not moved:
                self._spool(key, path, lambda out: _copy_file(source, out))
        finally:
            if consume and not moved:
                # The caller handed the file over: it must not linger, even after a failure.
                with suppress(FileNotFoundError):
                    source.unlink()

    def put_stream(self, key: str, stream: ByteSource) -> int:
        return self._spool(key, self._path(key), lambda out: _copy_stream(stream, out))

    def _spool(self, key: str, path: Path, fill: Callable[[BinaryIO], int]) -> int:
        """Write through a temporary file in staging, then rename it over ``path``."""
        tmp: Path | None = None
        try:
            fd, name = tempfile.mkstemp(dir=self._staging, prefix="put-", suffix=".tmp")
            tmp = Path(name)
            with open(fd, "wb") as out:
                written = fill(out)
                out.flush()
                os.fsync(out.fileno())
            self._rename_into_place(tmp, path)
            tmp = None
            self._folder_syncs.run(path.parent)
            return written
        except OSError as exc:
            raise StoreUnavailable(f"cannot write blob {key!r}: {_why(exc)}") from exc
        finally:
            if tmp is not None:
                # Best effort while another error propagates; the archive's staging sweep
                # removes the rest (`openpacs.archive.staging`).
                with suppress(OSError):
                    tmp.unlink()

    def _move_file(self, key: str, source: Path, path: Path) -> bool:
        """Rename a handed-over file into place; False when only a copy can do it."""
        try:
            st = os.lstat(source)
            if not stat.S_ISREG(st.st_mode) or st.st_dev != self._staging_dev:
                return False  # a symlink, or another filesystem: copy the bytes instead
            fd = os.open(source, os.O_RDONLY)
            try:
                os.fsync(fd)  # data before name, or a crash could leave a partial blob
            finally:
                os.close(fd)
            self._rename_into_place(source, path)
        except OSError as exc:
            if exc.errno == errno.EXDEV:  # same device number but another mount
                return False
            raise StoreUnavailable(f"cannot write blob {key!r}: {_why(exc)}") from exc
        try:
            self._folder_syncs.run(path.parent)
        except OSError as exc:
            raise StoreUnavailable(f"cannot write blob {key!r}: {_why(exc)}") from exc
        return True

    def _rename_into_place(self, src: Path, path: Path) -> None:
        for attempt in range(_RENAME_ATTEMPTS):
            try:
                self._make_parents(path.parent)
                os.replace(src, path)
                return
            except FileNotFoundError:
                if attempt == _RENAME_ATTEMPTS - 1 or not src.exists():
                    raise

    def _make_parents(self, folder: Path) -> None:
        """Create missing folders, fsyncing each parent so the new entries survive a crash."""
        missing: list[Path] = []
        while folder != self._root and not folder.is_dir():
            missing.append(folder)
            folder = folder.parent
        for new in reversed(missing):
            with suppress(FileExistsError):  # another writer made it; fsync it all the same
                new.mkdir()
            _fsync_dir(new.parent)

    # -- reading ------------------------------------------------------------------------------

    def open(self, key: str) -> BinaryIO:
        path = self._path(key)
        try:
            return path.open("rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise NotFound(f"no blob under key {key!r}") from exc
        except OSError as exc:
            raise StoreUnavailable(f"cannot read blob {key!r}: {_why(exc)}") from exc

    @contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        path = self._path(key)
        if not path.is_file():
            raise NotFound(f"no blob under key {key!r}")
        yield path

    def file_path(self, key: str) -> Path | None:
        return self._path(key)

    def size(self, key: str) -> int:
        return self._stat(key).st_size

    def modified(self, key: str) -> float:
        return self._stat(key).st_mtime

    def _stat(self, key: str) -> os.stat_result:
        path = self._path(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise NotFound(f"no blob under key {key!r}") from exc
        except OSError as exc:
            raise StoreUnavailable(f"cannot read blob {key!r}: {_why(exc)}") from exc
        if not stat.S_ISREG(st.st_mode):
            raise NotFound(f"no blob under key {key!r}")
        return st

    # -- removing and listing -----------------------------------------------------------------

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return  # no blob under this key: deleting is idempotent
        except OSError as exc:
            raise StoreUnavailable(f"cannot delete blob {key!r}: {_why(exc)}") from exc
        # Prune folders left empty so deleted studies do not leave a skeleton behind. Stops at
        # the first folder that is not empty or that a concurrent writer is filling again.
        folder = path.parent
        while folder != self._root:
            try:
                folder.rmdir()
            except OSError:
                break
            folder = folder.parent

    def iterate(self) -> Iterator[str]:
        top = os.fspath(self._root)
        for dirpath, dirnames, filenames in os.walk(top, onerror=_walk_error):
            rel = os.path.relpath(dirpath, top).replace(os.sep, "/")
            prefix = "" if rel == "." else rel + "/"
            # Skip staging and anything that cannot hold keys (lost+found, check probes).
            dirnames[:] = sorted(
                d for d in dirnames if _is_key(prefix + d) and prefix + d != STAGING
            )
            for name in sorted(filenames):
                if _is_key(prefix + name):
                    yield prefix + name

    # -- operations ---------------------------------------------------------------------------

    def staging_dir(self) -> Path:
        return self._staging

    def check(self) -> None:
        if not self._root.is_dir():
            raise StoreUnavailable(f"blob store root {self._root} is not a folder")
        if not self._staging.is_dir():
            raise StoreUnavailable(f"blob store staging folder {self._staging} is missing")
        try:
            if os.stat(self._staging).st_dev != os.stat(self._root).st_dev:
                raise StoreUnavailable(
                    f"blob store staging folder {self._staging} is on another filesystem than"
                    f" {self._root}: renames into place could not be atomic"
                )
            # Probe with real writes: as root, os.access() says yes to read-only folders.
            os.rmdir(tempfile.mkdtemp(prefix=".check~", dir=self._root))
            fd, name = tempfile.mkstemp(dir=self._staging, prefix="check-", suffix=".tmp")
            try:
                os.write(fd, b"openpacs")
                os.fsync(fd)
            finally:
                os.close(fd)
                os.unlink(name)
        except OSError as exc:
            raise StoreUnavailable(
                f"blob store folder {self._root} is not writable: {_why(exc)}"
            ) from exc

    def close(self) -> None:
        """Nothing to release."""

    def _path(self, key: str) -> Path:
        """Map a key to its file, refusing anything that could leave the root."""
        validate_key(key)
        parts = key.split("/")
        if parts[0].casefold() == STAGING:
            raise ValueError(f"invalid blob key {key!r}: {STAGING} is reserved for temporary files")
        if any(len(part) > _NAME_MAX for part in parts):
            raise ValueError(f"invalid blob key {key!r}: a part is longer than {_NAME_MAX}")
        return self._root.joinpath(*parts)


def _copy_file(source: Path, out: BinaryIO) -> int:
    with source.open("rb") as src:
        return _copy_stream(src, out)


def _copy_stream(stream: ByteSource, out: BinaryIO) -> int:
    written = 0
    while chunk := stream.read(_CHUNK):
        out.write(chunk)
        written += len(chunk)
    return written


def _fsync_dir(folder: Path) -> None:
    """Persist a folder's entries: a rename is durable only once its folder is fsynced."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dirs(folders: Sequence[Path]) -> list[BaseException | None]:
    """Persist the entries of each folder once, however many renames it took: a folder's
    fsync covers every rename done in it before the fsync began."""
    outcomes: dict[Path, BaseException | None] = {}
    for folder in folders:
        if folder not in outcomes:
            try:
                _fsync_dir(folder)
                outcomes[folder] = None
            except OSError as exc:
                outcomes[folder] = exc
    return [outcomes[folder] for folder in folders]


def _is_key(candidate: str) -> bool:
    try:
        validate_key(candidate)
    except ValueError:
        return False
    return True


def _walk_error(exc: OSError) -> None:
    """Fail loudly on an unreadable folder: verify must not silently miss blobs."""
    if isinstance(exc, FileNotFoundError):
        return  # pruned by a concurrent delete while walking
    raise StoreUnavailable(f"cannot list blob store folder {exc.filename}: {_why(exc)}") from exc


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__
