"""Read deploy/aws's Terraform with python-hcl2, for tests that assert what it deploys."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2

AWS = Path(__file__).resolve().parents[2] / "deploy" / "aws"
MODULES = AWS / "modules"
EXAMPLE = AWS / "examples" / "complete"
_OPTIONS = hcl2.SerializationOptions(
    with_comments=False, explicit_blocks=False, strip_string_quotes=True
)


def tf_files() -> list[Path]:
    return sorted(AWS.rglob("*.tf"))


@functools.cache
def parse(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as file:
        document: dict[str, Any] = hcl2.load(file, serialization_options=_OPTIONS)
    return document


@dataclass(frozen=True)
class Block:
    kind: str  # resource type, data source type, variable name, ...
    name: str
    body: dict[str, Any]
    path: Path


def blocks(folder: Path, section: str) -> Iterator[Block]:
    """Every `section` block ("resource", "data", "variable", "output", "module", ...)."""
    for path in sorted(folder.glob("*.tf")):
        for entry in parse(path).get(section, []):
            for kind, value in entry.items():
                if section in ("resource", "data", "ephemeral"):
                    for name, body in value.items():
                        yield Block(kind, name, body, path)
                else:
                    yield Block(section, kind, value, path)


def resources(folder: Path, kind: str) -> list[Block]:
    return [block for block in blocks(folder, "resource") if block.kind == kind]


def one(folder: Path, kind: str) -> dict[str, Any]:
    (found,) = resources(folder, kind)
    return found.body


def first(body: dict[str, Any], key: str) -> dict[str, Any]:
    """A nested block (python-hcl2 gives blocks as lists of dicts)."""
    value = body[key]
    block: dict[str, Any] = value[0] if isinstance(value, list) else value
    return block


def listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def variables(folder: Path) -> dict[str, dict[str, Any]]:
    return {block.name: block.body for block in blocks(folder, "variable")}


def locals_of(folder: Path) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for path in sorted(folder.glob("*.tf")):
        for entry in parse(path).get("locals", []):
            merged.update(entry)
    return merged


def module_calls(folder: Path) -> dict[str, dict[str, Any]]:
    return {block.name: block.body for block in blocks(folder, "module")}


def policy_statements(folder: Path, name: str) -> list[dict[str, Any]]:
    """The statements of an aws_iam_policy_document data source."""
    for block in blocks(folder, "data"):
        if block.kind == "aws_iam_policy_document" and block.name == name:
            return listed(block.body.get("statement", []))
    raise KeyError(name)


def skip_comments() -> list[tuple[Path, str, str]]:
    """Every `#checkov:skip=ID:reason` in the Terraform: (file, check id, reason)."""
    found = []
    pattern = re.compile(r"#checkov:skip=([A-Z0-9_]+):?(.*)$")
    for path in tf_files():
        for line in path.read_text(encoding="utf-8").splitlines():
            match = pattern.search(line)
            if match:
                found.append((path, match[1], match[2].strip()))
    return found
