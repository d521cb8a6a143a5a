"""BlobStore over Amazon S3 and S3-compatible servers (MinIO, Ceph), through boto3.

One object per key under ``prefix/``. A PUT, single or multipart, is atomic (readers see the old
object or the whole new one) and S3 answers it only once the object is durable, which is what
"durable before acknowledged" (decision 3 of the architecture) needs. Credentials come from the
standard AWS chain (environment, shared files, instance or task role) and never reach a message.
The client and error translation live in `s3_client`, writing in `s3_upload`, reading in
`s3_reader`.

The bucket policy must grant s3:ListBucket (HEAD bucket, ``iterate``, and so that a missing key
answers 404 rather than 403), s3:GetObject, s3:PutObject, s3:DeleteObject and
s3:AbortMultipartUpload; with aws:kms also kms:GenerateDataKey and kms:Decrypt on the key.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from openpacs.errors import OpenPacsError, StoreUnavailable
from openpacs.storage.base import MAX_KEY_LENGTH, ByteSource, validate_key
from openpacs.storage.s3_client import (
    CHUNK,
    MIB,
    MISSING,
    StreamError,
    code,
    failure,
    make_client,
    reason,
    status,
    why,
)
from openpacs.storage.s3_reader import ObjectReader
from openpacs.storage.s3_upload import Uploader

__all__ = ["MIB", "S3Store", "make_client"]

DEFAULT_MULTIPART_THRESHOLD = 16 * MIB
DEFAULT_MULTIPART_CHUNKSIZE = 16 * MIB
_READ_BUFFER = 256 * 1024
_S3_KEY_MAX = 1024
# "~" is not allowed in blob keys, so a probe object left by a crash is never listed as a blob.
_PROBE = ".openpacs-check~"
_SSE_MODES = ("", "AES256", "aws:kms")

T = TypeVar("T")


class S3Store:
    """BlobStore over one bucket; keys map to objects ``prefix/key``.

    ``client`` (any boto3 S3 client) wins over ``endpoint_url``, ``region``, ``session`` and
    the retry and timeout settings, which otherwise build one with :func:`make_client`.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        sse: str = "",
        kms_key_id: str = "",
        client: Any | None = None,
        session: Any | None = None,
        max_attempts: int = 8,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD,
        multipart_chunksize: int = DEFAULT_MULTIPART_CHUNKSIZE,
        max_concurrency: int = 4,
        list_page_size: int = 1000,
    ) -> None:
        if not bucket:
            raise ValueError("S3 bucket name must not be empty")
        if sse not in _SSE_MODES:
            raise ValueError(
                f'S3 server-side encryption must be "", "AES256" or "aws:kms": {sse!r}'
            )
        if kms_key_id and sse != "aws:kms":
            raise ValueError('an S3 KMS key id needs server-side encryption "aws:kms"')
        self._bucket = bucket
        self._prefix = _clean_prefix(prefix)
        if client is None:
            client = make_client(
                endpoint_url=endpoint_url,
                region=region,
                session=session,
                max_attempts=max_attempts,
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
            )
        self._client = client
        self._extra: dict[str, str] = {"ServerSideEncryption": sse} if sse else {}
        if kms_key_id:
            self._extra["SSEKMSKeyId"] = kms_key_id
        self._uploader = Uploader(
            client,
            bucket,
            extra=self._extra,
            threshold=multipart_threshold,
            chunksize=multipart_chunksize,
            max_concurrency=max_concurrency,
        )
        self._page_size = list_page_size

    def __repr__(self) -> str:
        return f"S3Store(url={self.url!r}, endpoint={self._endpoint!r})"

    @property
    def url(self) -> str:
        return f"s3://{self._bucket}/{self._prefix}"

    @property
    def _endpoint(self) -> str:
        return str(self._client.meta.endpoint_url)

    # -- writing ------------------------------------------------------------------------------

    def put_file(self, key: str, source: Path, *, consume: bool = False) -> None:
        name = self._name(key)  # a rejected key leaves the file with the caller
        source = Path(source)
        try:
            try:
                blob = source.open("rb")
            except OSError as exc:
                raise StoreUnavailable(
                    f"cannot write blob {key!r}: cannot read {source}: {why(exc)}"
                ) from exc
            with blob:
                self._write(
                    key, lambda: self._uploader.put(name, blob, os.fstat(blob.fileno()).st_size)
                )
        finally:
            if consume:  # handed over: the file must not linger, even after a failure
                with suppress(FileNotFoundError):
                    source.unlink()

    def put_stream(self, key: str, stream: ByteSource) -> int:
        name = self._name(key)
        return self._write(key, lambda: self._uploader.put_stream(name, stream))

    def _write(self, key: str, upload: Callable[[], T]) -> T:
        """Run an upload, its errors translated (any other exception of the caller's stream
        propagates unchanged)."""
        try:
            return upload()
        except OSError as exc:
            raise StoreUnavailable(f"cannot write blob {key!r}: {why(exc)}") from exc
        except (BotoCoreError, ClientError) as exc:
            raise self._failure(exc, f"write blob {key!r}") from exc

    # -- reading ------------------------------------------------------------------------------

    def open(self, key: str) -> BinaryIO:
        """Stream the object: a seekable reader that never holds the whole object."""
        name = self._name(key)
        raw = ObjectReader(lambda start, etag: self._get(key, name, start, etag), f"blob {key!r}")
        return io.BufferedReader(raw, buffer_size=_READ_BUFFER)

    def _get(self, key: str, name: str, start: int, etag: str | None) -> dict[str, Any]:
        args: dict[str, Any] = {"Bucket": self._bucket, "Key": name}
        if start:
            args["Range"] = f"bytes={start}-"
        if etag:
            args["IfMatch"] = etag  # a resumed read must not mix two versions of a blob
        try:
            response: dict[str, Any] = self._client.get_object(**args)
        except ClientError as exc:
            if code(exc) == "PreconditionFailed":
                raise StoreUnavailable(f"blob {key!r} was replaced while being read") from exc
            raise self._failure(exc, f"read blob {key!r}", missing=key) from exc
        except BotoCoreError as exc:
            raise self._failure(exc, f"read blob {key!r}") from exc
        return response

    @contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        """Download to a temporary file (same suffix as the key), removed after the block."""
        with self.open(key) as blob:
            fd, name = tempfile.mkstemp(prefix="openpacs-", suffix=PurePosixPath(key).suffix)
            try:
                with open(fd, "wb") as out:
                    shutil.copyfileobj(blob, out, CHUNK)
            except BaseException as exc:
                os.unlink(name)
                if isinstance(exc, OSError):
                    raise StoreUnavailable(
                        f"cannot download blob {key!r} to {name}: {why(exc)}"
                    ) from exc
                raise
        try:
            yield Path(name)
        finally:
            with suppress(FileNotFoundError):
                os.unlink(name)

    def size(self, key: str) -> int:
        return int(self._head(key)["ContentLength"])

    def modified(self, key: str) -> float:
        return float(self._head(key)["LastModified"].timestamp())

    def _head(self, key: str) -> dict[str, Any]:
        name = self._name(key)
        try:
            response: dict[str, Any] = self._client.head_object(Bucket=self._bucket, Key=name)
        except (BotoCoreError, ClientError) as exc:
            raise self._failure(exc, f"read blob {key!r}", missing=key) from exc
        return response

    # -- removing and listing -----------------------------------------------------------------

    def delete(self, key: str) -> None:
        name = self._name(key)
        try:
            self._client.delete_object(Bucket=self._bucket, Key=name)
        except ClientError as exc:
            if code(exc) in MISSING:  # S3 says 204; some compatible servers say 404
                return
            raise self._failure(exc, f"delete blob {key!r}") from exc
        except BotoCoreError as exc:
            raise self._failure(exc, f"delete blob {key!r}") from exc

    def iterate(self) -> Iterator[str]:
        start = f"{self._prefix}/" if self._prefix else ""
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self._bucket, Prefix=start, PaginationConfig={"PageSize": self._page_size}
        )
        try:
            for page in pages:
                for item in page.get("Contents", ()):
                    key = item["Key"][len(start) :]
                    if _is_key(key):  # skips check probes and objects others put there
                        yield key
        except (BotoCoreError, ClientError) as exc:
            raise self._failure(exc, f"list blobs under {self.url}") from exc

    # -- operations ---------------------------------------------------------------------------

    def staging_dir(self) -> Path | None:
        return None

    def file_path(self, key: str) -> Path | None:
        return None

    def check(self) -> None:
        """HEAD the bucket, then write, read back and delete a probe object under the prefix."""
        try:
            self._client.head_bucket(Bucket=self._bucket)
        except (BotoCoreError, ClientError) as exc:
            answer = status(exc) if isinstance(exc, ClientError) else None
            if answer == 404:
                raise StoreUnavailable(f"bucket {self._bucket} does not exist") from exc
            if answer == 403:
                raise StoreUnavailable(f"access to bucket {self._bucket} denied") from exc
            raise self._failure(exc, f"check bucket {self._bucket}") from exc
        name = (f"{self._prefix}/" if self._prefix else "") + _PROBE + uuid.uuid4().hex
        probe = b"openpacs storage check"
        where, bucket = self.url, self._bucket
        self._probe(
            f"write a probe object under {where}",
            lambda: self._client.put_object(Bucket=bucket, Key=name, Body=probe, **self._extra),
        )
        try:
            back = self._probe(
                f"read back a probe object under {where}",
                lambda: _read_all(self._client.get_object(Bucket=bucket, Key=name)["Body"]),
            )
            if back != probe:
                raise StoreUnavailable(f"a probe object under {where} came back different")
        except StoreUnavailable:
            with suppress(BotoCoreError, ClientError):  # best effort; the first error says why
                self._client.delete_object(Bucket=bucket, Key=name)
            raise
        self._probe(
            f"delete a probe object under {where}",
            lambda: self._client.delete_object(Bucket=bucket, Key=name),
        )
        try:
            self._client.head_object(Bucket=bucket, Key=name)
        except ClientError as exc:
            if status(exc) == 404:
                return  # a missing key answers 404, as NotFound needs
            if status(exc) == 403:
                raise StoreUnavailable(
                    f"missing objects in bucket {bucket} answer 403, not 404: grant"
                    " s3:ListBucket so that a missing blob reads as not found"
                ) from exc
            raise self._failure(exc, f"look up a missing object under {where}") from exc
        except BotoCoreError as exc:
            raise self._failure(exc, f"look up a missing object under {where}") from exc
        raise StoreUnavailable(f"a deleted probe object under {where} is still there")

    def close(self) -> None:
        """Nothing to release."""

    def _probe(self, step: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except (BotoCoreError, ClientError) as exc:
            raise self._failure(exc, step) from exc
        except StreamError as exc:
            raise StoreUnavailable(f"cannot {step}: {reason(exc, self._endpoint)}") from exc

    # -- helpers ------------------------------------------------------------------------------

    def _name(self, key: str) -> str:
        validate_key(key)
        return f"{self._prefix}/{key}" if self._prefix else key

    def _failure(self, exc: Exception, action: str, *, missing: str = "") -> OpenPacsError:
        return failure(exc, action, bucket=self._bucket, endpoint=self._endpoint, missing=missing)


def _clean_prefix(prefix: str) -> str:
    prefix = prefix.strip("/")
    if not prefix:
        return ""
    try:
        validate_key(prefix)
    except ValueError as exc:
        raise ValueError(f"invalid S3 prefix {prefix!r}: {exc}") from None
    if len(prefix) + 1 + MAX_KEY_LENGTH > _S3_KEY_MAX:
        raise ValueError(f"S3 prefix is longer than {_S3_KEY_MAX - 1 - MAX_KEY_LENGTH} characters")
    return prefix


def _read_all(body: Any) -> bytes:
    with body:
        data: bytes = body.read()
        return data


def _is_key(candidate: str) -> bool:
    try:
        validate_key(candidate)
    except ValueError:
        return False
    return True
