"""`openpacs store migrate`: every direction between the folder, S3 and PostgreSQL stores,
with a server storing meanwhile; resuming, verifying, refusing."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from pydicom.uid import ExplicitVRLittleEndian

from openpacs.archive.store_migration import migrate_blobs
from openpacs.compose import build_archive, build_store
from openpacs.config import load_settings
from tests.support import corpus, postgres, scu
from tests.support.blobs import put, read_at
from tests.support.node import write_config
from tests.support.process import child_environ, free_port, openpacs_command, run_cli, serving
from tests.support.s3 import REGION, client

STORES = ("folder", "s3", "postgresql")
DIRECTIONS = [(a, b) for a in STORES for b in STORES if a != b]
MIGRATE_TIMEOUT = 120.0


def _url(kind: str, folder: Path, s3_endpoint: str) -> str:
    if kind == "folder":
        return str(folder)
    if kind == "s3":
        bucket = f"openpacs-test-{uuid.uuid4().hex[:16]}"
        s3 = client(s3_endpoint)
        try:
            s3.create_bucket(Bucket=bucket)
        finally:
            s3.close()  # its pooled connection would otherwise be left to the GC
        return f"s3://{bucket}/archive"
    return "postgresql"  # the index database


def _config(
    tmp_path: Path, postgres_url: str, s3_endpoint: str, storage_url: str, port: int
) -> Path:
    postgres.truncate(postgres_url)
    storage: dict[str, Any] = {"url": storage_url, "s3_endpoint": s3_endpoint}
    storage |= {"s3_region": REGION}
    return write_config(
        tmp_path,
        {"database": {"url": postgres_url}, "storage": storage, "dicom": {"port": port}},
    )


def _instances(count: int, seed: int, study_uid: str | None = None) -> list[Any]:
    return corpus.synthetic_ct_series(
        count, rows=32, columns=32, seed=seed, study_uid=study_uid, series_number=seed
    )


def _counts(output: str) -> dict[str, int]:
    """The counts of the command's summary lines ("copied:   3 (1234 bytes)")."""
    return {
        line.split(":")[0]: int(line.split(":")[1].split()[0])
        for line in output.splitlines()
        if line.split(":")[0] in ("copied", "already", "vanished", "failed")
    }


def _stored(port: int, datasets: list[Any]) -> None:
    assert [int(s.Status) for s in scu.store(port, datasets)] == [0] * len(datasets)


@pytest.mark.parametrize(
    ("source", "target"), DIRECTIONS, ids=[f"{a}-to-{b}" for a, b in DIRECTIONS]
)
def test_migrate_while_a_server_stores(
    tmp_path: Path, postgres_url: str, s3_endpoint_session: str, source: str, target: str
) -> None:
    """Copy while the server takes more instances, switch the configuration, restart on the
    new store, copy the stragglers from the old one; then the new store holds every
    instance, verified against the index's checksums, and a C-GET returns them."""
    port = free_port()
    old = _url(source, tmp_path / "old-blobs", s3_endpoint_session)
    new = _url(target, tmp_path / "new-blobs", s3_endpoint_session)
    config = _config(tmp_path, postgres_url, s3_endpoint_session, old, port)
    first = _instances(6, seed=1)
    second = _instances(4, seed=2, study_uid=str(first[0].StudyInstanceUID))
    with serving(config, port=port, log_dir=tmp_path) as server:
        _stored(port, first)
        command = openpacs_command(
            "store", "migrate", "--config", str(config), "--to", new, "--switch"
        )
        with subprocess.Popen(
            command, env=child_environ(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ) as migration:
            _stored(port, second)  # while the migration runs
            out, err = migration.communicate(timeout=MIGRATE_TIMEOUT)
        assert migration.returncode == 0, out + err + server.diagnostics()
        copied_first = _counts(out)
        assert copied_first["failed"] == 0
        assert copied_first["copied"] >= 6  # at least what was stored before it started
    assert load_settings(config, environ={}).storage.url == new

    with serving(config, port=port, log_dir=tmp_path, name="switched"):
        stragglers = run_cli(
            ["store", "migrate", "--config", str(config), "--from", old, "--to", new],
            timeout=MIGRATE_TIMEOUT,
        )
        assert stragglers.returncode == 0, stragglers.stdout + stragglers.stderr
        second_run = _counts(stragglers.stdout)
        assert second_run["failed"] == 0
        assert second_run["already"] == copied_first["copied"]  # resumed, not copied again
        assert second_run["copied"] == 10 - copied_first["copied"]
        study = str(first[0].StudyInstanceUID)
        _, received = scu.get(
            port,
            scu.identifier("STUDY", StudyInstanceUID=study),
            [(str(first[0].SOPClassUID), [ExplicitVRLittleEndian])],
        )
        assert sorted(str(d.SOPInstanceUID) for d in received.datasets) == sorted(
            str(d.SOPInstanceUID) for d in first + second
        )

    verify = run_cli(["verify", "--config", str(config), "--checksums"], timeout=MIGRATE_TIMEOUT)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "instances indexed: 10" in verify.stdout
    assert "blobs stored:      10" in verify.stdout


def test_a_second_run_resumes_and_a_bad_copy_is_made_again(
    tmp_path: Path, postgres_url: str
) -> None:
    """A target that already holds some blobs whole (an interrupted run) keeps them; one it
    holds damaged is copied again; the archive's records decide."""
    config = _config(tmp_path, postgres_url, "", str(tmp_path / "old"), 0)
    archive = build_archive(load_settings(config, environ={}))
    try:
        for number, dataset in enumerate(_instances(5, seed=3)):
            archive.store_file(corpus.write_part10(dataset, tmp_path / f"{number}.dcm"))
        target = build_store(load_settings(config, environ={}).with_storage_url("postgresql"))
        keys = sorted(archive.store.iterate())
        with archive.store.open(keys[0]) as blob:
            target.put_stream(keys[0], blob)
        damaged = read_at(archive.store, keys[1], 0, -1)
        put(target, keys[1], damaged[:-1] + bytes([damaged[-1] ^ 0xFF]))

        def known() -> dict[str, Any]:
            from openpacs.archive.store_migration import known_blobs

            rows = archive.index.iter_blobs()
            return known_blobs((b.blob_key, b.blob_size, b.blob_sha256) for b in rows)

        report = migrate_blobs(archive.store, target, known)
        assert (report.already, report.copied, report.failed) == (1, 4, [])
        assert read_at(target, keys[1], 0, -1) == damaged
        again = migrate_blobs(archive.store, target, known)
        assert (again.already, again.copied) == (5, 0)
        target.close()
    finally:
        archive.close()


def test_a_source_blob_that_does_not_match_the_index_is_not_copied(
    tmp_path: Path, postgres_url: str
) -> None:
    config = _config(tmp_path, postgres_url, "", str(tmp_path / "old"), 0)
    archive = build_archive(load_settings(config, environ={}))
    try:
        dataset = _instances(1, seed=4)[0]
        archive.store_file(corpus.write_part10(dataset, tmp_path / "one.dcm"))
        (key,) = list(archive.store.iterate())
        path = tmp_path / "old" / key
        data = bytearray(path.read_bytes())
        data[-1] ^= 0xFF
        path.write_bytes(bytes(data))
    finally:
        archive.close()
    result = run_cli(
        ["store", "migrate", "--config", str(config), "--to", str(tmp_path / "new")],
        timeout=MIGRATE_TIMEOUT,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "does not match the index's size and SHA-256" in result.stdout
    assert not (tmp_path / "new" / key).exists()


@pytest.mark.parametrize(
    ("to", "message"),
    [
        ("s3://no-such-bucket-openpacs/x", "bucket no-such-bucket-openpacs does not exist"),
        ("mysql://h/db", "storage.url: unsupported scheme 'mysql'"),
    ],
)
def test_an_unusable_target_is_refused_before_copying(
    tmp_path: Path, postgres_url: str, s3_endpoint_session: str, to: str, message: str
) -> None:
    config = _config(tmp_path, postgres_url, s3_endpoint_session, str(tmp_path / "old"), 0)
    result = run_cli(
        ["store", "migrate", "--config", str(config), "--to", to, "--switch"],
        timeout=MIGRATE_TIMEOUT,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert load_settings(config, environ={}).storage.url == str(tmp_path / "old")
