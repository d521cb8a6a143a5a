"""Find and run DCMTK's command-line tools (Debian package `dcmtk`).

Other packages (pynetdicom's apps, for one) install Python scripts with the same names that
may come first on PATH, so a tool only counts when it is a DCMTK executable.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

import pytest

DCMTK_DIRS = ("/usr/bin", "/usr/local/bin")


@functools.cache
def dcmtk_tool(name: str) -> str | None:
    candidates = [Path(d) / name for d in DCMTK_DIRS]
    found = shutil.which(name)
    if found:
        candidates.append(Path(found))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK) and _is_dcmtk(candidate):
            return str(candidate)
    return None


def _is_dcmtk(path: Path) -> bool:
    with path.open("rb") as file:
        if file.read(4) != b"\x7fELF":
            return False
    result = subprocess.run(
        [str(path), "--version"], capture_output=True, text=True, timeout=10, check=False
    )
    # Debian prints "$dcmtk: echoscu v3.6.7 ...": lower case, so compare without case.
    return "dcmtk" in (result.stdout + result.stderr).lower()


def require(name: str) -> str:
    """The tool's path, or skip the test (CI turns that skip into a failure)."""
    path = dcmtk_tool(name)
    if path is None:
        pytest.skip(f"DCMTK tool {name} is not installed (apt-get install dcmtk)")
    return path


def dcmtk_env() -> dict[str, str]:
    """Debian's DCMTK leaves Nagle's algorithm on unless TCP_NODELAY is set, which stalls
    exchanges with delayed ACKs to a few messages per second."""
    return {**os.environ, "TCP_NODELAY": "1"}


def run(name: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require(name), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dcmtk_env(),
        check=False,
    )
