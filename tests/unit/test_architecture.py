"""The layer picture in docs/architecture.md stays true: dependencies point down only."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "openpacs"

# What each layer may import, besides the standard library and itself.
ALLOWED: dict[str, set[str]] = {
    # numpy and Pillow for decoding and rendering pixels only.
    "dicom": {"pydicom", "numpy", "PIL", "openpacs.errors", "openpacs.dicom"},
    "storage": {
        "openpacs.errors",
        "openpacs.grouping",
        "openpacs.storage",
        "boto3",
        "botocore",
        "s3transfer",
        "urllib3",
        "psycopg",
        "sqlalchemy",  # the engine's pool only, for the PostgreSQL store
    },
    "index": {
        "sqlalchemy",
        "alembic",
        "psycopg",
        "openpacs.errors",
        "openpacs.grouping",
        "openpacs.dicom",
        "openpacs.index",
        "openpacs.archive.records",  # the domain types it stores and returns
    },
    # TLS contexts serve DICOM and HTTP alike, so they sit above both and know neither.
    "tls": {"openpacs.errors"},
    "archive": {
        "openpacs.errors",
        "openpacs.dicom",
        "openpacs.archive",
        "openpacs.archive.records",
        "openpacs.storage.base",
    },
}
# Never imported by these layers, whatever else they use.
FORBIDDEN: dict[str, set[str]] = {
    "dimse": {"openpacs.web", "fastapi", "starlette", "sqlalchemy", "boto3"},
    "web": {"openpacs.dimse", "pynetdicom", "sqlalchemy", "boto3"},
}
THIRD_PARTY_STDLIB_LIKE = {"typing_extensions", "_typeshed"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _third_party_or_ours(name: str) -> bool:
    import sys

    top = name.split(".")[0]
    return top not in sys.stdlib_module_names and top not in THIRD_PARTY_STDLIB_LIKE


def _layer_files(layer: str) -> list[Path]:
    """A layer's package, or a top-level module of its own (`tls.py`)."""
    module = PACKAGE / f"{layer}.py"
    files = sorted((PACKAGE / layer).rglob("*.py")) or ([module] if module.exists() else [])
    assert files, f"no layer {layer}"
    return files


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_what_it_may(layer: str) -> None:
    problems = []
    for path in _layer_files(layer):
        for name in _imports(path):
            if not _third_party_or_ours(name):
                continue
            if not any(name == a or name.startswith(a + ".") for a in ALLOWED[layer]):
                problems.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert problems == []


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_front_doors_stay_apart(layer: str) -> None:
    problems = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in _layer_files(layer)
        for name in _imports(path)
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[layer])
    ]
    assert problems == []


def _private_reaches(path: Path) -> Iterator[str]:
    """Underscored names imported from the index, and `self._part._member` reaches into a
    collaborator's private members."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("openpacs.index"):
            yield from (
                f"imports {node.module}.{alias.name}"
                for alias in node.names
                if alias.name.startswith("_")
            )
        elif (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and isinstance(node.value, ast.Attribute)
            and node.value.attr.startswith("_")
            and isinstance(node.value.value, ast.Name)
            and node.value.value.id == "self"
        ):
            yield f"uses self.{node.value.attr}.{node.attr}"


def test_no_module_uses_private_names_of_the_index() -> None:
    """The index is used through its public interface (the REST browse through
    `Finder.where`, `joined`, `table_of`), so the finder's helpers can change alone."""
    offenders = [
        f"{path.relative_to(PACKAGE)} {reach}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for reach in _private_reaches(path)
    ]
    assert offenders == []


def test_only_compose_and_cli_pick_implementations() -> None:
    """Concrete backends are chosen in compose.py alone (and tests)."""
    concrete = {"openpacs.storage.folder", "openpacs.index.catalog", "openpacs.index.engine"}
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if path.name != "compose.py"
        and not any(path.is_relative_to(PACKAGE / layer) for layer in ("storage", "index"))
        and _imports(path) & concrete
    ]
    assert offenders == []


DOMAIN_TYPES = "openpacs.archive.records"


def _domain_type_names() -> set[str]:
    """The classes and aliases `archive/records.py` defines at its top level."""
    tree = ast.parse((PACKAGE / "archive" / "records.py").read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def test_domain_types_come_from_the_archive() -> None:
    """The archive's ports and use cases speak of users, jobs, audit events and stored
    instances; the index implements the ports, so those types live in `archive/`, and every
    file imports them from there, never through a module that happens to use them."""
    domain = _domain_type_names()
    assert {"StoredInstance", "User", "Role", "AuditEvent", "Job", "Match"} <= domain
    assert not (PACKAGE / "index" / "records.py").exists()
    offenders = []
    for folder in ("src", "tests", "bench"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    offenders += [
                        f"{path.relative_to(ROOT)} imports {alias.name}"
                        for alias in node.names
                        if alias.name.startswith("openpacs.index.records")
                    ]
                if not isinstance(node, ast.ImportFrom) or not node.module:
                    continue
                module = node.module
                if module == "openpacs.index.records" or (
                    module.startswith("openpacs.")
                    and module != DOMAIN_TYPES
                    and {alias.name for alias in node.names} & domain
                ):
                    offenders.append(f"{path.relative_to(ROOT)} imports from {module}")
    assert offenders == []


# Machinery that imports a module named at run time. importlib.resources and importlib.metadata
# read files and package metadata, and import nothing.
_DYNAMIC_MODULES = {"importlib.util", "pkgutil", "runpy"}
_STATIC_IMPORTLIB_PARTS = {"resources", "metadata", "abc", "machinery"}
# The places that import by name at run time, and why.
DYNAMIC_IMPORTS_ALLOWED = {
    "errors.py": "find_spec says whether an optional extra is installed without importing it",
    "cli/main.py": "subcommands with heavy imports (cryptography) load only when they run",
}


def _dynamic_imports(path: Path) -> list[str]:
    """What in `path` can import a module by a name computed at run time."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [
                alias.name
                for alias in node.names
                if alias.name == "importlib" or alias.name in _DYNAMIC_MODULES
            ]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module in _DYNAMIC_MODULES:
                found.append(node.module)
            elif node.module == "importlib":
                found += [
                    f"importlib.{alias.name}"
                    for alias in node.names
                    if alias.name not in _STATIC_IMPORTLIB_PARTS
                ]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "__import__"
        ):
            found.append("__import__()")
    return found


def test_routers_are_imported_plainly() -> None:
    """The app imports its routers and the UI like any module (they always ship): a missing
    one is an import error at start-up, never a door silently left out."""
    offenders = [
        f"{path.relative_to(PACKAGE)} uses {name}"
        for path in _layer_files("web")
        for name in _dynamic_imports(path)
    ]
    assert offenders == []


def test_modules_are_imported_dynamically_only_where_that_is_the_point() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE)} uses {name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.relative_to(PACKAGE).as_posix() not in DYNAMIC_IMPORTS_ALLOWED
        for name in _dynamic_imports(path)
    ]
    assert offenders == []
    for allowed in DYNAMIC_IMPORTS_ALLOWED:  # an exemption no longer needed goes too
        assert _dynamic_imports(PACKAGE / allowed), allowed


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        nested = getattr(route, "original_router", None)  # FastAPI keeps an included router
        if nested is not None:
            yield from _api_routes(nested.routes)
        elif isinstance(route, APIRoute):
            yield route


def test_every_route_declares_its_audit_action() -> None:
    """The audit trail records what each route declares (`openpacs.web.audit.audited`), so a
    new route cannot touch patient data unrecorded by being left out of a list of paths."""
    from openpacs.web.app import ROUTERS
    from openpacs.web.audit import declares_action

    routes = [route for router in ROUTERS for route in _api_routes(router.routes)]
    undeclared = [
        f"{sorted(route.methods)} {route.path} ({route.endpoint.__module__})"
        for route in routes
        if not declares_action(route.endpoint)
    ]
    assert len(routes) > 50
    assert undeclared == []
