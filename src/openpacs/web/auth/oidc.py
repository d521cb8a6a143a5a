"""OpenID Connect: the provider's discovery document and keys, the authorization code exchange
(with PKCE, as a public client or with a client secret), and the checks on its ID tokens and
access tokens.

Tokens are JWTs checked with PyJWT against the provider's JWKS: signature (asymmetric
algorithms only, never `none` or HMAC with a public key), `iss`, `aud`, `exp`, `iat`, `nbf`
with `[auth.oidc] clock_skew_seconds` of tolerance, the nonce of ID tokens. The JWKS is cached
and fetched again when a token names a key id it does not hold (the provider rotated its
keys), at most once every `_REFRESH_SECONDS` so unknown key ids cannot make us hammer it.
The role comes from a claim at each login and with each access token, through the configured
mapping; a user whose claim maps to no role is refused.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openpacs.archive.records import Role
from openpacs.config import OidcSettings
from openpacs.errors import (
    ConfigError,
    NotAuthenticated,
    PermissionDenied,
    ProviderUnavailable,
)

if TYPE_CHECKING:
    import jwt  # PyJWT and cryptography (about 9 MB) load with the first token, not idle

log = logging.getLogger("openpacs.auth")

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
_TIMEOUT = 10.0
_DISCOVERY_SECONDS = 3600.0
_REFRESH_SECONDS = 2.0
PASSWORD_MARKER = "!oidc"  # noqa: S105 - the password hash of provider users: matches no password
"""Stored as the password hash of users created by a provider login: no password verifies
against it, and a local user (with a real hash) is never taken over by a provider login."""


@dataclass(frozen=True)
class Identity:
    """Who a verified token names, and the role the mapping gives them."""

    username: str
    role: Role
    claims: dict[str, Any]

    @property
    def groups(self) -> frozenset[str]:
        """The values of the role claim (groups), for visibility rules."""
        return frozenset(self.claims.get("openpacs_groups", ()))


@dataclass(frozen=True)
class LoginRequest:
    """What a login must remember until the callback: sent to the browser in a cookie."""

    state: str
    nonce: str
    verifier: str

    def encode(self) -> str:
        return f"{self.state}.{self.nonce}.{self.verifier}"

    @classmethod
    def decode(cls, value: str) -> LoginRequest | None:
        parts = value.split(".")
        return cls(*parts) if len(parts) == 3 and all(parts) else None

    @classmethod
    def new(cls) -> LoginRequest:
        return cls(secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48))

    @property
    def challenge(self) -> str:
        """PKCE S256 (RFC 7636 4.2)."""
        digest = hashlib.sha256(self.verifier.encode("ascii")).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class OidcProvider:
    """One configured provider; thread-safe, shared by every request of an app."""

    def __init__(self, settings: OidcSettings) -> None:
        self.settings = settings
        secret_file = settings.client_secret_file
        self.client_secret = (
            Path(secret_file).read_text(encoding="utf-8").strip() if secret_file else ""
        )
        if secret_file and not self.client_secret:
            # A confidential client's secret went missing: never fall back to a public client.
            raise ConfigError(
                "auth.oidc.client_secret_file: the file is empty; leave the key empty for a "
                "public client"
            )
        self._discovery: dict[str, Any] | None = None
        self._discovered_at = 0.0
        self._keys: dict[str, jwt.PyJWK] = {}
        self._keys_fetched_at = 0.0
        self._lock = threading.Lock()

    # -- the provider's documents ------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        """The discovery document (OpenID Connect Discovery 1.0), cached for an hour."""
        with self._lock:
            fresh = time.monotonic() - self._discovered_at < _DISCOVERY_SECONDS
            if self._discovery is not None and fresh:
                return self._discovery
        url = self.settings.issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = _get_json(url)
        if document.get("issuer") != self.settings.issuer:
            raise ProviderUnavailable(
                f"the provider's discovery document names issuer {document.get('issuer')!r}, "
                f"not the configured {self.settings.issuer!r}"
            )
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(document.get(key), str):
                raise ProviderUnavailable(f"the provider's discovery document lacks {key}")
        with self._lock:
            self._discovery, self._discovered_at = document, time.monotonic()
        return document

    def _signing_key(self, token: str) -> jwt.PyJWK:
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise NotAuthenticated("malformed token") from None
        kid = header.get("kid")
        if header.get("alg") not in ALGORITHMS:
            raise NotAuthenticated(f"token algorithm {str(header.get('alg'))[:10]!r} not accepted")
        key = self._find_key(kid)
        if key is None and time.monotonic() - self._keys_fetched_at >= _REFRESH_SECONDS:
            self._fetch_keys()
            key = self._find_key(kid)
        if key is None:
            raise NotAuthenticated("token signed with a key the provider does not publish")
        return key

    def _find_key(self, kid: Any) -> jwt.PyJWK | None:
        with self._lock:
            if kid is None and len(self._keys) == 1:
                return next(iter(self._keys.values()))
            return self._keys.get(kid) if isinstance(kid, str) else None

    def _fetch_keys(self) -> None:
        import jwt

        document = _get_json(self.metadata()["jwks_uri"])
        keys: dict[str, jwt.PyJWK] = {}
        for entry in document.get("keys", []) if isinstance(document, dict) else []:
            if entry.get("use", "sig") != "sig":
                continue
            try:
                key = jwt.PyJWK(entry)
            except jwt.PyJWTError:
                continue  # a key type or algorithm we do not use
            keys[str(entry.get("kid", ""))] = key
        with self._lock:
            self._keys, self._keys_fetched_at = keys, time.monotonic()
        log.info("fetched the provider's signing keys count=%d", len(keys))

    # -- tokens ------------------------------------------------------------------------------

    def _decode(self, token: str, audience: str) -> dict[str, Any]:
        import jwt

        key = self._signing_key(token)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=audience,
                issuer=self.settings.issuer,
                leeway=self.settings.clock_skew_seconds,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise NotAuthenticated("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise NotAuthenticated("the token is not meant for openpacs (aud)") from None
        except jwt.InvalidIssuerError:
            raise NotAuthenticated("the token is from another issuer (iss)") from None
        except jwt.InvalidSignatureError:
            raise NotAuthenticated("the token's signature does not verify") from None
        except jwt.PyJWTError as exc:
            raise NotAuthenticated(f"invalid token: {str(exc)[:100]}") from None
        return claims

    def verify_id_token(self, token: str, nonce: str) -> Identity:
        """An ID token of our login (OpenID Connect Core 3.1.3.7)."""
        claims = self._decode(token, self.settings.client_id)
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.settings.client_id:
            raise NotAuthenticated("the ID token's azp is not our client")
        if not isinstance(claims.get("nonce"), str) or not secrets.compare_digest(
            claims["nonce"], nonce
        ):
            raise NotAuthenticated("the ID token's nonce is not the one of this login")
        return self.identity(claims)

    def verify_access_token(self, token: str) -> Identity:
        """A provider's JWT access token presented as a bearer token (RFC 9068)."""
        if not self.settings.audience:
            raise NotAuthenticated("unknown, expired or revoked token")
        return self.identity(self._decode(token, self.settings.audience))

    def identity(self, claims: dict[str, Any]) -> Identity:
        name = claims.get(self.settings.username_claim)
        if not isinstance(name, str) or not name.strip() or len(name) > 64:
            raise NotAuthenticated(
                f"the token has no usable {self.settings.username_claim!r} claim"
            )
        held = claims.get(self.settings.role_claim)
        values = {held} if isinstance(held, str) else {v for v in held or [] if isinstance(v, str)}
        for mapping in self.settings.roles:
            value, _, role = mapping.rpartition("=")
            if value.strip() in values:
                claims = {**claims, "openpacs_groups": sorted(values)}
                return Identity(name.strip(), role.strip(), claims)  # type: ignore[arg-type]
        claim = self.settings.role_claim
        raise PermissionDenied(f"no openpacs role is mapped to the {claim} claim")

    # -- the login ---------------------------------------------------------------------------

    def authorization_url(self, login: LoginRequest, redirect_uri: str) -> str:
        query = {
            "response_type": "code",
            "client_id": self.settings.client_id,
            "redirect_uri": redirect_uri,
            "scope": _scopes(self.settings.scopes),
            "state": login.state,
            "nonce": login.nonce,
            "code_challenge": login.challenge,
            "code_challenge_method": "S256",
        }
        endpoint: str = self.metadata()["authorization_endpoint"]
        return endpoint + ("&" if "?" in endpoint else "?") + urllib.parse.urlencode(query)

    def exchange(self, code: str, login: LoginRequest, redirect_uri: str) -> dict[str, Any]:
        """The token response for an authorization code, authenticated as `client_auth` says."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": login.verifier,
        }
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        method = self.client_auth()
        if method == "client_secret_basic":
            basic = base64.b64encode(
                f"{urllib.parse.quote(self.settings.client_id, safe='')}:"
                f"{urllib.parse.quote(self.client_secret, safe='')}".encode()
            ).decode()
            headers["Authorization"] = f"Basic {basic}"
        else:  # a public client (none) names itself in the body; client_secret_post adds its secret
            form["client_id"] = self.settings.client_id
            if method == "client_secret_post":
                form["client_secret"] = self.client_secret
        request = urllib.request.Request(  # noqa: S310 - http(s) only: _http_only
            _http_only(self.metadata()["token_endpoint"]),
            data=urllib.parse.urlencode(form).encode(),
            headers=headers,
        )
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:  # noqa: S310
                answer = json.loads(response.read(1_000_000))
        except urllib.error.HTTPError as exc:
            reason = _error_of(exc)
            log.warning("the provider refused the authorization code reason=%s", reason)
            raise NotAuthenticated(f"the provider refused the login: {reason}") from None
        except (OSError, ValueError) as exc:
            raise ProviderUnavailable(f"the provider cannot be reached: {exc}") from None
        if not isinstance(answer, dict) or not isinstance(answer.get("id_token"), str):
            raise NotAuthenticated("the provider's token response has no ID token")
        return answer

    def client_auth(self) -> str:
        """How we authenticate at the token endpoint (OpenID Connect Core 9).

        Without a client secret we are a public client (`none`: PKCE protects the code);
        with one, `client_secret_basic` (the default of the specification) unless the
        provider's discovery document lists `client_secret_post` and not basic.
        """
        if not self.client_secret:
            return "none"
        methods = self.metadata().get("token_endpoint_auth_methods_supported")
        if (
            isinstance(methods, list)
            and "client_secret_basic" not in methods
            and "client_secret_post" in methods
        ):
            return "client_secret_post"
        return "client_secret_basic"

    def logout_url(self, id_token: str | None, after_logout: str) -> str | None:
        """The provider's end-session URL (RP-Initiated Logout 1.0), if it has one."""
        endpoint = self.metadata().get("end_session_endpoint")
        if not isinstance(endpoint, str):
            return None
        query = {"client_id": self.settings.client_id, "post_logout_redirect_uri": after_logout}
        if id_token:
            query["id_token_hint"] = id_token
        return endpoint + ("&" if "?" in endpoint else "?") + urllib.parse.urlencode(query)


def _scopes(configured: str) -> str:
    scopes = configured.split()
    return " ".join(scopes if "openid" in scopes else ["openid", *scopes])


def _http_only(url: str) -> str:
    """The provider's documents name URLs we fetch: never a file: or other scheme."""
    if urllib.parse.urlsplit(url).scheme.lower() not in ("http", "https"):
        raise ProviderUnavailable(f"the provider names a URL that is not http(s): {url[:100]!r}")
    return url


def _get_json(url: str) -> Any:
    request = urllib.request.Request(  # noqa: S310 - http(s) only: _http_only
        _http_only(url), headers={"Accept": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:  # noqa: S310
            return json.loads(response.read(1_000_000))
    except (OSError, ValueError) as exc:
        log.warning("the provider cannot be reached url=%s error=%s", url, exc)
        raise ProviderUnavailable(f"the provider cannot be reached: {exc}") from None


def _error_of(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read(10_000))
        return str(body.get("error_description") or body.get("error") or exc.code)[:200]
    except (OSError, ValueError, AttributeError):
        return str(exc.code)
