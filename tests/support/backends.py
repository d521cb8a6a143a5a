"""Backend combinations the archive and DIMSE suites run against: one test body, four
deployments (SQLite + folder, PostgreSQL + folder, PostgreSQL + S3 over HTTP, PostgreSQL
with the blobs in the index database)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import postgres
from tests.support.s3 import REGION, make_bucket

NAMES = ("sqlite-folder", "postgresql-folder", "postgresql-s3", "postgresql-postgresql")
AWS_ENVIRONMENT = {
    # openpacs reads credentials through the standard AWS chain: give it moto's dummy keys
    # and keep the machine's own AWS files out of the way.
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
}


@dataclass(frozen=True)
class Backend:
    name: str
    postgres_url: str | None = None
    s3_endpoint: str | None = None
    blobs_in_database: bool = False

    def __str__(self) -> str:
        return self.name

    def sections(self, folder: Path) -> dict[str, dict[str, Any]]:
        """Config sections for a node whose local files live in `folder`; each call on a
        PostgreSQL backend starts from empty tables, each S3 call gets a new bucket."""
        sections: dict[str, dict[str, Any]] = {}
        if self.postgres_url is not None:
            postgres.truncate(self.postgres_url)
            sections["database"] = {"url": self.postgres_url}
        if self.s3_endpoint is not None:
            bucket = make_bucket(self.s3_endpoint)
            sections["storage"] = {
                "url": f"s3://{bucket}/archive",
                "s3_endpoint": self.s3_endpoint,
                "s3_region": REGION,
                "s3_sse": "AES256",
            }
        if self.blobs_in_database:
            sections["storage"] = {"url": "postgresql"}
        return sections

    @property
    def uses_folder(self) -> bool:
        return self.s3_endpoint is None and not self.blobs_in_database
