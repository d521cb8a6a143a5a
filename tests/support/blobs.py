"""Shorthands over the blob-store contract for tests: each is what the product itself does
(put_stream, size, open and seek), so tests need no methods of their own on the stores."""

from __future__ import annotations

import io

from openpacs.errors import NotFound
from openpacs.storage.base import BlobStore


def put(store: BlobStore, key: str, data: bytes) -> None:
    store.put_stream(key, io.BytesIO(data))


def holds(store: BlobStore, key: str) -> bool:
    """Whether a whole blob is stored under ``key``."""
    try:
        store.size(key)
    except NotFound:
        return False
    return True


def read_at(store: BlobStore, key: str, start: int, length: int) -> bytes:
    with store.open(key) as blob:
        blob.seek(start)
        return blob.read(length)
