"""deploy/README.md's backup and recovery runbook, run for real: the blocks marked
`<!-- runbook:NAME -->` are taken from the README as written (so they cannot drift) and run
under bash against the local PostgreSQL, a folder store and moto's S3 (the aws CLI included).

Each test makes an archive with `openpacs import`, loses something (the index database, an
image), follows the runbook and checks that every study is found again and `openpacs verify`
finds nothing wrong.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.support import corpus
from tests.support.backends import AWS_ENVIRONMENT
from tests.support.node import write_config
from tests.support.postgres import ADMIN_URL, temporary_database
from tests.support.s3 import REGION, client, make_bucket, moto_server

README = Path(__file__).resolve().parents[2] / "deploy" / "README.md"
BLOCK = re.compile(r"<!-- runbook:([a-z-]+) -->\n```sh\n(.*?)\n```", re.DOTALL)
STUDIES = 3


def runbook() -> dict[str, str]:
    return dict(BLOCK.findall(README.read_text(encoding="utf-8")))


def run(name: str, folder: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    """One block of the runbook, as written, under bash -euo pipefail."""
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OPENPACS_", "PG"))},
        **AWS_ENVIRONMENT,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        **variables,
    }
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", runbook()[name]],
        cwd=folder, env=environment, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def study_uids(url: str) -> set[str]:
    engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"))
    try:
        with engine.connect() as connection:
            return {row[0] for row in connection.execute(text("SELECT study_uid FROM studies"))}
    finally:
        engine.dispose()


def admin(statement: str) -> None:
    engine = create_engine(
        make_url(ADMIN_URL).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    try:
        with engine.connect() as connection:
            connection.execute(text(statement))
    finally:
        engine.dispose()


def make_archive(folder: Path, storage: dict[str, Any], url: str) -> tuple[Path, set[str]]:
    """An archive of a few studies, imported with openpacs; its config and study UIDs."""
    files = folder / "incoming"
    files.mkdir()
    uids = set()
    for number, dataset in enumerate(corpus.small_instances(STUDIES, 2, 2, rows=16, columns=16)):
        corpus.write_part10(dataset, files / f"{number}.dcm")
        uids.add(dataset.StudyInstanceUID)
    config = write_config(folder, {"database": {"url": url}, "storage": storage})
    for command in (["db", "upgrade", "--config", str(config)],
                    ["import", "--config", str(config), "--no-progress", str(files)]):  # fmt: skip
        ok(subprocess.run([sys.executable, "-m", "openpacs", *command], cwd=folder,
                          env={**os.environ, **AWS_ENVIRONMENT}, capture_output=True,
                          text=True, timeout=300, check=False))  # fmt: skip
    assert study_uids(url) == uids
    return config, uids


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


def s3_storage(endpoint: str) -> tuple[str, dict[str, Any]]:
    bucket = make_bucket(endpoint)
    client(endpoint).put_bucket_versioning(
        Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
    )
    storage = {"url": f"s3://{bucket}/archive", "s3_endpoint": endpoint, "s3_region": REGION}
    return bucket, storage


def test_the_runbook_has_its_tested_steps() -> None:
    assert set(runbook()) == {"index-copy", "index-restore", "undelete", "verify", "reindex"}


def test_a_logical_copy_restores_every_study(tmp_path: Path) -> None:
    with temporary_database() as url:
        config, uids = make_archive(tmp_path, {"url": str(tmp_path / "blobs")}, url)
        ok(run("index-copy", tmp_path, INDEX_URL=url))
        restored_db = f"openpacs_restored_{uuid.uuid4().hex[:12]}"
        restored_url = make_url(url).set(database=restored_db).render_as_string(False)
        try:
            ok(run("index-restore", tmp_path, INDEX_URL=url, RESTORED_DB=restored_db,
                   RESTORED_URL=restored_url, CONFIG=str(config)))  # fmt: skip
            assert study_uids(restored_url) == uids
            report = ok(run("verify", tmp_path, CONFIG=str(config),
                            OPENPACS_DATABASE__URL=restored_url))  # fmt: skip
            assert f"instances indexed: {STUDIES * 4}" in report
        finally:
            admin(f'DROP DATABASE IF EXISTS "{restored_db}" WITH (FORCE)')


@pytest.mark.parametrize("store", ["folder", "s3"])
def test_reindex_finds_every_study_after_the_index_is_lost(
    tmp_path: Path, store: str, request: pytest.FixtureRequest
) -> None:
    if store == "s3":
        storage = s3_storage(request.getfixturevalue("s3"))[1]
    else:
        storage = {"url": str(tmp_path / "blobs")}
    with temporary_database() as url:
        config, uids = make_archive(tmp_path, storage, url)
        name = make_url(url).database
        admin(f'DROP DATABASE "{name}" WITH (FORCE)')  # the index is lost, the store is not
        admin(f'CREATE DATABASE "{name}"')  # a new, empty one
        report = ok(run("reindex", tmp_path, CONFIG=str(config)))
        assert study_uids(url) == uids
        assert f"indexed {STUDIES * 4}" in report
        assert "orphan blobs (stored, not indexed): 0" in report


def test_a_deleted_image_comes_back_from_its_versions(tmp_path: Path, s3: str) -> None:
    bucket, storage = s3_storage(s3)
    with temporary_database() as url:
        config, _ = make_archive(tmp_path, storage, url)
        keys = [
            item["Key"]
            for item in client(s3).list_objects_v2(Bucket=bucket, Prefix="archive/")["Contents"]
        ]
        key = sorted(keys)[0]
        client(s3).delete_object(Bucket=bucket, Key=key)  # a delete marker: the mistake
        broken = run("verify", tmp_path, CONFIG=str(config))
        assert broken.returncode == 1
        assert "missing blobs (indexed, not stored): 1" in broken.stdout
        aws = {"AWS_ENDPOINT_URL": s3, "BUCKET": bucket, "KEY": key}
        listing = ok(run("undelete", tmp_path, **aws))
        assert '"deleted"' in listing
        ok(run("verify", tmp_path, CONFIG=str(config)))
        assert len(client(s3).list_objects_v2(Bucket=bucket, Prefix="archive/")["Contents"]) == (
            len(keys)
        )
