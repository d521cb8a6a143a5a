"""`openpacs users`: add, passwd, remove, list on a real database, and what the server sees."""

from __future__ import annotations

from pathlib import Path

import httpx
from click.testing import CliRunner

from openpacs.cli.main import cli
from tests.support.backends import Backend
from tests.support.node import write_config
from tests.support.web import running_web_node


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_users_commands_change_who_may_log_in(tmp_path: Path, backend: Backend) -> None:
    with running_web_node(tmp_path / "node", backend=backend) as web:
        config = write_config(tmp_path, {"database": {"url": web.settings.database.url}})
        secret = tmp_path / "pw"
        secret.write_text("first-password\n", encoding="utf-8")
        code, output = _run(
            "users", "add", "alice", "--role", "uploader", "--password-file", str(secret),
            "--config", str(config),
        )  # fmt: skip
        assert (code, output) == (0, "created user alice role=uploader\n")
        code, output = _run("users", "add", "alice", "--password-file", str(secret),
                            "--config", str(config))  # fmt: skip
        assert code == 1
        assert "already exists" in output
        assert httpx.get(f"{web.url}/api/session", auth=("alice", "first-password")).json() == {
            "username": "alice",
            "role": "uploader",
            "sso": False,
        }
        code, output = _run("users", "list", "--config", str(config))
        assert code == 0
        assert [line.split("\t")[:2] for line in output.splitlines()] == [
            ["admin", "admin"],
            ["alice", "uploader"],
        ]
        secret.write_text("second-password\n", encoding="utf-8")
        code, _ = _run("users", "passwd", "alice", "--password-file", str(secret),
                       "--config", str(config))  # fmt: skip
        assert code == 0
        old = httpx.get(f"{web.url}/api/session", auth=("alice", "first-password"))
        assert old.status_code == 401
        new = httpx.get(f"{web.url}/api/session", auth=("alice", "second-password"))
        assert new.status_code == 200
        assert _run("users", "remove", "alice", "--config", str(config))[0] == 0
        gone = httpx.get(f"{web.url}/api/session", auth=("alice", "second-password"))
        assert gone.status_code == 401
        code, output = _run("users", "remove", "alice", "--config", str(config))
        assert code == 1
        assert "no user" in output


def test_short_passwords_are_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path, {})
    secret = tmp_path / "pw"
    secret.write_text("short\n", encoding="utf-8")
    code, output = _run(
        "users", "add", "bob", "--password-file", str(secret), "--config", str(config)
    )
    assert code == 1
    assert "at least 8 characters" in output
