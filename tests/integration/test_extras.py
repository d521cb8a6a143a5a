"""The optional extras ([s3], [postgresql]): the embedded default serves without them, and a
configuration that needs a missing one stops with an error naming it.

A missing extra is simulated in the child process: a sitecustomize module sets the extra's
modules to None in sys.modules, which is how Python marks a module as not importable.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.corpus import small_instances
from tests.support.node import write_config
from tests.support.process import echo_status, free_port, run_cli, serving
from tests.support.scu import store

OPTIONAL = ("boto3", "botocore", "s3transfer", "psycopg", "psycopg_binary")


def _without(folder: Path, modules: tuple[str, ...] = OPTIONAL) -> dict[str, str]:
    """An environment whose Python cannot import `modules`."""
    site = folder / "without-extras"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        f"import sys\nfor name in {modules!r}:\n    sys.modules[name] = None\n",
        encoding="utf-8",
    )
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path}


def test_the_simulation_hides_the_modules(tmp_path: Path) -> None:
    code = "import importlib.util as u; print(u.find_spec('boto3'), u.find_spec('psycopg'))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **_without(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout.strip() == "None None", result.stderr


@pytest.mark.slow
def test_the_embedded_default_serves_without_the_extras(tmp_path: Path) -> None:
    port, http_port = free_port(), free_port()
    (workdir := tmp_path / "work").mkdir()
    env = {
        **_without(tmp_path),
        "OPENPACS_DICOM__PORT": str(port),
        "OPENPACS_HTTP__PORT": str(http_port),
    }
    with serving(None, port=port, log_dir=tmp_path, cwd=workdir, env=env) as server:
        health = httpx.get(f"http://127.0.0.1:{http_port}/health", timeout=30)
        assert health.json() == {"status": "ok"}
        assert echo_status(port) == 0x0000
        statuses = store(port, [next(small_instances(1, 1, 1))])
        assert [s.Status for s in statuses] == [0x0000], server.diagnostics()
        assert "ModuleNotFoundError" not in server.stderr()


@pytest.mark.parametrize(
    ("sections", "extra", "finding"),
    [
        pytest.param({"storage": {"url": "s3://bucket/prefix"}}, "s3", "store", id="s3-store"),
        pytest.param(
            {"storage": {"url": "postgresql://openpacs@127.0.0.1:1/blobs"}},
            "postgresql",
            "store",
            id="pg-store",
        ),
        pytest.param(
            {"database": {"url": "postgresql://openpacs@127.0.0.1:1/openpacs"}},
            "postgresql",
            "index",
            id="pg-index",
        ),
    ],
)
def test_check_names_the_missing_extra(
    tmp_path: Path, sections: dict[str, dict[str, str]], extra: str, finding: str
) -> None:
    config = write_config(tmp_path, sections)
    result = run_cli(["check", "--config", str(config)], env=_without(tmp_path), timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    failed = [line for line in result.stdout.splitlines() if f"{finding}: FAILED" in line]
    assert failed, result.stdout
    assert f'pip install "openpacs[{extra}]"' in failed[0], result.stdout
    assert "Traceback" not in result.stderr, result.stderr


def test_serve_with_an_s3_store_stops_naming_the_extra(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"storage": {"url": "s3://bucket/prefix"}})
    result = run_cli(["serve", "--config", str(config)], env=_without(tmp_path), timeout=60)
    assert result.returncode != 0
    assert 'pip install "openpacs[s3]"' in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
