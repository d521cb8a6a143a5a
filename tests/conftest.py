"""Suite-wide rules and shared resources.

In CI (CI=true) a skipped test is a failure: every test here needs only tools the project
installs (scripts/test), so a skip means something is missing, not optional.

`backend` / `module_backend` run a test once per backend combination; PostgreSQL and S3 are
session resources (a throw-away database, moto's server) created only when a test needs them.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator

import pytest

from tests.support.backends import AWS_ENVIRONMENT, Backend
from tests.support.backends import NAMES as BACKEND_NAMES
from tests.support.postgres import temporary_database
from tests.support.s3 import moto_server


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.skipped and os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, which forbids skips: {reason}"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """One throw-away PostgreSQL database for the session (tests truncate it)."""
    with temporary_database() as url:
        yield url


@pytest.fixture(scope="session")
def s3_endpoint_session() -> Iterator[str]:
    """moto's S3 over HTTP on a loopback port, with openpacs' credentials in the environment."""
    saved = {key: os.environ.get(key) for key in AWS_ENVIRONMENT}
    os.environ.update(AWS_ENVIRONMENT)
    try:
        with moto_server() as endpoint:
            yield endpoint
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _backend(request: pytest.FixtureRequest) -> Backend:
    name = request.param
    if name == "sqlite-folder":
        return Backend(name)
    url = request.getfixturevalue("postgres_url")
    if name == "postgresql-folder":
        return Backend(name, postgres_url=url)
    if name == "postgresql-postgresql":
        return Backend(name, postgres_url=url, blobs_in_database=True)
    return Backend(
        name, postgres_url=url, s3_endpoint=request.getfixturevalue("s3_endpoint_session")
    )


@pytest.fixture(params=BACKEND_NAMES)
def backend(request: pytest.FixtureRequest) -> Backend:
    """Each backend combination in turn, for a function-scoped node."""
    return _backend(request)


@pytest.fixture(scope="module", params=BACKEND_NAMES)
def module_backend(request: pytest.FixtureRequest) -> Backend:
    """Each backend combination in turn, for a module-scoped node."""
    return _backend(request)
