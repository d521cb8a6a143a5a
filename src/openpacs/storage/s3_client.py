"""The S3 client the store uses and the translation of what it raises into the archive's errors.

Settings: bounded, backed-off retries, timeouts and path-style addressing for S3-compatible
servers. Errors: a refusal is described by its code and HTTP status only (S3's messages may
name principals), a failure below HTTP by its OS-level cause; credentials never reach a message.
"""

from __future__ import annotations

from typing import Any

import boto3
import urllib3.exceptions
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

MIB = 1024 * 1024
CHUNK = MIB

MISSING = {"NoSuchKey", "NotFound", "404"}
_CREDENTIALS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"}
_THROTTLED = {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded"}
StreamError = (BotoCoreError, OSError, urllib3.exceptions.HTTPError)
"""What reading an object's body may raise once the GET has answered."""


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


def failure(
    exc: Exception, action: str, *, bucket: str, endpoint: str, missing: str = ""
) -> OpenPacsError:
    """Translate a boto error; NotFound only when ``missing`` names the key being read."""
    if isinstance(exc, ClientError):
        if missing and code(exc) in MISSING:
            return NotFound(f"no blob under key {missing!r}")
        return StoreUnavailable(f"cannot {action}: {_refusal(exc, bucket)}")
    return StoreUnavailable(f"cannot {action}: {reason(exc, endpoint)}")


def _refusal(exc: ClientError, bucket: str) -> str:
    """Why S3 said no, from the code and status only: messages may name principals."""
    said_code, said_status = code(exc), status(exc)
    tries = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0) + 1
    # HEAD answers have no body, so their code is only the status again.
    said = (
        f"{said_code}, HTTP {said_status}"
        if said_code and said_code != str(said_status)
        else f"HTTP {said_status}"
    )
    if said_code == "NoSuchBucket":
        return f"bucket {bucket} does not exist"
    if said_code in _CREDENTIALS:
        return f"S3 rejected the AWS credentials ({said_code})"
    if said_code.startswith("KMS."):
        return f"KMS refused the request ({said_code}): check storage.s3_kms_key_id"
    if said_status == 403:
        return f"access to bucket {bucket} denied ({said})"
    if said_code in _THROTTLED or said_status in (429, 503):
        return f"S3 is throttling or unavailable ({said}) after {tries} tries"
    if said_status is not None and said_status >= 500:
        return f"S3 server error ({said}) after {tries} tries"
    return f"S3 refused the request ({said})"


def code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def status(exc: ClientError) -> int | None:
    found = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(found) if found is not None else None


def reason(exc: BaseException, endpoint: str = "") -> str:
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
        return why(exc)
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


def why(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def skip(body: Any, count: int) -> None:
    """Read and drop ``count`` bytes of a response body (fewer if it ends first)."""
    while count > 0:
        chunk = body.read(min(count, CHUNK))
        if not chunk:
            return
        count -= len(chunk)
