"""The database password changes under a running server (RDS rotates its managed master
password every week): with `[database] password_file`, new connections read the secret again,
so openpacs keeps storing without a restart once the file holds the new password."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from openpacs.errors import StoreUnavailable
from tests.support import corpus, scu
from tests.support.node import running_node
from tests.support.pg_cluster import password_cluster


def _write_secret(path: Path, password: str) -> None:
    """As the boot script does: a new file renamed over the old one."""
    fresh = path.with_suffix(".new")
    fresh.write_text(json.dumps({"username": "pacs", "password": password}), encoding="utf-8")
    os.replace(fresh, path)


def test_a_rotated_password_is_picked_up_without_a_restart(tmp_path: Path) -> None:
    series = corpus.synthetic_ct_series(6, rows=16, columns=16)
    secret = tmp_path / "database.json"
    with password_cluster() as cluster:
        cluster.execute(
            "CREATE ROLE pacs LOGIN PASSWORD 'first-password'",
            "CREATE DATABASE pacs OWNER pacs",
        )
        _write_secret(secret, "first-password")
        database = {
            "url": f"postgresql://127.0.0.1:{cluster.port}/pacs",
            "password_file": str(secret),
            "pool_size": 1,
            "max_overflow": 0,
        }
        with running_node(tmp_path / "node", database=database) as node:
            assert {s.Status for s in scu.store(node.port, series[:2])} == {0x0000}

            # Rotation: the role's password changes and its sessions end; the file is
            # refreshed a little later (the boot script's timer).
            cluster.execute(
                "ALTER ROLE pacs PASSWORD 'second-password'",
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'pacs'",
            )
            refused = scu.store(node.port, series[2:4])
            assert {s.Status for s in refused} == {StoreUnavailable.dimse_status}

            _write_secret(secret, "second-password")
            assert {s.Status for s in scu.store(node.port, series[4:])} == {0x0000}
            assert node.instance_count() == 4


def test_password_and_password_file_are_exclusive(tmp_path: Path) -> None:
    from openpacs.config import load_settings
    from openpacs.errors import ConfigError
    from tests.support.node import write_config

    secret = tmp_path / "secret"
    secret.write_text("x", encoding="utf-8")
    config = write_config(tmp_path, {"database": {"password": "y", "password_file": str(secret)}})
    with pytest.raises(ConfigError, match=r"database\.password_file: set either"):
        load_settings(config, environ={})
