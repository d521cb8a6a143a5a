"""`openpacs import`: folders, file lists, ZIP archives, DICOMDIR media sets and S3 prefixes
stored the way C-STORE stores them, on every backend; what is not DICOM is skipped and said
so, what the archive refuses is reported with its reason, and a second run stores nothing."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from contextlib import nullcontext
from pathlib import Path

import pytest

from openpacs.archive.verify import verify
from openpacs.cli.importer import S3Access, Tally, run_import
from openpacs.compose import build_archive
from openpacs.config import load_settings
from openpacs.dicom.media import write_media_set
from tests.support import corpus
from tests.support.backends import Backend
from tests.support.node import write_config
from tests.support.s3 import client as s3_client
from tests.support.s3 import make_bucket

NO_S3 = S3Access(None, None)


def _config(tmp_path: Path, backend: Backend, **archive: str) -> Path:
    sections = backend.sections(tmp_path)
    if archive:
        sections["archive"] = dict(archive)
    return write_config(tmp_path, sections)


def _folder(root: Path, count: int = 6) -> list[str]:
    """DICOM files without an extension in nested folders, a text file, a truncated file."""
    uids = []
    for number, dataset in enumerate(corpus.synthetic_ct_series(count, rows=16, columns=16)):
        target = root / "DICOM" / f"S{number % 2}" / f"IM{number}"
        target.parent.mkdir(parents=True, exist_ok=True)
        corpus.write_part10(dataset, target)
        uids.append(str(dataset.SOPInstanceUID))
    (root / "notes.txt").write_text("not an image", encoding="utf-8")
    whole = (root / "DICOM" / "S0" / "IM0").read_bytes()
    (root / "cut.dcm").write_bytes(whole[:-40])
    return uids


def _import(config: Path, *sources: str, report: Path, **options: object) -> Tally:
    return run_import(
        config,
        list(sources),
        files_from=options.get("files_from"),  # type: ignore[arg-type]
        workers=int(options.get("workers", 1)),  # type: ignore[call-overload]
        report_path=report,
        s3=options.get("s3", NO_S3),  # type: ignore[arg-type]
        show_progress=False,
    )


def _stored(config: Path) -> tuple[int, int]:
    """(instances indexed, blobs stored), after checking index and store agree."""
    archive = build_archive(load_settings(config, environ={}))
    try:
        report = verify(archive, checksums=True)
        assert report.clean, report
        return report.instances, report.blobs
    finally:
        archive.close()


def _report(path: Path) -> dict[str, dict[str, str]]:
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return {re.split(r"[/!]", line["file"])[-1]: line for line in lines}


def test_a_folder_is_imported_by_content_and_again_stores_nothing(
    tmp_path: Path, backend: Backend
) -> None:
    config = _config(tmp_path, backend)
    source = tmp_path / "source"
    uids = _folder(source)
    report = tmp_path / "report.jsonl"

    first = _import(config, str(source), report=report)
    assert first.counts["stored"] == len(uids)
    assert (first.counts["refused"], first.counts["skipped"]) == (1, 1)
    lines = _report(report)
    assert lines["notes.txt"] == {
        "file": str(source / "notes.txt"),
        "outcome": "skipped",
        "reason": "not a DICOM file",
    }
    assert lines["cut.dcm"]["outcome"] == "refused"
    assert "truncated" in lines["cut.dcm"]["reason"]
    assert _stored(config) == (len(uids), len(uids))

    again = _import(config, str(source), report=report)
    assert again.counts["stored"] == 0
    assert again.counts["already stored"] == len(uids)
    assert _stored(config) == (len(uids), len(uids))


def test_an_interrupted_import_resumes_with_what_is_missing(
    tmp_path: Path, backend: Backend
) -> None:
    config = _config(tmp_path, backend)
    source = tmp_path / "source"
    _folder(source, count=6)
    files = sorted((source / "DICOM").rglob("IM*"))
    listing = tmp_path / "first-half.txt"
    listing.write_text("# done before the interruption\n" + "\n".join(map(str, files[:3])))

    half = _import(config, report=tmp_path / "r1.jsonl", files_from=listing)
    assert half.counts["stored"] == 3
    rest = _import(config, str(source / "DICOM"), report=tmp_path / "r2.jsonl")
    assert (rest.counts["already stored"], rest.counts["stored"]) == (3, 3)
    assert _stored(config) == (6, 6)


def test_a_zip_and_a_dicomdir_media_set(tmp_path: Path, backend: Backend) -> None:
    config = _config(tmp_path, backend)
    source = tmp_path / "source"
    uids = _folder(source, count=4)
    bundle = tmp_path / "export.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        for path in sorted(source.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(source).as_posix())
    media = tmp_path / "media"
    files = []
    for number, dataset in enumerate(corpus.synthetic_ct_series(3, rows=16, columns=16)):
        path = corpus.write_part10(dataset, tmp_path / f"m{number}.dcm")
        files.append((str(number), nullcontext(path)))
    assert write_media_set(files, media).written == 3
    referenced = 3

    report = tmp_path / "report.jsonl"
    tally = _import(config, str(bundle), str(media / "DICOMDIR"), report=report)
    assert tally.counts["stored"] == len(uids) + referenced
    lines = _report(report)
    assert lines["notes.txt"]["file"] == f"{bundle}!notes.txt"
    assert lines["cut.dcm"]["outcome"] == "refused"

    # Walking the media set's folder finds the same files, and says what DICOMDIR is.
    walked = _import(config, str(media), report=report)
    assert walked.counts["stored"] == 0
    assert walked.counts["already stored"] == referenced
    reasons = {line["reason"] for line in _report(report).values()}
    assert "DICOMDIR (a media set's directory, not an instance)" in reasons


def test_the_duplicates_policy_applies_to_imports(tmp_path: Path) -> None:
    config = _config(tmp_path, Backend("sqlite-folder"), duplicates="reject")
    first, second = tmp_path / "a", tmp_path / "b"
    dataset = corpus.synthetic_ct_series(1, rows=16, columns=16)[0]
    first.mkdir()
    second.mkdir()
    corpus.write_part10(dataset, first / "one.dcm")
    dataset.PatientName = "Changed^Copy"  # same SOP Instance UID, other bytes and size
    dataset.InstitutionName = "A longer institution name than before"
    corpus.write_part10(dataset, second / "one.dcm")

    assert _import(config, str(first), report=tmp_path / "r.jsonl").counts["stored"] == 1
    again = _import(config, str(second), report=tmp_path / "r.jsonl")
    assert again.counts["refused"] == 1
    assert "already" in _report(tmp_path / "r.jsonl")["one.dcm"]["reason"].lower()
    assert _stored(config) == (1, 1)


def test_an_s3_prefix_is_imported(
    tmp_path: Path, backend: Backend, s3_endpoint_session: str
) -> None:
    config = _config(tmp_path, backend)
    bucket = make_bucket(s3_endpoint_session)
    s3 = s3_client(s3_endpoint_session)
    datasets = corpus.synthetic_ct_series(3, rows=16, columns=16)
    for number, dataset in enumerate(datasets):
        s3.put_object(
            Bucket=bucket, Key=f"intake/study/{number}", Body=corpus.to_part10_bytes(dataset)
        )
    s3.put_object(Bucket=bucket, Key="intake/readme.md", Body=b"# hello")
    s3.put_object(Bucket=bucket, Key="elsewhere/x", Body=corpus.to_part10_bytes(datasets[0]))

    report = tmp_path / "report.jsonl"
    access = S3Access(s3_endpoint_session, None)
    tally = _import(config, f"s3://{bucket}/intake/", report=report, s3=access)
    assert (tally.counts["stored"], tally.counts["skipped"]) == (3, 1)
    assert _report(report)["readme.md"]["file"] == f"s3://{bucket}/intake/readme.md"
    assert _stored(config) == (3, 3)
    # The intake objects are left where they are: only --watch removes what it stored.
    assert s3.list_objects_v2(Bucket=bucket, Prefix="intake/")["KeyCount"] == 4


def test_the_command_in_parallel_with_a_summary_and_exit_status(tmp_path: Path) -> None:
    config = _config(tmp_path, Backend("sqlite-folder"))
    source = tmp_path / "source"
    uids = _folder(source, count=8)
    report = tmp_path / "report.jsonl"
    command = [
        sys.executable, "-m", "openpacs", "import", "--config", str(config),
        "--workers", "2", "--report", str(report), "--no-progress", str(source),
    ]  # fmt: skip
    first = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert first.returncode == 1, first.stderr  # one file refused
    assert f"stored {len(uids)}," in first.stdout
    assert "refused 1" in first.stdout
    assert "skipped 1" in first.stdout
    assert set(_report(report)) == {"cut.dcm", "notes.txt"}
    assert _stored(config) == (len(uids), len(uids))

    (source / "cut.dcm").unlink()
    second = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"already stored {len(uids)}" in second.stdout


def test_a_missing_source_is_an_error(tmp_path: Path) -> None:
    config = _config(tmp_path, Backend("sqlite-folder"))
    command = [sys.executable, "-m", "openpacs", "import", "--config", str(config)]
    missing = subprocess.run(
        [*command, str(tmp_path / "nowhere")], capture_output=True, text=True, timeout=60
    )
    assert missing.returncode == 2
    assert "no such file or folder" in missing.stderr
    nothing = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert nothing.returncode == 2
    assert "SOURCE" in nothing.stderr


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the default report lands here, not in the repository
