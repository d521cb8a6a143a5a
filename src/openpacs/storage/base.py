"""The blob store contract: opaque keys to bytes, nothing about DICOM.

The archive writes a blob before it commits the index and acknowledges (decision 3 in the
architecture), so every backend must make a put atomic and durable: readers see either no blob
or the whole blob under a key, never a partial one. Errors are the archive's own:
``openpacs.errors.NotFound`` for a missing key and ``openpacs.errors.StoreUnavailable`` when the
store cannot make bytes durable, so callers never handle backend-specific exceptions.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import BinaryIO, Protocol

MAX_KEY_LENGTH = 512

# ASCII only on purpose: a key must map to the same file name and object name on every
# backend and filesystem, whatever the locale.
_KEY_PART = re.compile(r"[A-Za-z0-9._-]+")


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe blob key, else raise ValueError.

    Keys are relative, ``/``-separated, each part ``[A-Za-z0-9._-]+`` and never ``.`` or ``..``,
    at most 512 characters. Checked by every backend so that a key can never escape a folder
    store's root or mean different objects on different backends.
    """
    if not isinstance(key, str):
        raise ValueError(f"blob key must be a string, not {type(key).__name__}")
    if not key:
        raise ValueError("blob key must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"blob key is longer than {MAX_KEY_LENGTH} characters")
    for part in key.split("/"):
        if part in (".", "..") or not _KEY_PART.fullmatch(part):
            raise ValueError(
                f"invalid blob key {key!r}: parts are [A-Za-z0-9._-]+ separated by single '/',"
                " never '.' or '..', and the key is relative"
            )
    return key


class ByteSource(Protocol):
    """What ``put_stream`` reads from: a binary file, or any reader with ``read(size)``."""

    def read(self, size: int = -1, /) -> bytes: ...


def sha256_hex(stream: ByteSource, chunk: int = 1 << 20) -> str:
    """The SHA-256 of what ``stream`` yields to its end, read a chunk at a time."""
    digest = hashlib.sha256()
    while data := stream.read(chunk):
        digest.update(data)
    return digest.hexdigest()


class BlobStore(Protocol):
    """Where the archive keeps received bytes, by opaque key.

    Every method validates its key with :func:`validate_key` (ValueError when invalid).
    """

    def put_file(self, key: str, source: Path, *, consume: bool = False) -> None:
        """Make the bytes of ``source`` durable under ``key``, atomically.

        With ``consume=True`` the caller hands the file over: the store may rename it into
        place (cheap when it lies in :meth:`staging_dir`), and ``source`` no longer exists
        when the call returns or raises. Without it ``source`` is left untouched.
        """
        ...

    def put_stream(self, key: str, stream: ByteSource) -> int:
        """Copy ``stream`` to its end under ``key``, atomically; return the bytes written.

        If the stream raises, nothing is stored; an OSError becomes StoreUnavailable and any
        other exception propagates unchanged.
        """
        ...

    def open(self, key: str) -> BinaryIO:
        """Open the blob for reading; the caller closes it. NotFound if missing."""
        ...

    def local_path(self, key: str) -> AbstractContextManager[Path]:
        """Yield a local file holding the blob for the duration of the with block.

        For libraries that need a path rather than a file object. A folder store yields the
        real file (do not modify it); other backends may download to a temporary file.
        NotFound if missing.
        """
        ...

    def file_path(self, key: str) -> Path | None:
        """The blob's own file when the backend keeps blobs as local files, else None.

        Lets a sender stream the stored bytes as they are (no download, no decoding); the
        file may vanish if the blob is deleted meanwhile.
        """
        ...

    def size(self, key: str) -> int:
        """Return the blob's length in bytes. NotFound if missing."""
        ...

    def modified(self, key: str) -> float:
        """When the blob was last written (seconds since the epoch). NotFound if missing.

        Verification uses it to leave alone blobs younger than a store in flight."""
        ...

    def delete(self, key: str) -> None:
        """Remove the blob; a missing key is not an error, so retries are safe."""
        ...

    def iterate(self) -> Iterator[str]:
        """Yield every stored key, never a temporary file; for verify and reconciliation."""
        ...

    def staging_dir(self) -> Path | None:
        """Return a folder where callers may spool incoming data, or None.

        A file created there (with a unique name) can be handed to
        ``put_file(..., consume=True)`` as a cheap rename. Backends without one return None.
        """
        ...

    def check(self) -> None:
        """Raise StoreUnavailable with a clear reason if the store is unusable (start-up)."""
        ...

    def close(self) -> None:
        """Release what the store holds open (connections); it is not used afterwards."""
        ...


class SeekableReader(io.RawIOBase):
    """A read-only, seekable raw stream over `_size` bytes at position `_pos`: the stores'
    readers add `readinto`."""

    _pos: int
    _size: int

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if self.closed:
            raise ValueError("I/O operation on closed file")
        bases = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}
        if whence not in bases:
            raise ValueError(f"invalid whence ({whence})")
        if bases[whence] + offset < 0:
            raise ValueError(f"negative seek position {bases[whence] + offset}")
        self._pos = bases[whence] + offset
        return self._pos
