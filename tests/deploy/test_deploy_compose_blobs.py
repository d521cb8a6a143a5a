"""The compose stack's blobs-in-PostgreSQL override: it only points openpacs' store at the
index database, and the stack's configuration then loads with a PostgreSQL blob store."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import yaml

from openpacs.config import load_settings
from tests.deploy.test_deploy_container import COMPOSE

OVERRIDE = COMPOSE / "compose.blobs-in-postgres.yaml"


def test_the_override_switches_the_store_to_the_index_database(tmp_path: Path) -> None:
    override: dict[str, Any] = yaml.safe_load(OVERRIDE.read_text(encoding="utf-8"))
    assert override == {
        "services": {"openpacs": {"environment": {"OPENPACS_STORAGE__URL": "postgresql"}}}
    }
    stack: dict[str, Any] = yaml.safe_load((COMPOSE / "compose.yaml").read_text("utf-8"))
    environ = {
        key: value
        for key, value in stack["services"]["openpacs"]["environment"].items()
        if key.startswith("OPENPACS_") and not key.endswith("_FILE")
    }
    environ |= override["services"]["openpacs"]["environment"]
    # The stack's index and store sections (its TLS and secret files exist only in the stack).
    sections = tomllib.loads((COMPOSE / "openpacs.toml").read_text(encoding="utf-8"))
    config = tmp_path / "openpacs.toml"
    lines = [f"[{name}]" for name in ("database", "storage")]
    config.write_text(
        "\n".join(
            f"{header}\n"
            + "\n".join(f"{k} = {json.dumps(v)}" for k, v in sections[header[1:-1]].items())
            for header in lines
        )
        + "\n",
        encoding="utf-8",
    )
    settings = load_settings(config, environ=environ)
    assert settings.storage.kind == "postgresql"
    assert settings.storage.url == "postgresql"
    assert settings.database.url.startswith("postgresql://openpacs@postgres:5432/openpacs")
