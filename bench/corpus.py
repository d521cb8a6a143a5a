"""Benchmark corpora, generated with the test suite's pydicom generators and cached on disk.

Every corpus is split into four part folders (contiguous chunks) so that four storescu
processes can each send one part; one storescu sends all four. A ``manifest.json`` written last
marks a complete corpus; a changed specification gets a new folder.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import shutil
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

import bench  # noqa: F401  (puts the repository root on sys.path)
from tests.support.corpus import small_instances, synthetic_ct_series, write_part10

GENERATOR_VERSION = 2
PARTS = 4
CACHE_DIR = Path(__file__).resolve().parent / ".cache" / "corpora"

# Family names spread over the alphabet (2 of 40 start with A): "PatientName=A*" then matches
# about 5% of the patients however large the index grows, as in a real archive.
FAMILIES = (
    "Adams", "Alvarez", "Baker", "Brown", "Chen", "Clark", "Davis", "Diaz", "Evans", "Fischer",
    "Garcia", "Gomez", "Hall", "Huang", "Ito", "Jones", "Khan", "Kim", "Lopez", "Lee", "Martin",
    "Müller", "Nguyen", "Novak", "Olsen", "Okafor", "Patel", "Perez", "Quinn", "Rossi", "Ruiz",
    "Smith", "Sato", "Taylor", "Tanaka", "Usman", "Vargas", "Weber", "Wang", "Young",
)  # fmt: skip
DATE_RANGE = "20150101-20150331"  # about 2.5% of the small corpora's ten years of studies
CT_SERIES = (("AXIAL 1.25MM", 60), ("CORONAL 3MM", 40), ("SAGITTAL 3MM", 20))


@dataclass(frozen=True)
class Corpus:
    name: str
    root: Path
    parts: tuple[Path, ...]
    instances: int
    studies: int
    bytes: int
    first_study: dict[str, Any]  # study_uid, instances, bytes, a middle instance's uids
    sample_patient_id: str

    @property
    def megabytes(self) -> float:
        return self.bytes / 1e6


def rename_patient(ds: Dataset) -> None:
    """Give the patient a family name from FAMILIES, chosen by patient ID (stable)."""
    given = str(ds.PatientName).split("^")[1]
    family = FAMILIES[zlib.crc32(str(ds.PatientID).encode()) % len(FAMILIES)]
    ds.PatientName = f"{family}^{given}"


def _ct_studies(studies: int, copy: str) -> Iterator[Dataset]:
    for study in range(studies):
        study_uid = None
        for number, (description, count) in enumerate(CT_SERIES, start=1):
            series = synthetic_ct_series(
                count,
                patient_name=f"{FAMILIES[(study * 11 + 4) % len(FAMILIES)]}^Ct{study}",
                patient_id=f"CT{copy}-{study:04d}",
                study_uid=study_uid,
                study_date=f"2024{1 + study % 12:02d}15",
                accession=f"CT{copy}{study:05d}",
                series_number=number,
                seed=study * 10 + number,
            )
            study_uid = series[0].StudyInstanceUID
            for ds in series:
                ds.SeriesDescription = description
                yield ds


def _small_part(studies: int, series: int, per_series: int, seed: int) -> Iterator[Dataset]:
    for ds in small_instances(studies, series, per_series, seed=seed):
        rename_patient(ds)
        yield ds


def _write(datasets: Iterator[Dataset], folder: Path) -> list[dict[str, Any]]:
    """Write `datasets` as numbered files in `folder`; one row per file."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for index, ds in enumerate(datasets):
        path = write_part10(ds, folder / f"{index:06d}.dcm")
        rows.append(
            {
                "study": str(ds.StudyInstanceUID),
                "series": str(ds.SeriesInstanceUID),
                "sop": str(ds.SOPInstanceUID),
                "patient_id": str(ds.PatientID),
                "bytes": path.stat().st_size,
            }
        )
    return rows


def _write_small_part(job: tuple[dict[str, Any], int, str]) -> list[dict[str, Any]]:
    """One part of a small-instance corpus, with its own seed (in a worker process)."""
    spec, part, folder = job
    studies = spec["studies"] // PARTS + (part < spec["studies"] % PARTS)
    datasets = _small_part(studies, spec["series"], spec["per_series"], spec["seed"] + part)
    return _write(datasets, Path(folder))


def _write_ct(spec: dict[str, Any], root: Path) -> list[list[dict[str, Any]]]:
    everything = list(_ct_studies(spec["studies"], spec["copy"]))
    size = -(-len(everything) // PARTS)
    return [
        _write(iter(everything[part * size : (part + 1) * size]), root / f"part{part}")
        for part in range(PARTS)
    ]


def _spec_dir(name: str, spec: dict[str, Any]) -> Path:
    digest = hashlib.sha256(
        json.dumps({**spec, "v": GENERATOR_VERSION}, sort_keys=True).encode()
    ).hexdigest()[:10]
    return CACHE_DIR / f"{name}-{digest}"


def _load(name: str, root: Path) -> Corpus:
    manifest = json.loads((root / "manifest.json").read_text())
    return Corpus(
        name=name,
        root=root,
        parts=tuple(root / f"part{i}" for i in range(PARTS)),
        instances=manifest["instances"],
        studies=manifest["studies"],
        bytes=manifest["bytes"],
        first_study=manifest["first_study"],
        sample_patient_id=manifest["sample_patient_id"],
    )


def build(name: str, kind: str, spec: dict[str, Any], *, log: Any = print) -> Corpus:
    """The corpus for `spec`, generated (in parallel, one process per part) unless cached."""
    root = _spec_dir(name, {"kind": kind, **spec})
    if (root / "manifest.json").exists():
        return _load(name, root)
    log(f"generating corpus {name} ({spec}) in {root} ...")
    shutil.rmtree(root, ignore_errors=True)
    if kind == "ct":
        parts = _write_ct(spec, root)
    else:
        jobs = [(spec, part, str(root / f"part{part}")) for part in range(PARTS)]
        with multiprocessing.get_context("spawn").Pool(
            min(PARTS, multiprocessing.cpu_count())
        ) as pool:
            parts = pool.map(_write_small_part, jobs)
    rows = [row for part in parts for row in part]
    first = rows[0]["study"]
    in_first = [row for row in rows if row["study"] == first]
    middle = in_first[len(in_first) // 2]
    manifest = {
        "spec": spec,
        "instances": len(rows),
        "studies": len({row["study"] for row in rows}),
        "bytes": sum(row["bytes"] for row in rows),
        "first_study": {
            "study_uid": first,
            "instances": len(in_first),
            "bytes": sum(row["bytes"] for row in in_first),
            "series_uid": middle["series"],
            "sop_uid": middle["sop"],
        },
        "sample_patient_id": rows[len(rows) // 8]["patient_id"],
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return _load(name, root)


def ct_corpus(size: str, copy: str = "A") -> Corpus:
    """512x512 16-bit CT, 120 instances per study in three series. Copies have the same
    content under other UIDs and patient IDs (a second ingest into one system is no duplicate)."""
    return build(f"ct{copy}", "ct", {"studies": 1 if size == "small" else 3, "copy": copy})


def small_corpus(size: str, copy: str = "A") -> Corpus:
    """64x64 instances, 2 series of 3 per study: 600 over 100 studies, or 3,000 over 500."""
    studies = 100 if size == "small" else 500
    seed = 10 + 10 * "ABCD".index(copy)
    spec = {"studies": studies, "series": 2, "per_series": 3, "seed": seed}
    return build(f"small{copy}", "small", spec)


def index_corpus(name: str, studies: int, seed: int) -> Corpus:
    """One 64x64 instance per study: loads an index with `studies` studies."""
    return build(name, "small", {"studies": studies, "series": 1, "per_series": 1, "seed": seed})


def many_corpus(size: str) -> Corpus:
    """64x64 instances, 50 studies of one series (20 instances each, 60 with size full): one
    study per association when fifty associations store at once."""
    per_series = 20 if size == "small" else 60
    return build(
        "many", "small", {"studies": 50, "series": 1, "per_series": per_series, "seed": 300}
    )


def busy_corpus(size: str) -> Corpus:
    """64x64 instances, 5 per study (2,000, or 6,000 with size full): what eight associations
    store while C-FIND is measured."""
    studies = 400 if size == "small" else 1200
    return build("busy", "small", {"studies": studies, "series": 1, "per_series": 5, "seed": 400})


def study_instances(corpus: Corpus, study_uid: str) -> list[dict[str, str]]:
    """study_uid, series_uid and sop_uid of every instance of `study_uid` in `corpus`, in file
    order (read from the files' headers: the manifest names one instance per corpus)."""
    from pydicom import dcmread

    found = []
    for part in corpus.parts:
        for path in sorted(part.iterdir()):
            ds = dcmread(
                path,
                stop_before_pixels=True,
                specific_tags=["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"],
            )
            if str(ds.StudyInstanceUID) == study_uid:
                found.append(
                    {
                        "study_uid": study_uid,
                        "series_uid": str(ds.SeriesInstanceUID),
                        "sop_uid": str(ds.SOPInstanceUID),
                    }
                )
    return found
