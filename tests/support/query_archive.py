"""A small, fully known archive for C-FIND tests, so that every expected answer is exact.

    DOE^JOHN (QP-A)        A1  20240110 083000  CT x3 (CT01) + OT x1 (WS01)  General Hospital
                           A2  20240320 141500  MR x2 (MR01)                 General Hospital
    Doe^Jane (QP-B)        B1  20230605 235959.5  CT x2 (CT02)               Other Clinic
    Müller^Jürgen (QP-C)   C1  20221231 100000  US x1 (US01), ISO_IR 100     OpenPACS Test Hospital

Study A1 also carries a Referenced Study Sequence and a private element (0009,1001)
"secret-value" under the private creator "OPENPACS TEST". Series A1-CT has a Request
Attributes Sequence of two items (RP-1/SPS-1, RP-2/SPS-2), series B1-CT one (RP-1/SPS-9).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid
from pynetdicom.association import Association

from tests.support import scu
from tests.support.corpus import multiframe_mr, secondary_capture_rgb, synthetic_ct_series
from tests.support.node import Node, running_node

SUCCESS = 0x0000
PRIVATE_CREATOR = 0x00090010
PRIVATE_VALUE = 0x00091001
REFERENCED_STUDY_CLASS = "1.2.840.10008.3.1.2.3.1"  # Detached Study Management
REFERENCED_STUDY = generate_uid()


@dataclass(frozen=True)
class KnownArchive:
    """The UIDs of what the node holds."""

    studies: dict[str, str]  # A1, A2, B1, C1 -> Study Instance UID
    series: dict[str, str]  # A1-CT, A1-OT, A2-MR, B1-CT, C1-US -> Series Instance UID
    instances: dict[str, list[str]]  # series name -> SOP Instance UIDs, by Instance Number


def _study(datasets: list[Dataset], **attributes: object) -> list[Dataset]:
    for ds in datasets:
        for keyword, value in attributes.items():
            setattr(ds, keyword, value)
    return datasets


def _requests(*pairs: tuple[str, str]) -> Sequence:
    items = []
    for procedure, step in pairs:
        item = Dataset()
        item.RequestedProcedureID = procedure
        item.ScheduledProcedureStepID = step
        items.append(item)
    return Sequence(items)


def archive_datasets() -> tuple[KnownArchive, list[Dataset]]:
    studies = {name: generate_uid() for name in ("A1", "A2", "B1", "C1")}
    series = {name: generate_uid() for name in ("A1-CT", "A1-OT", "A2-MR", "B1-CT", "C1-US")}
    john = {"patient_name": "DOE^JOHN", "patient_id": "QP-A"}
    jane = {"patient_name": "Doe^Jane", "patient_id": "QP-B"}
    a1_ct = synthetic_ct_series(
        3, rows=8, columns=8, **john, study_uid=studies["A1"], series_uid=series["A1-CT"]
    )
    a1_ot = [
        secondary_capture_rgb(
            rows=8, columns=8, **john, study_uid=studies["A1"], series_uid=series["A1-OT"]
        )
    ]
    a2_mr = [
        multiframe_mr(
            2, rows=8, columns=8, **john, study_uid=studies["A2"], series_uid=series["A2-MR"]
        )
        for _ in range(2)
    ]
    a2_mr[1].InstanceNumber = 2
    b1_ct = synthetic_ct_series(
        2, rows=8, columns=8, **jane, study_uid=studies["B1"], series_uid=series["B1-CT"]
    )
    c1_us = synthetic_ct_series(
        1,
        rows=8,
        columns=8,
        patient_name="Müller^Jürgen",
        patient_id="QP-C",
        study_uid=studies["C1"],
        series_uid=series["C1-US"],
        modality="US",
    )
    common = {"PatientBirthDate": "19700101", "PatientSex": "M"}
    referenced = Dataset()
    referenced.ReferencedSOPClassUID = REFERENCED_STUDY_CLASS
    referenced.ReferencedSOPInstanceUID = REFERENCED_STUDY
    a1 = _study(
        [*a1_ct, *a1_ot],
        **common,
        StudyDate="20240110",
        StudyTime="083000",
        AccessionNumber="ACC-A1",
        StudyDescription="CT CHEST",
        InstitutionName="General Hospital",
        ReferencedStudySequence=Sequence([referenced]),
    )
    for ds in a1:
        block = ds.private_block(0x0009, "OPENPACS TEST", create=True)
        block.add_new(0x01, "LO", "secret-value")
    _study(
        a1_ct,
        StationName="CT01",
        RequestAttributesSequence=_requests(("RP-1", "SPS-1"), ("RP-2", "SPS-2")),
    )
    _study(a1_ot, StationName="WS01")
    a2 = _study(
        a2_mr,
        **common,
        StudyDate="20240320",
        StudyTime="141500",
        AccessionNumber="ACC-A2",
        StudyDescription="MR HEAD",
        InstitutionName="General Hospital",
        StationName="MR01",
    )
    b1 = _study(
        b1_ct,
        PatientBirthDate="19851224",
        PatientSex="F",
        StudyDate="20230605",
        StudyTime="235959.5",
        AccessionNumber="ACC-B1",
        StudyDescription="CT ABDOMEN",
        InstitutionName="Other Clinic",
        StationName="CT02",
        RequestAttributesSequence=_requests(("RP-1", "SPS-9")),
    )
    c1 = _study(
        c1_us,
        **common,
        StudyDate="20221231",
        StudyTime="100000",
        AccessionNumber="ACC-C1",
        StudyDescription="US ABDOMEN",
        StationName="US01",
    )
    groups = {"A1-CT": a1_ct, "A1-OT": a1_ot, "A2-MR": a2_mr, "B1-CT": b1_ct, "C1-US": c1_us}
    instances = {name: [str(ds.SOPInstanceUID) for ds in group] for name, group in groups.items()}
    return KnownArchive(studies, series, instances), [*a1, *a2, *b1, *c1]


@contextmanager
def known_archive_node(folder: Path) -> Iterator[tuple[Node, KnownArchive]]:
    """A node holding the known archive, stored over C-STORE."""
    uids, datasets = archive_datasets()
    with running_node(folder) as node:
        statuses = scu.store(node.port, datasets)
        if [s.Status for s in statuses] != [SUCCESS] * len(datasets):
            raise RuntimeError(f"storing the known archive failed: {statuses}")
        yield node, uids


def find(finder: Association, level: str, *, model: str = "study", **keys: object) -> list[Dataset]:
    """C-FIND that must succeed; its matches."""
    matches, final = scu.find_on(finder, scu.identifier(level, **keys), model=model)
    assert final.Status == SUCCESS
    return matches


def study_names(uids: KnownArchive, matches: list[Dataset]) -> set[str]:
    """The study names (A1...) of STUDY-level matches; a UID never stored fails."""
    names = {uid: name for name, uid in uids.studies.items()}
    return {names[str(m.StudyInstanceUID)] for m in matches}


def find_studies(finder: Association, uids: KnownArchive, **keys: object) -> set[str]:
    return study_names(uids, find(finder, "STUDY", StudyInstanceUID="", **keys))


def values(value: object) -> list[str]:
    """A multi-valued return key as a list, whether pydicom decoded one value or several."""
    if value is None or value == "":
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]  # type: ignore[attr-defined]
