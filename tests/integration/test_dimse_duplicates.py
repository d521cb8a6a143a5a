"""A second C-STORE of the same SOP Instance UID under each `archive.duplicates` policy.

keep: the second copy is acknowledged and discarded; overwrite: it replaces the first, blob and
index alike; reject: it is refused with 0x0111 Duplicate SOP Instance (PS3.7 C.4.2).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian

from tests.support import scu
from tests.support.corpus import CT_IMAGE_STORAGE, synthetic_ct_series
from tests.support.node import Node, running_node

SUCCESS = 0x0000
DUPLICATE_SOP_INSTANCE = 0x0111


def _copies() -> tuple[Dataset, Dataset]:
    """Two copies of one instance that differ at the image and at the study level."""
    (first,) = synthetic_ct_series(1, rows=8, columns=8)
    first.ImageComments = "first copy"
    second = copy.deepcopy(first)
    second.ImageComments = "second copy"
    second.InstanceNumber = 7
    second.StudyDescription = "SECOND DESCRIPTION"
    second.InstitutionName = "Second Hospital"
    return first, second


def _blob_files(node: Node) -> list[Path]:
    """Files in the blob store, leaving out its staging folder."""
    return [
        path
        for path in node.blob_folder.rglob("*")
        if path.is_file() and path.relative_to(node.blob_folder).parts[0] != ".staging"
    ]


def _image(node: Node, ds: Dataset) -> Dataset:
    matches, final = scu.find(
        node.port,
        scu.identifier(
            "IMAGE",
            StudyInstanceUID=ds.StudyInstanceUID,
            SeriesInstanceUID=ds.SeriesInstanceUID,
            SOPInstanceUID=ds.SOPInstanceUID,
            ImageComments="",
            InstanceNumber="",
        ),
    )
    assert final.Status == SUCCESS
    (match,) = matches
    return match


def _retrieved(node: Node, ds: Dataset) -> Dataset:
    identifier = scu.identifier(
        "IMAGE",
        StudyInstanceUID=ds.StudyInstanceUID,
        SeriesInstanceUID=ds.SeriesInstanceUID,
        SOPInstanceUID=ds.SOPInstanceUID,
    )
    responses, received = scu.get(
        node.port, identifier, [(CT_IMAGE_STORAGE, [ExplicitVRLittleEndian])]
    )
    assert responses[-1].Status == SUCCESS
    (retrieved,) = received.datasets
    return retrieved


@pytest.fixture
def stored_twice(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Node, list[int], Dataset, Dataset]]:
    """A node with the policy given by the test's parameter, after storing both copies."""
    first, second = _copies()
    with running_node(tmp_path / "node", archive={"duplicates": request.param}) as node:
        statuses = [int(s.Status) for s in scu.store(node.port, [first])]
        statuses += [int(s.Status) for s in scu.store(node.port, [second])]
        yield node, statuses, first, second


@pytest.mark.parametrize("stored_twice", ["keep"], indirect=True)
def test_keep_acknowledges_the_second_copy_and_keeps_the_first(
    stored_twice: tuple[Node, list[int], Dataset, Dataset],
) -> None:
    node, statuses, first, _ = stored_twice
    assert statuses == [SUCCESS, SUCCESS]
    assert node.instance_count() == 1
    (blob,) = _blob_files(node)
    assert dcmread(blob).ImageComments == "first copy"
    assert _image(node, first).ImageComments == "first copy"
    assert _retrieved(node, first).ImageComments == "first copy"


@pytest.mark.parametrize("stored_twice", ["overwrite"], indirect=True)
def test_overwrite_replaces_the_first_copy(
    stored_twice: tuple[Node, list[int], Dataset, Dataset],
) -> None:
    node, statuses, first, _ = stored_twice
    assert statuses == [SUCCESS, SUCCESS]
    assert node.instance_count() == 1
    (blob,) = _blob_files(node)
    assert dcmread(blob).ImageComments == "second copy"
    match = _image(node, first)
    assert match.ImageComments == "second copy"
    assert int(match.InstanceNumber) == 7
    assert _retrieved(node, first).ImageComments == "second copy"


@pytest.mark.parametrize("stored_twice", ["overwrite"], indirect=True)
def test_overwrite_replaces_the_study_attributes_of_a_single_instance_study(
    stored_twice: tuple[Node, list[int], Dataset, Dataset],
) -> None:
    """The only instance of the study was replaced: nothing of the first copy remains, at
    any level, whether the attribute is an index column or read from the stored header."""
    node, _, first, _ = stored_twice
    matches, final = scu.find(
        node.port,
        scu.identifier(
            "STUDY",
            StudyInstanceUID=first.StudyInstanceUID,
            StudyDescription="",
            InstitutionName="",
        ),
    )
    assert final.Status == SUCCESS
    (match,) = matches
    assert match.InstitutionName == "Second Hospital"
    assert match.StudyDescription == "SECOND DESCRIPTION"


@pytest.mark.parametrize("stored_twice", ["reject"], indirect=True)
def test_reject_refuses_the_second_copy(
    stored_twice: tuple[Node, list[int], Dataset, Dataset],
) -> None:
    node, statuses, first, _ = stored_twice
    assert statuses == [SUCCESS, DUPLICATE_SOP_INSTANCE]
    assert node.instance_count() == 1
    (blob,) = _blob_files(node)
    assert dcmread(blob).ImageComments == "first copy"
    assert _image(node, first).ImageComments == "first copy"
