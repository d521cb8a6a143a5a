"""How the servers log in to PostgreSQL (issue 19, item 4): a password file read again for
every new connection (RDS rotates its managed password every week), a login role of their own
made by `openpacs db grant` so they never connect as the schema's owner, and RDS IAM tokens
instead of a password."""

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


def test_the_servers_role_reads_and_writes_rows_but_cannot_change_the_schema(
    tmp_path: Path,
) -> None:
    """`db upgrade` as the owner, `db grant` for the servers' role (with rds_iam, a role RDS
    has and this server is given), then openpacs serves as that role."""
    import psycopg
    from click.testing import CliRunner

    from openpacs.cli.main import cli
    from tests.support.node import write_config

    series = corpus.synthetic_ct_series(2, rows=16, columns=16)
    with password_cluster() as cluster:
        cluster.execute(
            "CREATE ROLE owner LOGIN PASSWORD 'owner-password'",
            "CREATE ROLE rds_iam NOLOGIN",  # what RDS provides
            "CREATE DATABASE pacs OWNER owner",
        )
        url = f"postgresql://owner:owner-password@127.0.0.1:{cluster.port}/pacs"
        (tmp_path / "owner").mkdir()
        owner = write_config(tmp_path / "owner", {"database": {"url": url}})
        runner = CliRunner()
        refused = runner.invoke(cli, ["db", "grant", "pacs_server", "--config", str(owner)])
        assert refused.exit_code == 1
        assert "cannot grant role pacs_server: permission denied to create role" in (refused.output)
        cluster.execute("ALTER ROLE owner CREATEROLE")  # as RDS' master user has
        for command in (["db", "upgrade"], ["db", "grant", "pacs_server", "--rds-iam"],
                        ["db", "grant", "pacs_server", "--rds-iam"]):  # fmt: skip
            result = runner.invoke(cli, [*command, "--config", str(owner)])
            assert result.exit_code == 0, result.output
        bad = runner.invoke(cli, ["db", "grant", "Robert'); DROP", "--config", str(owner)])
        assert bad.exit_code != 0
        assert "lower-case letters" in bad.output
        cluster.execute("ALTER ROLE pacs_server PASSWORD 'server-password'")  # for this test

        database = {
            "url": f"postgresql://pacs_server:server-password@127.0.0.1:{cluster.port}/pacs"
        }
        with running_node(tmp_path / "node", database=database) as node:
            assert {s.Status for s in scu.store(node.port, series)} == {0x0000}
            assert node.instance_count() == 2

        dsn = f"host=127.0.0.1 port={cluster.port} dbname=pacs user=pacs_server"
        with psycopg.connect(f"{dsn} password=server-password") as connection:
            member = connection.execute("SELECT pg_has_role('rds_iam', 'MEMBER')").fetchone()
            assert member == (True,)
            for statement in ("DROP TABLE instances", "ALTER TABLE studies ADD COLUMN x int",
                              "CREATE TABLE mine (x int)"):  # fmt: skip
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    connection.execute(statement)
                connection.rollback()


def test_rds_iam_logs_in_with_a_fresh_token_per_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With `[database] rds_iam`, the password of each new connection is an RDS IAM token
    for the URL's host, port and user, signed locally with the AWS credentials."""
    from sqlalchemy.engine import make_url

    from openpacs.compose import rds_iam_credentials

    for name, value in (("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"), ("AWS_SECRET_ACCESS_KEY", "x"),
                        ("AWS_DEFAULT_REGION", "eu-west-1")):  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    url = make_url("postgresql://pacs_server@db.example.eu-west-1.rds.amazonaws.com:5432/pacs")
    credentials = rds_iam_credentials(url)
    user, token = credentials()
    assert user == "pacs_server"
    assert token.startswith("db.example.eu-west-1.rds.amazonaws.com:5432/?Action=connect")
    assert "DBUser=pacs_server" in token
    assert "X-Amz-Signature=" in token
    assert "X-Amz-Expires=900" in token


def test_rds_iam_needs_a_user_and_no_password(tmp_path: Path) -> None:
    from openpacs.config import load_settings
    from openpacs.errors import ConfigError
    from tests.support.node import write_config

    for url in ("postgresql://db.example/pacs", "postgresql://u:secret@db.example/pacs"):
        config = write_config(tmp_path, {"database": {"url": url, "rds_iam": True}})
        with pytest.raises(ConfigError, match=r"database\.rds_iam: "):
            load_settings(config, environ={})
    good = write_config(tmp_path, {"database": {"url": "postgresql://u@db.example/pacs",
                                                "rds_iam": True}})  # fmt: skip
    assert load_settings(good, environ={}).database.rds_iam is True


def test_the_servers_role_stores_blobs_in_the_tables_db_upgrade_made(tmp_path: Path) -> None:
    """With `[storage] url = "postgresql"`, `db upgrade` (the owner) makes the blob tables
    and `db grant` covers them: the servers' role, which may not create tables, stores and
    reads blobs there."""
    from click.testing import CliRunner

    from openpacs.cli.main import cli
    from tests.support.node import write_config

    series = corpus.synthetic_ct_series(2, rows=16, columns=16)
    with password_cluster() as cluster:
        cluster.execute(
            "CREATE ROLE owner LOGIN CREATEROLE PASSWORD 'owner-password'",
            "CREATE DATABASE pacs OWNER owner",
        )
        url = f"postgresql://owner:owner-password@127.0.0.1:{cluster.port}/pacs"
        (tmp_path / "owner").mkdir()
        sections = {"database": {"url": url}, "storage": {"url": "postgresql"}}
        owner = write_config(tmp_path / "owner", sections)
        runner = CliRunner()
        for command in (["db", "upgrade"], ["db", "grant", "pacs_server"]):
            result = runner.invoke(cli, [*command, "--config", str(owner)])
            assert result.exit_code == 0, result.output
        cluster.execute("ALTER ROLE pacs_server PASSWORD 'server-password'")
        database = {
            "url": f"postgresql://pacs_server:server-password@127.0.0.1:{cluster.port}/pacs"
        }
        storage = {"url": "postgresql"}
        with running_node(tmp_path / "node", database=database, storage=storage) as node:
            assert {s.Status for s in scu.store(node.port, series)} == {0x0000}
            assert len(list(node.archive.store.iterate())) == 2
            instance = node.archive.instance(str(series[0].SOPInstanceUID))
            assert instance is not None
            with node.archive.store.open(instance.blob_key) as blob:
                assert blob.read(132)[128:] == b"DICM"
