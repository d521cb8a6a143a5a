"""A seekable reader over one version of an S3 object, resuming a broken stream where it broke."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from openpacs.errors import StoreUnavailable
from openpacs.storage.base import SeekableReader
from openpacs.storage.s3_client import CHUNK, MIB, StreamError, reason, skip

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

log = logging.getLogger(__name__)

_SKIP_LIMIT = MIB  # a forward seek up to this far reads on instead of opening a new GET
_READ_ATTEMPTS = 3  # tries per read: a broken stream resumes where it broke, twice

Get = Callable[[int, str | None], dict[str, Any]]
"""GET the object from an offset, If-Match an ETag when given; returns boto3's response."""


class ObjectReader(SeekableReader):
    """A seekable raw reader over one version of an object.

    Reads stream from one GET; a seek opens a new ranged GET lazily, and so does a stream that
    breaks midway. Those GETs carry If-Match with the first ETag, so a reader never mixes the
    bytes of two versions of a blob.
    """

    def __init__(self, get: Get, what: str) -> None:
        super().__init__()
        self._body: Any = None  # set first: close() runs even when the first GET fails
        self._get = get
        self._what = what
        response = get(0, None)
        self._body = response["Body"]
        self._size = int(response["ContentLength"])
        self._etag: str | None = response.get("ETag")
        self._pos = 0
        self._body_pos = 0

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        want = min(len(view), self._size - self._pos)
        if want <= 0:
            return 0
        attempt = 1
        while True:
            try:
                self._position()
                data = self._body.read(want)
                break
            except StreamError as exc:
                self._drop_body()
                if attempt == _READ_ATTEMPTS:
                    raise StoreUnavailable(f"cannot read {self._what}: {reason(exc)}") from exc
                attempt += 1
                log.warning("S3 read broke, resuming offset=%d error=%s", self._pos, reason(exc))
        if not data:  # botocore raises IncompleteReadError first; keep callers' loops finite
            raise StoreUnavailable(f"cannot read {self._what}: the object ended early")
        view[: len(data)] = data
        self._pos += len(data)
        self._body_pos = self._pos
        return len(data)

    def readall(self) -> bytes:
        parts = []
        while chunk := self.read(CHUNK):
            parts.append(chunk)
        return b"".join(parts)

    def close(self) -> None:
        self._drop_body()
        super().close()

    def _position(self) -> None:
        """Make the body stream stand at ``_pos``: read on a little, or open a new GET."""
        ahead = self._pos - self._body_pos
        if self._body is not None and 0 <= ahead <= _SKIP_LIMIT:
            skip(self._body, ahead)
            self._body_pos = self._pos
            return
        self._drop_body()
        response = self._get(self._pos, self._etag)
        self._body = response["Body"]
        if self._pos and "ContentRange" not in response:  # the server ignored the Range header
            skip(self._body, self._pos)
        self._body_pos = self._pos

    def _drop_body(self) -> None:
        if self._body is not None:
            body, self._body = self._body, None
            body.close()
