"""Password hashing with argon2id (argon2-cffi, RFC 9106 parameters) and random secrets."""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()  # argon2id, RFC 9106 "low memory" profile: t=3, m=64 MiB, p=4
# Verified against when the user does not exist, so a wrong name costs as much as a wrong
# password and response times do not reveal which user names exist.
_DUMMY_HASH = _HASHER.hash(secrets.token_hex(16))
MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _HASHER.check_needs_rehash(password_hash)


def random_password() -> str:
    return secrets.token_urlsafe(18)


def new_secret(prefix: str) -> str:
    """A 256-bit random secret for a session or an API token."""
    return prefix + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """What the database keeps of a session or token: its SHA-256 (the secret has 256 bits
    of entropy, so a fast hash is as safe as a slow one here)."""
    return hashlib.sha256(secret.encode()).hexdigest()
