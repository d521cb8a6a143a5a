"""Documentation that is generated from code stays current."""

from __future__ import annotations

from pathlib import Path

from openpacs.config import settings_reference

ROOT = Path(__file__).resolve().parents[2]


def test_configuration_reference_is_current() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert settings_reference().rstrip() in text, (
        "docs/configuration.md is stale: regenerate it from settings_reference()"
    )
    rows = [line for line in text.splitlines() if line.startswith("| [")]
    generated = [line for line in settings_reference().splitlines() if line.startswith("| [")]
    assert rows == generated, "docs/configuration.md has table rows the settings do not make"


def test_readme_starts_with_the_two_setup_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = readme.split("```sh\n")[1:3]
    commands = [block.split("\n```")[0].strip() for block in blocks]
    assert commands == [
        "python3 -m pip install -e . && python3 -m openpacs serve",
        "scripts/test",
    ]
    assert (ROOT / "scripts" / "test").stat().st_mode & 0o111
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
