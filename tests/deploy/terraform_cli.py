"""Run the real Terraform CLI over deploy/aws, offline, against a local mirror of the
hashicorp/aws provider.

The mirror is found, in order, in `OPENPACS_TF_PLUGIN_DIR` (scripts/test sets it), the
`filesystem_mirror` of the CLI configuration named by `TF_CLI_CONFIG_FILE`, and Terraform's
implied mirror directories (~/.terraform.d/plugins, $XDG_DATA_HOME and $XDG_DATA_DIRS
terraform/plugins). Each run copies deploy/aws to a temporary folder, so no `.terraform`
folder is left in the repository.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy.terraform_model import AWS

PROVIDER = Path("registry.terraform.io") / "hashicorp" / "aws"
_MIRROR_PATH = re.compile(r'filesystem_mirror\s*\{[^}]*path\s*=\s*"([^"]+)"', re.S)


def _candidates() -> list[Path]:
    found = []
    if os.environ.get("OPENPACS_TF_PLUGIN_DIR"):
        found.append(Path(os.environ["OPENPACS_TF_PLUGIN_DIR"]))
    config = Path(os.environ.get("TF_CLI_CONFIG_FILE", "") or Path.home() / ".terraformrc")
    if config.is_file():
        found += [Path(path) for path in _MIRROR_PATH.findall(config.read_text())]
    home = Path.home()
    data_home = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    data_dirs = os.environ.get("XDG_DATA_DIRS") or "/usr/local/share:/usr/share"
    found.append(home / ".terraform.d" / "plugins")
    found += [
        Path(folder) / "terraform" / "plugins" for folder in [data_home, *data_dirs.split(":")]
    ]
    return found


def plugin_dir() -> Path:
    for candidate in _candidates():
        if (candidate / PROVIDER).is_dir():
            return candidate
    pytest.skip("no local mirror of the hashicorp/aws provider (scripts/test finds one)")


def terraform_binary() -> str:
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip("terraform is not installed")
    return binary


@dataclass(frozen=True)
class Terraform:
    """The CLI over a copy of deploy/aws."""

    binary: str
    plugins: Path
    root: Path
    environ: dict[str, str]

    def folder(self, relative: str) -> Path:
        return self.root / relative

    def run(
        self, relative: str, *args: str, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, *args], cwd=self.folder(relative), env=self.environ,
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip

    def init(self, relative: str) -> None:
        result = self.run(
            relative, "init", "-backend=false", "-input=false", "-no-color",
            f"-plugin-dir={self.plugins}",
        )  # fmt: skip
        assert result.returncode == 0, f"{relative}: {result.stdout}\n{result.stderr}"


def terraform(folder: Path, relatives: list[str]) -> Terraform:
    """A copy of deploy/aws in `folder`, with `relatives` (e.g. "modules/network") initialised
    against the mirror, two at a time."""
    root = folder / "aws"
    shutil.copytree(AWS, root, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*"))
    config = folder / "terraformrc"
    config.write_text("", encoding="utf-8")  # none of the user's settings
    environ = {
        **os.environ,
        "TF_CLI_CONFIG_FILE": str(config),
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
        "CHECKPOINT_DISABLE": "1",  # no version check over the network
        "TF_DATA_DIR": ".terraform",
    }
    cli = Terraform(terraform_binary(), plugin_dir(), root, environ)
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(cli.init, relatives))
    return cli
