"""The supervisor of `openpacs serve` only starts and watches workers, so it must not load the
serving stack: every module it imports stays resident for nothing (issue 6, memory). Before it
becomes the supervisor, `serve` prepares the shared state without the serving stack either.

Each check runs in a fresh interpreter, since this test process has imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

# What the workers need and the supervisor must not carry.
SERVING_STACK = (
    "pydicom",
    "pynetdicom",
    "numpy",
    "fastapi",
    "starlette",
    "uvicorn",
    "boto3",
    "cryptography.x509",
)
# What preparing the shared state needs, and the supervisor (after exec) does not.
PREPARING = ("pydantic", "sqlalchemy", "argon2", "openpacs.config", "openpacs.compose")


def _modules_after(code: str, cwd: Path) -> set[str]:
    """The top-level and dotted module names loaded after running `code` in a new process."""
    script = textwrap.dedent(code) + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1]))


def _loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return [name for name in names if name in modules]


def _config(folder: Path) -> Path:
    password = folder / "admin-password"
    password.write_text("a-long-enough-admin-password", encoding="utf-8")
    config = folder / "openpacs.toml"
    config.write_text(
        textwrap.dedent(f"""\
            [dicom]
            port = 0
            workers = 2
            [http]
            port = 1
            [database]
            url = "sqlite:///{folder / "index.db"}"
            [storage]
            url = "{folder / "blobs"}"
            [auth]
            admin_password_file = "{password}"
            """),
        encoding="utf-8",
    )
    return config


def test_the_command_line_loads_no_subcommand_module() -> None:
    modules = _modules_after("from openpacs.cli.main import cli", Path.cwd())
    assert _loaded(modules, SERVING_STACK + PREPARING) == []
    assert "openpacs.cli.users" not in modules
    assert "openpacs.cli.certs" not in modules


def test_every_command_imported_by_name_resolves() -> None:
    """The lazy commands are named by strings: a wrong one must fail here, not at a site."""
    import click

    from openpacs.cli.main import cli

    context = click.Context(cli)
    names = cli.list_commands(context)
    assert {"users", "certs", "store", "serve"} <= set(names)
    for name in names:
        assert isinstance(cli.get_command(context, name), click.Command), name


def test_the_supervisor_loads_the_standard_library_only() -> None:
    modules = _modules_after("from openpacs.cli import main, supervisor", Path.cwd())
    assert _loaded(modules, SERVING_STACK + PREPARING) == []


def test_serve_prepares_the_shared_state_without_the_serving_stack(tmp_path: Path) -> None:
    config = _config(tmp_path)
    code = f"""
        from pathlib import Path
        from openpacs.cli import main, serve
        from openpacs.compose import prepare_shared_state
        from openpacs.config import load_settings

        prepare_shared_state(load_settings(Path({str(config)!r}), environ={{}}))
    """
    modules = _modules_after(code, tmp_path)
    assert _loaded(modules, SERVING_STACK) == []


def test_the_http_stack_loads_no_token_library_until_a_token_comes() -> None:
    """PyJWT and cryptography (about 9 MB resident) serve single sign-on tokens only."""
    modules = _modules_after("import openpacs.web.app", Path.cwd())
    assert _loaded(modules, ("jwt", "cryptography")) == []
