"""One error hierarchy for openpacs.

Each error knows the DIMSE status (PS3.4 / PS3.7 Annex C) and the HTTP status it maps to, so
the two front doors translate errors the same way and nothing else needs to.
"""

from __future__ import annotations

from importlib.util import find_spec


class OpenPacsError(Exception):
    """Base of every error openpacs raises on purpose."""

    dimse_status: int = 0xC000  # Failure: unable to process
    http_status: int = 500

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ConfigError(OpenPacsError):
    """The configuration is wrong; the message names the key and the problem."""


class MissingExtra(ConfigError):
    """The configuration asks for a backend whose optional dependencies are not installed."""

    def __init__(self, extra: str, feature: str) -> None:
        super().__init__(
            f"{feature} needs the optional dependencies openpacs[{extra}], which are not"
            f' installed: pip install "openpacs[{extra}]"'
        )
        self.extra = extra


def require_extra(extra: str, module: str, feature: str) -> None:
    """Raise MissingExtra unless ``module`` (of ``extra``) can be imported; it is not imported
    here, so a check costs nothing when the backend is not used."""
    if find_spec(module) is None:
        raise MissingExtra(extra, feature)


class InvalidInstance(OpenPacsError):
    """A received object cannot be parsed as DICOM (PS3.4 B.2.3: Cannot understand)."""

    dimse_status = 0xC000
    http_status = 400


class IdentifierMismatch(InvalidInstance):
    """Identifying attributes are missing or malformed, or contradict the request.

    PS3.4 B.2.3: 0xA900 Data Set does not match SOP Class.
    """

    dimse_status = 0xA900
    http_status = 400


class DuplicateInstance(OpenPacsError):
    """A second copy of a SOP instance arrived and the policy is to reject it.

    PS3.7 C.4.2: 0x0111 Duplicate SOP instance.
    """

    dimse_status = 0x0111
    http_status = 409


class StoreUnavailable(OpenPacsError):
    """The blob store or the index could not make an instance durable.

    PS3.4 B.2.3: 0xA700 Refused: out of resources.
    """

    dimse_status = 0xA700
    http_status = 503


class InvalidQuery(OpenPacsError):
    """A query identifier or query parameters are malformed.

    PS3.4 C.4.1.1.4: 0xA900 Identifier does not match SOP Class.
    """

    dimse_status = 0xA900
    http_status = 400


class NotFound(OpenPacsError):
    """The requested patient, study, series or instance is not in the archive."""

    dimse_status = 0xC000
    http_status = 404


class TranscodeError(OpenPacsError):
    """An instance cannot be converted to any transfer syntax the receiver accepts."""

    dimse_status = 0xC000
    http_status = 406


class NotAuthenticated(OpenPacsError):
    """No valid credentials came with an HTTP request (RFC 9110 15.5.2)."""

    http_status = 401


class PermissionDenied(OpenPacsError):
    """The authenticated user's role does not allow the operation."""

    http_status = 403


class LoginThrottled(OpenPacsError):
    """Too many failed logins for a user name from a peer (or from anywhere, or from a peer
    for any name): wait before trying again.

    429 Too Many Requests with Retry-After (RFC 6585 4), never 401: the password was not
    checked, and a 401 would tell a client that it is wrong."""

    http_status = 429

    def __init__(self, reason: str, retry_after: int) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class AlreadyExists(OpenPacsError):
    """A user, token or remote with that name already exists."""

    http_status = 409


class RemoteUnavailable(OpenPacsError):
    """A remote AE could not be reached or refused the association."""

    http_status = 502


class ProviderUnavailable(OpenPacsError):
    """The OpenID provider cannot be reached or answers nonsense (HTTP 502)."""

    http_status = 502
