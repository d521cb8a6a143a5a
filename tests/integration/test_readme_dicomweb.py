"""The README's DICOMweb examples (curl and dicomweb-client) run as written against a server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.corpus import synthetic_ct_series, write_part10
from tests.support.web import running_web_node

ROOT = Path(__file__).resolve().parents[2]


def _block(language: str) -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Try it with DICOMweb", 1)[1].split("\n## ", 1)[0]
    return section.split(f"```{language}\n", 1)[1].split("\n```", 1)[0]


def test_readme_dicomweb_examples(tmp_path: Path) -> None:
    ds = synthetic_ct_series(1, rows=64, columns=64, patient_name="Doe^Readme")[0]
    work = tmp_path / "work"
    work.mkdir()
    write_part10(ds, work / "image.dcm")
    shell = _block("sh")
    assert shell.startswith("export OPENPACS_URL=")
    commands = shell.split("\n", 1)[1]  # the environment comes from the test instead
    with running_web_node(tmp_path / "node") as web:
        env = {
            **os.environ,
            "OPENPACS_URL": f"{web.url}/dicom-web",
            "OPENPACS_AUTH": f"{web.username}:{web.password}",
            "STUDY": str(ds.StudyInstanceUID),
            "SERIES": str(ds.SeriesInstanceUID),
            "INSTANCE": str(ds.SOPInstanceUID),
        }
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", commands],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert web.archive.totals().instances == 1
        assert (work / "frame.png").read_bytes().startswith(b"\x89PNG")
        assert (work / "thumbnail.jpg").read_bytes().startswith(b"\xff\xd8")
        assert b"DICM" in (work / "study.multipart").read_bytes()
        assert json.loads((work / "metadata.json").read_text())[0]["00080018"]["Value"] == [
            str(ds.SOPInstanceUID)
        ]
        python = subprocess.run(
            [sys.executable, "-c", _block("python") + "\nprint(len(frames[0]), png[:4])"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert python.returncode == 0, python.stderr
        png_signature = repr(b"\x89PNG")
        assert python.stdout.strip() == f"{64 * 64 * 2} {png_signature}"
