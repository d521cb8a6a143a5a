"""BlobStore over Amazon S3 and S3-compatible servers (MinIO, Ceph), through boto3.

One object per key under ``prefix/``. A PUT, single or multipart, is atomic (readers see the old
object or the whole new one) and S3 answers it only once the object is durable, which is what
"durable before acknowledged" (decision 3 of the architecture) needs. Credentials come from the
standard AWS chain (environment, shared files, instance or task role) and never reach a message.

The bucket policy must grant s3:ListBucket (HEAD bucket, ``iterate``, and so that a missing key
answers 404 rather than 403), s3:GetObject, s3:PutObject, s3:DeleteObject and
s3:AbortMultipartUpload; with aws:kms also kms:GenerateDataKey and kms:Decrypt on the key.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, BinaryIO

import boto3
import urllib3.exceptions
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from openpacs.errors import NotFound, OpenPacsError, StoreUnavailable
from openpacs.storage.base import (
    MAX_KEY_LENGTH,
    ByteSource,
    SeekableReader,
    validate_key,
    validate_range,
)

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

log = logging.getLogger(__name__)

MIB = 1024 * 1024
DEFAULT_MULTIPART_THRESHOLD = 16 * MIB
DEFAULT_MULTIPART_CHUNKSIZE = 16 * MIB
_CHUNK = MIB
_READ_BUFFER = 256 * 1024
_SKIP_LIMIT = MIB  # a forward seek up to this far reads on instead of opening a new GET
_READ_ATTEMPTS = 3  # tries per read: a broken stream resumes where it broke, twice
_S3_KEY_MAX = 1024
# "~" is not allowed in blob keys, so a probe object left by a crash is never listed as a blob.
_PROBE = ".openpacs-check~"
_SSE_MODES = ("", "AES256", "aws:kms")

_MISSING = {"NoSuchKey", "NotFound", "404"}
_CREDENTIALS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"}
_THROTTLED = {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded"}
_StreamError = (BotoCoreError, OSError, urllib3.exceptions.HTTPError)


def make_client(
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    session: Any | None = None,
    max_attempts: int = 8,
    connect_timeout: float = 10.0,
    read_timeout: float = 60.0,
    max_pool_connections: int = 50,
) -> Any:
    """An S3 client with bounded, backed-off retries and timeouts.

    Credentials come from ``session`` (default: a new boto3 session on the standard chain).
    """
    options: dict[str, Any] = {}
    if endpoint_url:
        # S3-compatible servers expect path-style URLs, and some reject the checksum trailers
        # that botocore sends by default since 1.36 (older versions have no such option).
        options["s3"] = {"addressing_style": "path"}
        if "request_checksum_calculation" in Config.OPTION_DEFAULTS:
            options["request_checksum_calculation"] = "when_required"
            options["response_checksum_validation"] = "when_required"
    config = Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_pool_connections=max_pool_connections,
        tcp_keepalive=True,
        user_agent_appid="openpacs",
        **options,
    )
    try:
        chain = session if session is not None else boto3.session.Session()
        return chain.client(
            "s3", endpoint_url=endpoint_url or None, region_name=region or None, config=config
        )
    except BotoCoreError as exc:  # e.g. AWS_PROFILE names a profile that does not exist
        raise StoreUnavailable(f"cannot set up the S3 client: {exc}") from None


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
        self._threshold = multipart_threshold
        self._transfer = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=multipart_chunksize,
            max_concurrency=max_concurrency,
            use_threads=True,
            preferred_transfer_client="classic",  # the CRT client would not use our client
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
                    f"cannot write blob {key!r}: cannot read {source}: {_why(exc)}"
                ) from exc
            with blob:
                self._upload(key, name, blob, os.fstat(blob.fileno()).st_size)
        finally:
            if consume:  # handed over: the file must not linger, even after a failure
                with suppress(FileNotFoundError):
                    source.unlink()

    def put_bytes(self, key: str, data: bytes) -> None:
        name = self._name(key)
        self._upload(key, name, io.BytesIO(data), len(data))

    def put_stream(self, key: str, stream: ByteSource) -> int:
        """Up to the multipart threshold one PUT, else a multipart upload read from ``stream``
        in the transfer manager's thread (never two threads at once)."""
        name = self._name(key)
        source = _Source(stream)
        try:
            head = source.read(self._threshold)
        except OSError as exc:
            raise StoreUnavailable(f"cannot write blob {key!r}: {_why(exc)}") from exc
        if len(head) < self._threshold:
            self._upload(key, name, io.BytesIO(head), len(head))
        else:
            source.unread(head)
            self._upload(key, name, source, None)
        return source.count

    def _upload(self, key: str, name: str, body: Any, size: int | None) -> None:
        """One PUT below the threshold, else boto3's managed (multipart) transfer, which
        aborts the multipart upload when it fails; SSE goes with either."""
        try:
            if size is not None and size < self._threshold:
                self._client.put_object(Bucket=self._bucket, Key=name, Body=body, **self._extra)
            else:
                self._client.upload_fileobj(
                    body, self._bucket, name, ExtraArgs=self._extra, Config=self._transfer
                )
        except OSError as exc:
            raise StoreUnavailable(f"cannot write blob {key!r}: {_why(exc)}") from exc
        except (BotoCoreError, ClientError) as exc:
            raise self._failure(exc, f"write blob {key!r}") from exc

    # -- reading ------------------------------------------------------------------------------

    def open(self, key: str) -> BinaryIO:
        """Stream the object: a seekable reader that never holds the whole object."""
        name = self._name(key)
        raw = _ObjectReader(lambda start, etag: self._get(key, name, start, etag), f"blob {key!r}")
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
            if _code(exc) == "PreconditionFailed":
                raise StoreUnavailable(f"blob {key!r} was replaced while being read") from exc
            raise self._failure(exc, f"read blob {key!r}", missing=key) from exc
        except BotoCoreError as exc:
            raise self._failure(exc, f"read blob {key!r}") from exc
        return response

    def read_range(self, key: str, start: int, length: int) -> bytes:
        validate_range(start, length)
        name = self._name(key)
        if length == 0:
            self.size(key)  # NotFound for a missing key, as for any other range
            return b""
        try:
            response = self._client.get_object(
                Bucket=self._bucket, Key=name, Range=f"bytes={start}-{start + length - 1}"
            )
        except ClientError as exc:
            if _status(exc) == 416:  # starts at or past the end of a blob that exists
                return b""
            raise self._failure(exc, f"read blob {key!r}", missing=key) from exc
        except BotoCoreError as exc:
            raise self._failure(exc, f"read blob {key!r}") from exc
        body = response["Body"]
        try:
            if "ContentRange" not in response:  # the server ignored the Range header
                _skip(body, start)
            data: bytes = body.read(length)
            return data
        except _StreamError as exc:
            raise StoreUnavailable(f"cannot read blob {key!r}: {_reason(exc)}") from exc
        finally:
            body.close()

    @contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        """Download to a temporary file (same suffix as the key), removed after the block."""
        with self.open(key) as blob:
            fd, name = tempfile.mkstemp(prefix="openpacs-", suffix=PurePosixPath(key).suffix)
            try:
                with open(fd, "wb") as out:
                    shutil.copyfileobj(blob, out, _CHUNK)
            except BaseException as exc:
                os.unlink(name)
                if isinstance(exc, OSError):
                    raise StoreUnavailable(
                        f"cannot download blob {key!r} to {name}: {_why(exc)}"
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

    def exists(self, key: str) -> bool:
        try:
            self._head(key)
        except NotFound:
            return False
        return True

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
            if _code(exc) in _MISSING:  # S3 says 204; some compatible servers say 404
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
            status = _status(exc) if isinstance(exc, ClientError) else None
            if status == 404:
                raise StoreUnavailable(f"bucket {self._bucket} does not exist") from exc
            if status == 403:
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
            if _status(exc) == 404:
                return  # a missing key answers 404, as NotFound needs
            if _status(exc) == 403:
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
        except _StreamError as exc:
            raise StoreUnavailable(f"cannot {step}: {_reason(exc, self._endpoint)}") from exc

    # -- helpers ------------------------------------------------------------------------------

    def _name(self, key: str) -> str:
        validate_key(key)
        return f"{self._prefix}/{key}" if self._prefix else key

    def _failure(self, exc: Exception, action: str, *, missing: str = "") -> OpenPacsError:
        """Translate a boto error; NotFound only when ``missing`` names the key being read."""
        if isinstance(exc, ClientError):
            code = _code(exc)
            if missing and code in _MISSING:
                return NotFound(f"no blob under key {missing!r}")
            return StoreUnavailable(f"cannot {action}: {self._refusal(exc)}")
        return StoreUnavailable(f"cannot {action}: {_reason(exc, self._endpoint)}")

    def _refusal(self, exc: ClientError) -> str:
        """Why S3 said no, from the code and status only: messages may name principals."""
        code, status = _code(exc), _status(exc)
        tries = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0) + 1
        # HEAD answers have no body, so their code is only the status again.
        said = f"{code}, HTTP {status}" if code and code != str(status) else f"HTTP {status}"
        if code == "NoSuchBucket":
            return f"bucket {self._bucket} does not exist"
        if code in _CREDENTIALS:
            return f"S3 rejected the AWS credentials ({code})"
        if code.startswith("KMS."):
            return f"KMS refused the request ({code}): check storage.s3_kms_key_id"
        if status == 403:
            return f"access to bucket {self._bucket} denied ({said})"
        if code in _THROTTLED or status in (429, 503):
            return f"S3 is throttling or unavailable ({said}) after {tries} tries"
        if status is not None and status >= 500:
            return f"S3 server error ({said}) after {tries} tries"
        return f"S3 refused the request ({said})"


class _ObjectReader(SeekableReader):
    """A seekable raw reader over one version of an object.

    Reads stream from one GET; a seek opens a new ranged GET lazily, and so does a stream that
    breaks midway. Those GETs carry If-Match with the first ETag, so a reader never mixes the
    bytes of two versions of a blob.
    """

    def __init__(self, get: Callable[[int, str | None], dict[str, Any]], what: str) -> None:
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
            except _StreamError as exc:
                self._drop_body()
                if attempt == _READ_ATTEMPTS:
                    raise StoreUnavailable(f"cannot read {self._what}: {_reason(exc)}") from exc
                attempt += 1
                log.warning("S3 read broke, resuming offset=%d error=%s", self._pos, _reason(exc))
        if not data:  # botocore raises IncompleteReadError first; keep callers' loops finite
            raise StoreUnavailable(f"cannot read {self._what}: the object ended early")
        view[: len(data)] = data
        self._pos += len(data)
        self._body_pos = self._pos
        return len(data)

    def readall(self) -> bytes:
        parts = []
        while chunk := self.read(_CHUNK):
            parts.append(chunk)
        return b"".join(parts)

    def close(self) -> None:
        self._drop_body()
        super().close()

    def _position(self) -> None:
        """Make the body stream stand at ``_pos``: read on a little, or open a new GET."""
        ahead = self._pos - self._body_pos
        if self._body is not None and 0 <= ahead <= _SKIP_LIMIT:
            _skip(self._body, ahead)
            self._body_pos = self._pos
            return
        self._drop_body()
        response = self._get(self._pos, self._etag)
        self._body = response["Body"]
        if self._pos and "ContentRange" not in response:  # the server ignored the Range header
            _skip(self._body, self._pos)
        self._body_pos = self._pos

    def _drop_body(self) -> None:
        if self._body is not None:
            body, self._body = self._body, None
            body.close()


class _Source:
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
            chunk = self._stream.read(_CHUNK if size < 0 else size)
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


def _skip(body: Any, count: int) -> None:
    while count > 0:
        chunk = body.read(min(count, _CHUNK))
        if not chunk:
            return
        count -= len(chunk)


def _is_key(candidate: str) -> bool:
    try:
        validate_key(candidate)
    except ValueError:
        return False
    return True


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int | None:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status is not None else None


def _reason(exc: BaseException, endpoint: str = "") -> str:
    """Say what went wrong below HTTP, without echoing credentials or request details."""
    where = f"S3 endpoint {endpoint}" if endpoint else "the S3 endpoint"
    cause = _os_cause(exc) or type(exc).__name__
    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials found (environment, shared files or instance role)"
    if isinstance(exc, ReadTimeoutError):
        return f"{where} did not answer in time (read timeout)"
    if isinstance(exc, BotoConnectionError):
        return f"cannot reach {where}: {cause}"
    if isinstance(exc, HTTPClientError | IncompleteReadError | urllib3.exceptions.HTTPError):
        return f"the connection to {where} broke: {cause}"
    if isinstance(exc, OSError):
        return _why(exc)
    return f"S3 request failed ({type(exc).__name__})"


def _os_cause(exc: BaseException) -> str:
    """The first OS-level reason in the chain, e.g. "Connection refused"."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            break
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        seen = seen.__cause__ or seen.__context__
    return ""


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__
