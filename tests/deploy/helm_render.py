"""Render deploy/helm/openpacs the way `helm template` does, for the Go-template subset the
chart uses (helm itself is in none of the registries these machines reach).

Supported, with Go's semantics: text and `{{ }}` actions with `{{-`/`-}}` whitespace trimming;
`define`, `include`, `if`/`else`/`end`, `range`/`end` (dot is the element); pipelines over
`.Values...`, `.Release.Name/Namespace`, `.Chart.Name/Version/AppVersion`, `.field` of the dot,
and string literals; the functions quote, toYaml, toJson, nindent and indent. Anything else
raises, so a template the renderer does not understand fails the test instead of rendering
wrongly.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.S)


@dataclass
class _Node:
    kind: str  # text, expr, if, range, define
    value: str = ""
    body: list[_Node] = field(default_factory=list)
    orelse: list[_Node] = field(default_factory=list)


def _tokens(source: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    for match in _ACTION.finditer(source):
        text = source[position : match.start()]
        if match[1]:
            text = text.rstrip()
        tokens.append(("text", text))
        tokens.append(("action", match[2]))
        position = match.end()
        if match[3]:
            rest = source[position:]
            position += len(rest) - len(rest.lstrip())
    tokens.append(("text", source[position:]))
    return tokens


def _parse(tokens: list[tuple[str, str]]) -> list[_Node]:
    root: list[_Node] = []
    stack: list[tuple[_Node | None, list[_Node]]] = [(None, root)]
    for kind, value in tokens:
        target = stack[-1][1]
        if kind == "text":
            if value:
                target.append(_Node("text", value))
            continue
        word = value.split(None, 1)[0] if value else ""
        if word in ("if", "range", "define"):
            node = _Node(word, value.split(None, 1)[1])
            target.append(node)
            stack.append((node, node.body))
        elif word == "else":
            node = stack[-1][0]
            if node is None or node.kind != "if":
                raise ValueError("else outside if")
            stack[-1] = (node, node.orelse)
        elif word == "end":
            stack.pop()
        elif value.startswith("/*"):
            continue
        else:
            target.append(_Node("expr", value))
    assert len(stack) == 1, "unclosed block"
    return root


class Chart:
    def __init__(self, folder: Path, values: dict[str, Any] | None = None,
                 release: str = "pacs", namespace: str = "imaging") -> None:  # fmt: skip
        self.folder = folder
        meta = yaml.safe_load((folder / "Chart.yaml").read_text(encoding="utf-8"))
        self.values = yaml.safe_load((folder / "values.yaml").read_text(encoding="utf-8"))
        _merge(self.values, values or {})
        self.top = {
            "Values": self.values,
            "Release": {"Name": release, "Namespace": namespace},
            "Chart": {
                "Name": meta["name"],
                "Version": meta["version"],
                "AppVersion": meta["appVersion"],
            },
        }
        self.defines: dict[str, list[_Node]] = {}
        for path in sorted((folder / "templates").glob("*.tpl")):
            for node in _parse(_tokens(path.read_text(encoding="utf-8"))):
                if node.kind == "define":
                    self.defines[json.loads(node.value)] = node.body

    def render(self) -> dict[str, str]:
        """Template name -> rendered text (helpers excluded, blank results dropped)."""
        rendered = {}
        for path in sorted((self.folder / "templates").glob("*.yaml")):
            text = self._run(_parse(_tokens(path.read_text(encoding="utf-8"))), self.top)
            if text.strip():
                rendered[path.name] = text
        return rendered

    def manifests(self) -> list[dict[str, Any]]:
        return [
            document
            for text in self.render().values()
            for document in yaml.safe_load_all(text)
            if document
        ]

    def _run(self, nodes: list[_Node], dot: Any) -> str:
        out = []
        for node in nodes:
            if node.kind == "text":
                out.append(node.value)
            elif node.kind == "expr":
                out.append(_show(self._pipeline(node.value, dot)))
            elif node.kind == "if":
                branch = node.body if _truthy(self._pipeline(node.value, dot)) else node.orelse
                out.append(self._run(branch, dot))
            elif node.kind == "range":
                for item in self._pipeline(node.value, dot) or []:
                    out.append(self._run(node.body, item))
            elif node.kind == "define":
                continue
            else:
                raise ValueError(node.kind)
        return "".join(out)

    def _pipeline(self, expression: str, dot: Any) -> Any:
        stages = [stage.strip() for stage in expression.split("|")]
        value: Any = self._call(shlex.split(stages[0], posix=False), dot, None)
        for stage in stages[1:]:
            value = self._call(shlex.split(stage, posix=False), dot, value)
        return value

    def _call(self, words: list[str], dot: Any, piped: Any) -> Any:
        name, args = words[0], [self._operand(word, dot) for word in words[1:]]
        if piped is not None or name in _FUNCTIONS or name == "include":
            if piped is not None:
                args.append(piped)
            if name == "include":
                template, context = args
                return self._run(self.defines[template], context)
            return _FUNCTIONS[name](*args)
        return self._operand(name, dot)

    def _operand(self, word: str, dot: Any) -> Any:
        if word.startswith('"'):
            return json.loads(word)
        if word.isdigit():
            return int(word)
        if word == ".":
            return dot
        if word.startswith(".Values.") or word.startswith((".Release.", ".Chart.")):
            value: Any = self.top
            parts = word[1:].split(".")
        elif word.startswith("."):
            value, parts = dot, word[1:].split(".")
        else:
            raise ValueError(f"unsupported operand {word!r}")
        for part in parts:
            value = value.get(part) if isinstance(value, dict) else None
        return value


def _merge(base: dict[str, Any], override: dict[str, Any]) -> None:
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def _truthy(value: Any) -> bool:
    return bool(value)


def _show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _to_yaml(value: Any) -> str:
    if value in ({}, [], None):
        return "{}" if not isinstance(value, list) else "[]"
    return yaml.safe_dump(value, default_flow_style=False, sort_keys=True).rstrip("\n")


def _indent(width: int, text: str) -> str:
    return "\n".join(" " * width + line if line else line for line in str(text).split("\n"))


_FUNCTIONS = {
    "quote": lambda value: json.dumps(_show(value)),
    "toYaml": _to_yaml,
    "toJson": lambda value: json.dumps(value, separators=(",", ":")),
    "indent": _indent,
    "nindent": lambda width, text: "\n" + _indent(width, text),
}
