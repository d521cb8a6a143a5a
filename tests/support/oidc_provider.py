"""A real OpenID provider for the single sign-on tests: panva's oidc-provider run by node
(`tests/support/oidc/provider.mjs`), installed by `scripts/install-oidc-provider` (run by
scripts/test) under the user's cache folder for the current lock file.

    with running_oidc_provider(folder, port, redirect_uris=[...], accounts={...}) as idp:
        idp.issuer                       # http://127.0.0.1:PORT
        token = idp.client_credentials("robot")   # a JWT access token for `idp.audience`
        idp.rotate_keys()                # restart on the same port with a new signing key
        idp.sign({...})                  # a token signed with the provider's current key

Its development login page accepts any user name with any password; the claims of a user
come from `accounts` (name -> {"groups": [...]}).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.support.node import HOST

OIDC_PACKAGE = Path(__file__).resolve().parent / "oidc"
CLIENT_ID = "openpacs"
CLIENT_SECRET = "test-client-secret-of-openpacs-0123456789"
ROBOT_SECRET = "test-client-secret-of-the-robot-0123456789"
AUDIENCE = "openpacs-api"
RESOURCE = "urn:openpacs:api"
_START_TIMEOUT = 30.0


def installed_module() -> Path:
    """oidc-provider's entry point, where scripts/install-oidc-provider put it."""
    lock = (OIDC_PACKAGE / "package-lock.json").read_bytes()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    target = cache / "openpacs" / "oidc-provider" / hashlib.sha256(lock).hexdigest()[:16]
    module = target / "node_modules" / "oidc-provider" / "lib" / "index.js"
    if not (target / ".installed").exists() or not module.exists():
        raise RuntimeError("oidc-provider is not installed: run scripts/install-oidc-provider")
    return module


def new_key(kid: str) -> tuple[rsa.RSAPrivateKey, dict[str, Any]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key))
    jwk.pop("key_ops", None)  # PyJWT writes ["sign"]: the provider must verify with it too
    jwk.update({"kid": kid, "use": "sig", "alg": "RS256"})
    return key, jwk


@dataclass
class OidcIdp:
    folder: Path
    port: int
    config: dict[str, Any]
    key: rsa.RSAPrivateKey
    kid: str
    process: subprocess.Popen[bytes] | None = None
    generation: int = field(default=1)

    @property
    def issuer(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def audience(self) -> str:
        return AUDIENCE

    def start(self) -> None:
        config_file = self.folder / "provider.json"
        config_file.write_text(json.dumps(self.config), encoding="utf-8")
        log = (self.folder / "provider.log").open("ab")
        self.process = subprocess.Popen(
            ["node", str(OIDC_PACKAGE / "provider.mjs"), str(config_file)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the OpenID provider exited: {self.log()[-2000:]}")
            try:
                with socket.create_connection((HOST, self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"the OpenID provider did not listen: {self.log()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def log(self) -> str:
        path = self.folder / "provider.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def restart(self) -> None:
        """Restart on the same port with the same key (after changing `config`)."""
        self.stop()
        self.start()

    def rotate_keys(self) -> None:
        """Restart on the same port, publishing only a new signing key."""
        self.stop()
        self.generation += 1
        self.kid = f"key-{self.generation}"
        self.key, jwk = new_key(self.kid)
        self.config["jwks"] = {"keys": [jwk]}
        self.start()

    def client_credentials(self, client_id: str = "robot", secret: str = ROBOT_SECRET) -> str:
        """A JWT access token for openpacs, from the provider's token endpoint."""
        import httpx

        response = httpx.post(
            f"{self.issuer}/token",
            auth=(client_id, secret),
            data={"grant_type": "client_credentials", "resource": RESOURCE, "scope": "dicom"},
            timeout=30,
        )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token

    def sign(self, claims: dict[str, Any], *, key: rsa.RSAPrivateKey | None = None) -> str:
        """A token signed with the provider's current key (or `key`), with its key id."""
        return jwt.encode(
            claims, key or self.key, algorithm="RS256", headers={"kid": self.kid, "typ": "at+jwt"}
        )


@contextmanager
def running_oidc_provider(
    folder: Path,
    port: int,
    *,
    redirect_uris: list[str],
    post_logout_redirect_uris: list[str],
    accounts: dict[str, dict[str, Any]],
    robot_claims: dict[str, Any] | None = None,
    access_token_seconds: int = 600,
    client: dict[str, Any] | None = None,
    client_auth_methods: list[str] | None = None,
) -> Iterator[OidcIdp]:
    """The provider on `port` (chosen first: openpacs' configuration names the issuer).

    `client` changes openpacs' client registration (e.g. `token_endpoint_auth_method`
    "none" and no `client_secret` for a public client); `client_auth_methods`, the methods
    the provider offers (its discovery's `token_endpoint_auth_methods_supported`)."""
    folder.mkdir(parents=True, exist_ok=True)
    key, jwk = new_key("key-1")
    config = {
        "module": str(installed_module()),
        "issuer": f"http://{HOST}:{port}",
        "port": port,
        "jwks": {"keys": [jwk]},
        "clients": [
            {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": redirect_uris,
                "post_logout_redirect_uris": post_logout_redirect_uris,
                "grant_types": ["authorization_code"],
                "response_types": ["code"],
                "scope": "openid profile groups",
                **(client or {}),
            },
            {
                "client_id": "robot",
                "client_secret": ROBOT_SECRET,
                "redirect_uris": [],
                "grant_types": ["client_credentials"],
                "response_types": [],
                "scope": "dicom",
                "extra_claims": robot_claims or {},
            },
        ],
        "accounts": accounts,
        "resource": RESOURCE,
        "audience": AUDIENCE,
        "access_token_seconds": access_token_seconds,
    }
    if client_auth_methods:
        config["client_auth_methods"] = client_auth_methods
    config["clients"][0] = {k: v for k, v in config["clients"][0].items() if v is not None}
    idp = OidcIdp(folder, port, config, key, "key-1")
    idp.start()
    try:
        yield idp
    finally:
        idp.stop()
