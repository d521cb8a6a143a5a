"""requirements/test.lock: the exact test environment scripts/test and CI install.

A dependency added to pyproject.toml without refreshing the lock (scripts/lock), a hand edit
that leaves a range or a local path in it, or a suite run in an environment that drifted from
it each fail here, instead of the suite passing today and failing on tomorrow's releases.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements" / "test.lock"
PINNED = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[0-9][0-9A-Za-z.!]*)$")


def _lock_lines() -> list[str]:
    lines = LOCK.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def _locked() -> dict[str, Version]:
    pins = {}
    for line in _lock_lines():
        match = PINNED.match(line)
        assert match, f"not an exact pin: {line!r}"
        pins[canonicalize_name(match["name"])] = Version(match["version"])
    return pins


def _declared() -> list[Requirement]:
    """The dependencies and every extra's (the test extra installs them all), less the
    project's references to its own extras."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    texts = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        texts.extend(extra)
    requirements = [Requirement(text) for text in texts]
    return [r for r in requirements if canonicalize_name(r.name) != project["name"]]


def test_the_test_extra_installs_every_other_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    own = [Requirement(text) for text in extras["test"]]
    included = {name for r in own if r.name == project["name"] for name in r.extras}
    assert included == set(extras) - {"test"}


def test_every_line_is_an_exact_version_from_the_package_index() -> None:
    locked = _locked()
    assert len(locked) == len(_lock_lines()), "a package is pinned twice"
    assert "openpacs" not in locked, "the project itself is installed from the work tree"
    for name, version in locked.items():
        assert version.local is None, f"{name}=={version}: a local build, not on the index"


def test_every_declared_dependency_is_locked_within_its_range() -> None:
    locked = _locked()
    for requirement in _declared():
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement} is not in the lock: run scripts/lock"
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"the lock has {name}=={locked[name]}, outside {requirement}: run scripts/lock"
        )
        for extra in requirement.extras:  # e.g. moto[server], uvicorn[standard]
            for needed in metadata.requires(requirement.name) or []:
                extra_requirement = Requirement(needed)
                if extra_requirement.marker and extra_requirement.marker.evaluate({"extra": extra}):
                    assert canonicalize_name(extra_requirement.name) in locked, (
                        f"{extra_requirement.name} ({requirement.name}[{extra}]) is not locked"
                    )


def test_the_suite_runs_in_the_locked_environment() -> None:
    drifted = []
    for name, version in _locked().items():
        try:
            installed = Version(metadata.version(name))
        except metadata.PackageNotFoundError:
            drifted.append(f"{name}: not installed, locked {version}")
            continue
        if installed != version:
            drifted.append(f"{name}: installed {installed}, locked {version}")
    assert not drifted, (
        "this environment is not the locked one (scripts/test installs it: "
        'pip install -c requirements/test.lock -e ".[test]"):\n' + "\n".join(drifted)
    )
