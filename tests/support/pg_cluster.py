"""A throw-away PostgreSQL server that checks passwords (scram-sha-256), for tests where a
wrong password must fail: the machine's own server trusts every local connection.

It runs Debian's PostgreSQL binaries as the `postgres` user (initdb refuses root) in a
temporary folder, on a free loopback port, and is stopped at the end.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.support.process import free_port

SUPERUSER_PASSWORD = "cluster-superuser"


@dataclass(frozen=True)
class Cluster:
    port: int

    def url(self, user: str = "postgres", password: str = SUPERUSER_PASSWORD) -> str:
        return f"postgresql+psycopg://{user}:{password}@127.0.0.1:{self.port}/postgres"

    def execute(self, *statements: str) -> None:
        """Run statements as the superuser (autocommit: CREATE DATABASE needs it)."""
        engine = create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                for statement in statements:
                    connection.execute(text(statement))
        finally:
            engine.dispose()


def _bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.skip("PostgreSQL server binaries (Debian postgresql) are not installed")
    return Path(found[-1]).parent


def _as_postgres(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    command = args if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


@dataclass(frozen=True)
class Tls:
    """TLS for the server: its certificate and key (copied where PostgreSQL accepts a key),
    and the pg_hba.conf to use instead of the password-for-everyone default."""

    cert: Path
    key: Path
    hba: Path


@contextmanager
def password_cluster(tls: Tls | None = None) -> Iterator[Cluster]:
    """A running server whose pg_hba.conf asks every TCP client for a password."""
    binaries = _bin()
    # Not tempfile's current default: a running node points that at its staging folder, inside
    # pytest's root-only folder, where the postgres user cannot read.
    system_tmp = os.environ.get("TMPDIR") or "/tmp"
    folder = Path(tempfile.mkdtemp(prefix="openpacs-pg-", dir=system_tmp))
    data = folder / "data"
    password_file = folder / "superuser"
    password_file.write_text(SUPERUSER_PASSWORD + "\n", encoding="utf-8")
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
        shutil.chown(password_file, "postgres", "postgres")
    port = free_port()
    try:
        initdb = _as_postgres(
            [str(binaries / "initdb"), "-D", str(data), "-U", "postgres",
             "--auth-local=scram-sha-256", "--auth-host=scram-sha-256",
             f"--pwfile={password_file}", "--no-sync"],
            timeout=120,
        )  # fmt: skip
        assert initdb.returncode == 0, initdb.stderr
        options = f"-c listen_addresses=127.0.0.1 -c port={port} -k {folder} -c fsync=off"
        if tls is not None:
            options += _tls_options(folder, tls)
        start = _as_postgres(
            [str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-t", "60",
             "-l", str(folder / "log"), "start"],
            timeout=90,
        )  # fmt: skip
        assert start.returncode == 0, start.stderr + (folder / "log").read_text()
        try:
            yield Cluster(port)
        finally:
            _as_postgres(
                [str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                timeout=60,
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _tls_options(folder: Path, tls: Tls) -> str:
    """Copy the TLS files into the cluster's folder, owned by its user (a key others can read
    is refused), and name them."""
    names = {"server.pem": tls.cert, "server.key": tls.key, "pg_hba.conf": tls.hba}
    for name, source in names.items():
        target = folder / name
        shutil.copyfile(source, target)
        target.chmod(0o600)
        if os.geteuid() == 0:
            shutil.chown(target, "postgres", "postgres")
    return (
        f" -c ssl=on -c ssl_cert_file={folder}/server.pem -c ssl_key_file={folder}/server.key"
        f" -c hba_file={folder}/pg_hba.conf -c ssl_min_protocol_version=TLSv1.2"
    )
