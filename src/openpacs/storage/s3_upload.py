"""Writing an S3 object: one PUT up to the multipart threshold, else boto3's managed multipart
upload (which aborts the upload when it fails), server-side encryption with either.

A PUT, single or multipart, is atomic (readers see the old object or the whole new one) and S3
answers it only once the object is durable. Errors are boto3's and the stream's own: the store
translates them.
"""

from __future__ import annotations

import io
from typing import Any

from boto3.s3.transfer import TransferConfig

from openpacs.storage.base import ByteSource
from openpacs.storage.s3_client import CHUNK


class Uploader:
    """Puts objects into one bucket with the site's encryption and multipart settings."""

    def __init__(
        self,
        client: Any,
        bucket: str,
        *,
        extra: dict[str, str],
        threshold: int,
        chunksize: int,
        max_concurrency: int,
    ) -> None:
        self._client = client
        self._bucket = bucket
        self._extra = extra
        self._threshold = threshold
        self._transfer = TransferConfig(
            multipart_threshold=threshold,
            multipart_chunksize=chunksize,
            max_concurrency=max_concurrency,
            use_threads=True,
            preferred_transfer_client="classic",  # the CRT client would not use our client
        )

    def put(self, name: str, body: Any, size: int | None) -> None:
        """One PUT below the threshold, else a managed (multipart) transfer."""
        if size is not None and size < self._threshold:
            self._client.put_object(Bucket=self._bucket, Key=name, Body=body, **self._extra)
        else:
            self._client.upload_fileobj(
                body, self._bucket, name, ExtraArgs=self._extra, Config=self._transfer
            )

    def put_stream(self, name: str, stream: ByteSource) -> int:
        """Up to the multipart threshold one PUT, else a multipart upload read from ``stream``
        in the transfer manager's thread (never two threads at once); returns the bytes read."""
        source = Source(stream)
        head = source.read(self._threshold)
        if len(head) < self._threshold:
            self.put(name, io.BytesIO(head), len(head))
        else:
            source.unread(head)
            self.put(name, source, None)
        return source.count


class Source:
    """Wraps a caller's stream: full reads (S3 parts must be full size), a count, a pushback.

    Exposes only ``read``, so the transfer manager treats it as unseekable and never trusts a
    stream's own idea of its size.
    """

    def __init__(self, stream: ByteSource) -> None:
        self._stream = stream
        self._pending = b""
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        parts = []
        if self._pending:
            take = len(self._pending) if size < 0 else min(size, len(self._pending))
            parts.append(self._pending[:take])
            self._pending = self._pending[take:]
            size = size if size < 0 else size - take
        while size != 0:
            chunk = self._stream.read(CHUNK if size < 0 else size)
            if chunk is None:  # not the end: storing what came so far would truncate the blob
                raise BlockingIOError("a non-blocking stream had no data ready")
            if not chunk:
                break
            self.count += len(chunk)
            parts.append(chunk)
            size = size if size < 0 else size - len(chunk)
        return b"".join(parts)

    def unread(self, data: bytes) -> None:
        self._pending = data + self._pending
