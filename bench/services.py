"""Backing services the systems share: throw-away PostgreSQL databases and an S3 emulator.

PostgreSQL is the machine's server (OPENPACS_BENCH_POSTGRES, default
postgresql://postgres@127.0.0.1:5432/test): each system start gets its own database, dropped
when the system stops. S3 is moto in server mode, in its own process so that its CPU is not
the harness's; its speed is not S3's, and the report says so.
"""

from __future__ import annotations

import os
import sys
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import psycopg

import bench  # noqa: F401  (puts the repository root on sys.path)
from bench.procs import HOST, Child, child_environ, free_port

ADMIN_URL = os.environ.get("OPENPACS_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def aws_environment() -> dict[str, str]:
    """moto's dummy credentials for openpacs, with the machine's AWS files kept out."""
    from tests.support.backends import AWS_ENVIRONMENT  # imports boto3 and moto: only when used

    return dict(AWS_ENVIRONMENT)


def create_database(prefix: str, *, exact: bool = False) -> str:
    """A new, empty database named `prefix` and a random suffix (`prefix` alone when
    `exact`); returns its name."""
    name = prefix if exact else f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=10) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return name


def database_exists(name: str) -> bool:
    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=10) as connection:
        found = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        return found.fetchone() is not None


def drop_database(name: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=10) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_url(name: str) -> str:
    """The SQLAlchemy/openpacs URL of database `name` on the admin server."""
    base, _, _ = ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


def database_params() -> dict[str, Any]:
    """Host, port and user of the admin URL (for Orthanc's PostgreSQL plugin)."""
    info = psycopg.conninfo.conninfo_to_dict(ADMIN_URL)
    return {
        "host": info.get("host", HOST),
        "port": int(info.get("port", 5432)),
        "user": info.get("user", "postgres"),
        "password": info.get("password", ""),
    }


def server_version() -> str:
    with psycopg.connect(ADMIN_URL, connect_timeout=10) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


def count_rows(db_url: str, table: str) -> int:
    """Rows of an openpacs index table (sqlite:/// or postgresql:// URL)."""
    if db_url.startswith("sqlite:///"):
        import sqlite3

        with sqlite3.connect(f"file:{db_url.removeprefix('sqlite:///')}?mode=ro", uri=True) as db:
            return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    with psycopg.connect(db_url, connect_timeout=10) as connection:
        row = connection.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


class MotoServer:
    """moto's S3 emulator as a child process on a free loopback port."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.endpoint = f"http://{HOST}:{self.port}"
        command = [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(self.port)]
        self.environment = aws_environment()
        self.region = self.environment["AWS_DEFAULT_REGION"]
        self.child = Child("moto", command, log_dir, env=child_environ(self.environment))
        self.child.wait_ready(self._answers, timeout=60, what="S3 endpoint")

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=2):
                return True
        except OSError:
            return False

    def _client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=self.environment["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.environment["AWS_SECRET_ACCESS_KEY"],
        )

    def make_bucket(self) -> str:
        name = f"openpacs-bench-{uuid.uuid4().hex[:12]}"
        self._client().create_bucket(Bucket=name)
        return name

    def reset(self) -> None:
        """Forget every bucket and object (moto keeps them in memory)."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=60):
            pass

    def stop(self) -> None:
        self.child.stop()
