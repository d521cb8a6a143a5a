"""Where configuration values come from, and how problems with them are told to the operator.

Lowest to highest precedence: defaults (in the models), the TOML file, ``OPENPACS_<SECTION>__<KEY>``
environment variables, then ``OPENPACS_<SECTION>__<KEY>_FILE`` (the value is read from that file,
the usual way to pass secrets to a container). :func:`gather` merges raw values;
:mod:`openpacs.config` validates them, and :func:`describe_errors` turns what validation found
into ``section.key: problem`` lines that name the environment variable a value came from and
never show a password.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic_core import ErrorDetails, PydanticCustomError

ENV_PREFIX = "OPENPACS_"
FILE_SUFFIX = "_file"

#: section -> key -> whether an environment value for it is JSON (lists are).
Schema = Mapping[str, Mapping[str, bool]]


class _SourceError(Exception):
    """A source cannot be read; the message is ready for the user."""


@dataclass
class Sources:
    """Raw values merged from every source, plus what went wrong while reading them."""

    data: dict[str, Any] = field(default_factory=dict)
    #: "section.key" -> the environment variable that set it, for error messages.
    origins: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    #: The config file could not be read: validating the rest would only add noise.
    fatal: bool = False


def gather(config_file: Path | None, environ: Mapping[str, str], schema: Schema) -> Sources:
    """Merge the TOML file and the environment into one raw ``section -> key -> value`` tree."""
    sources = Sources()
    if config_file is not None:
        try:
            sources.data = read_toml(Path(config_file))
        except _SourceError as exc:
            sources.problems.append(str(exc))
            sources.fatal = True
    plain, from_files = _environment(environ, schema, sources)
    for overrides in (plain, from_files):  # _FILE last: it wins
        for (section, key), (name, value) in sorted(overrides.items()):
            table = sources.data.setdefault(section, {})
            *tables, last = key.split("__")  # a nested table's key: "oidc__issuer"
            for nested in tables:
                table = table.setdefault(nested, {}) if isinstance(table, dict) else None
            if isinstance(table, dict):  # otherwise validation reports "must be a table"
                table[last] = value
                sources.origins[".".join((section, *tables, last))] = name
    return sources


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; every failure names the file (and the line for syntax errors)."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise _SourceError(f"{path}: config file not found") from None
    except OSError as exc:
        raise _SourceError(f"{path}: cannot read config file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise _SourceError(f"{path}: config file is not UTF-8 text") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # the message ends "(at line N, column M)"
        raise _SourceError(f"{path}: invalid TOML: {exc}") from None


_Overrides = dict[tuple[str, str], tuple[str, Any]]


def _environment(
    environ: Mapping[str, str], schema: Schema, sources: Sources
) -> tuple[_Overrides, _Overrides]:
    """Pick the ``OPENPACS_<SECTION>__<KEY>[_FILE]`` variables; names are case-insensitive.

    Variables without ``__`` (``OPENPACS_CONFIG``) belong to tools and are left alone; any
    other ``OPENPACS_`` variable that names no setting is an error, so a typo stops start-up.
    """
    plain: _Overrides = {}
    from_files: _Overrides = {}
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or "__" not in upper[len(ENV_PREFIX) :]:
            continue
        section, _, key = upper[len(ENV_PREFIX) :].lower().partition("__")
        if section not in schema:
            sources.problems.append(f"{name}: unknown section [{section}]")
            continue
        keys = schema[section]
        target = plain
        if key not in keys and key.endswith(FILE_SUFFIX) and key[: -len(FILE_SUFFIX)] in keys:
            key, target = key[: -len(FILE_SUFFIX)], from_files
        if key not in keys:
            sources.problems.append(f"{name}: unknown key {section}.{key}")
            continue
        if (section, key) in target:
            other = target[(section, key)][0]
            sources.problems.append(f"{name}: set more than once (also as {other})")
            continue
        try:
            text = environ[name] if target is plain else _read_secret(name, environ[name])
            target[(section, key)] = (name, _decode_json(name, text) if keys[key] else text)
        except _SourceError as exc:
            sources.problems.append(str(exc))
    return plain, from_files


def _read_secret(name: str, path: str) -> str:
    """Read a ``_FILE`` variable's file, without its trailing newline or spaces."""
    try:
        return Path(path).read_text(encoding="utf-8").rstrip()
    except OSError as exc:
        raise _SourceError(f"{name}: cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise _SourceError(f"{name}: {path} is not UTF-8 text") from None


def _decode_json(name: str, text: str) -> Any:
    """List settings come from the environment as JSON (``["https://a.example"]``)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _SourceError(
            f"{name}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None


# --- problems, as the operator reads them ------------------------------------------------------

_VALUE = "openpacs_value"
_KEYS = "openpacs_keys"


def problem(reason: str) -> PydanticCustomError:
    """A value check's failure, reported against the key being validated."""
    return PydanticCustomError(_VALUE, "{reason}", {"reason": reason})


def key_problems(problems: list[tuple[str, str]]) -> None:
    """Raise cross-key problems found by a model validator, each against its own key."""
    if problems:
        summary = "; ".join(f"{key}: {reason}" for key, reason in problems)
        raise PydanticCustomError(_KEYS, "{summary}", {"summary": summary, "problems": problems})


_MESSAGES = {
    "string_type": "must be a string",
    "model_type": "must be a table",
    "model_attributes_type": "must be a table",
    "dict_type": "must be a table",
    "tuple_type": "must be a list",
    "list_type": "must be a list",
    "missing": "required",
    "extra_forbidden": "unknown key",
}


def describe_errors(errors: Iterable[ErrorDetails], origins: Mapping[str, str]) -> list[str]:
    """Turn pydantic errors into ``section.key: problem`` lines; ``origins`` as in Sources."""
    lines: list[str] = []
    for error in errors:
        loc, kind, ctx = error["loc"], error["type"], error.get("ctx", {})
        got = f" (got {show_value(error['input'])})"
        if kind == _KEYS:
            lines += [_line(loc, key, reason, origins) for key, reason in ctx["problems"]]
            continue
        if kind == "extra_forbidden" and len(loc) == 1:
            lines.append(f"unknown section [{loc[0]}]")
            continue
        if kind == _VALUE:
            reason = ctx["reason"]
        elif kind == "literal_error":
            reason = f"must be one of {ctx['expected']}{got}"
        elif kind in ("missing", "extra_forbidden"):
            reason = _MESSAGES[kind]
        else:
            reason = _MESSAGES[kind] + got if kind in _MESSAGES else error["msg"]
        lines.append(_line(loc, None, reason, origins))
    return lines


_SETTING = re.compile(r"[^.\[]+\.[^.\[]+")


def _line(
    loc: tuple[int | str, ...], key: str | None, reason: str, origins: Mapping[str, str]
) -> str:
    dotted = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)
    dotted = (f"{dotted}.{key}" if key else dotted).lstrip(".")
    setting = _SETTING.match(dotted)  # "dicom.remotes" of "dicom.remotes[1].aet"
    origin = origins.get(dotted) or (origins.get(setting[0]) if setting else None)
    return f"{dotted}: {reason}" + (f" (from {origin})" if origin else "")


def show_value(value: object) -> str:
    """A value as the operator wrote it (TOML-ish), shortened, passwords hidden."""
    if isinstance(value, bool | int | float) or value is None:
        text = json.dumps(value)
    elif isinstance(value, str):
        text = json.dumps(redact_url(value))
    else:  # a table or a list: its items might hold a secret
        text = "a table" if isinstance(value, Mapping) else f"a {type(value).__name__}"
    return text if len(text) <= 60 else text[:57] + "..."


SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_QUERY_SECRET = re.compile(r"(?i)([?&][^=&#]*(?:password|secret|token)[^=&#]*=)[^&#]*")


def redact_url(value: str) -> str:
    """Hide passwords in a URL: ``postgresql://user:***@host/db`` (query ``password=`` too)."""
    scheme = SCHEME.match(value)
    if scheme is None:
        return value
    rest = value[scheme.end() :]
    userinfo, at, host = rest.rpartition("@")  # the last "@": a password may contain "/" or "@"
    if at and ":" in userinfo:
        rest = f"{userinfo.partition(':')[0]}:***@{host}"
    return scheme[0] + _QUERY_SECRET.sub(r"\1***", rest)
