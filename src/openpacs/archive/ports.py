"""What the archive needs from an index; the blob store's contract is `storage.base.BlobStore`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from openpacs.dicom.header import Header
from openpacs.dicom.levels import Level
from openpacs.dicom.query import Query
from openpacs.index.records import (
    AddResult,
    DuplicatePolicy,
    IndexedBlob,
    Match,
    StoredInstance,
    Totals,
)


class Index(Protocol):
    """The catalog. Each call is one transaction; callers never see database types."""

    def add_instance(
        self,
        header: Header,
        *,
        blob_key: str,
        blob_size: int,
        blob_sha256: str,
        policy: DuplicatePolicy,
    ) -> AddResult: ...

    def find(self, query: Query) -> list[Match]: ...

    def instances_for(self, query: Query) -> list[StoredInstance]: ...

    def instance(self, sop_uid: str) -> StoredInstance | None: ...

    def delete(self, level: Level, uid: str) -> list[str]: ...

    def all_blob_keys(self) -> set[str]: ...

    def iter_blobs(self) -> Iterator[IndexedBlob]: ...

    def totals(self) -> Totals: ...

    def close(self) -> None: ...
