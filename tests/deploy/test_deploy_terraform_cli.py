"""Terraform itself over deploy/aws, offline: `terraform init` against the local mirror of the
pinned AWS provider and `terraform validate` (every argument, attribute and reference checked
against the provider's schema), and `terraform fmt`.

Validating the example validates every module too, as the example calls them all (checked
below); each validate loads the 700 MB provider, so the modules are not validated again one
by one (OPENPACS_TF_VALIDATE_EACH=1 does that as well).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.deploy.terraform_cli import Terraform, terraform
from tests.deploy.terraform_model import AWS, EXAMPLE, MODULES, module_calls

MODULE_FOLDERS = [str(p.relative_to(AWS)) for p in sorted(MODULES.iterdir()) if p.is_dir()]
FOLDERS = [str(EXAMPLE.relative_to(AWS))] + (
    MODULE_FOLDERS if os.environ.get("OPENPACS_TF_VALIDATE_EACH") == "1" else []
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Terraform:
    return terraform(tmp_path_factory.mktemp("terraform"), FOLDERS)


def test_every_module_and_the_example_validate(cli: Terraform) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(
            zip(
                FOLDERS,
                pool.map(lambda f: cli.run(f, "validate", "-no-color"), FOLDERS),
                strict=True,
            )
        )
    failures = {
        folder: result.stdout + result.stderr
        for folder, result in results.items()
        if result.returncode != 0
    }
    assert not failures, failures


def test_the_example_calls_every_module() -> None:
    sources = {call["source"] for call in module_calls(EXAMPLE).values()}
    assert sources == {f"../../{folder}" for folder in MODULE_FOLDERS}


def test_the_example_locks_the_provider_it_was_validated_with(cli: Terraform) -> None:
    """init with the committed lock file succeeded (it verifies the hash); it is unchanged."""
    committed = (EXAMPLE / ".terraform.lock.hcl").read_text(encoding="utf-8")
    assert (Path(cli.folder("examples/complete")) / ".terraform.lock.hcl").read_text() == committed


def test_the_terraform_is_formatted(cli: Terraform) -> None:
    result = cli.run(".", "fmt", "-check", "-recursive", "-diff", "-no-color")
    assert result.returncode == 0, result.stdout + result.stderr
