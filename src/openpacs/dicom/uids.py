"""The UID grammar (PS3.5 9.1), checked the same way at every door.

A UID is at most 64 characters: numeric components separated by single dots, each component
without a leading zero unless it is 0 itself. C-STORE and STOW-RS headers, C-GET/C-MOVE
identifiers, query keys of C-FIND, QIDO-RS and the REST API, and the UIDs of REST and
DICOMweb paths all use `is_valid_uid` (or `UID_PATTERN`, the same grammar for request
validation and the OpenAPI document), so no door accepts a UID another refuses.
"""

from __future__ import annotations

import re

from openpacs.errors import InvalidQuery

MAX_UID_LENGTH = 64
UID_PATTERN = r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$"
_UID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")


def is_valid_uid(text: str) -> bool:
    """True when `text` is a UID, exactly (no padding, no trailing newline)."""
    return len(text) <= MAX_UID_LENGTH and _UID.fullmatch(text) is not None


def checked_uid(value: str, what: str) -> str:
    """`value` when it is a UID, else InvalidQuery naming `what` (this also stops path
    traversal and injection through UIDs in URLs)."""
    if not is_valid_uid(value):
        raise InvalidQuery(f"{what} {value[:80]!r} is not a valid UID")
    return value
