"""The corpus round trip over real DIMSE sockets: C-STORE, C-FIND and C-GET (PS3.4 B, C.4.1, C.4.3).

Every storable pydicom test file, a synthetic CT series, an RGB Secondary Capture and an
Enhanced MR multi-frame instance are stored once into a module-scoped node. Each is then found
at the IMAGE level and fetched back, over one association, in its stored transfer syntax; the
compressed ones are also fetched by a requestor that accepts Explicit VR Little Endian only.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid
from pynetdicom import build_role, evt

from tests.support import scu
from tests.support.corpus import (
    PYDICOM_TEST_FILES,
    multiframe_mr,
    pixel_bytes,
    pydicom_valid_entries,
    secondary_capture_rgb,
    synthetic_ct_series,
    write_part10,
)
from tests.support.node import Node, running_node

SUCCESS = 0x0000
UNABLE_TO_PERFORM_SUBOPERATIONS = 0xA702

ENTRIES = {
    entry.path.relative_to(PYDICOM_TEST_FILES).as_posix(): entry
    for entry in pydicom_valid_entries()
}
SYNTHETIC = ("synthetic-ct-1", "synthetic-ct-2", "synthetic-ct-3", "colour-sc", "multiframe-mr")
NAMES = [*ENTRIES, *SYNTHETIC]
# Encapsulated pixel data (JPEG, JPEG-LS, JPEG 2000, RLE); deflate only compresses the encoding.
COMPRESSED = [
    name
    for name, entry in ENTRIES.items()
    if UID(entry.transfer_syntax_uid).is_compressed
    and not UID(entry.transfer_syntax_uid).is_deflated
]


@dataclass(frozen=True)
class Item:
    path: Path
    sop_class: str
    sop_uid: str
    study_uid: str
    series_uid: str
    transfer_syntax: str

    def image_identifier(self, **return_keys: object) -> Dataset:
        return scu.identifier(
            "IMAGE",
            StudyInstanceUID=self.study_uid,
            SeriesInstanceUID=self.series_uid,
            SOPInstanceUID=self.sop_uid,
            **return_keys,
        )


@dataclass(frozen=True)
class Retrieval:
    matches: list[Dataset]
    find_status: int
    get_responses: list[tuple[Dataset, Dataset | None]]
    received: list[Dataset]
    received_syntaxes: list[str]

    @property
    def final(self) -> Dataset:
        return self.get_responses[-1][0]

    @property
    def failed_uids(self) -> list[str]:
        identifier = self.get_responses[-1][1]
        return _uids(identifier.get("FailedSOPInstanceUIDList") if identifier else None)


def _item(path: Path) -> Item:
    ds = dcmread(path, stop_before_pixels=True)
    return Item(
        path=path,
        sop_class=str(ds.SOPClassUID),
        sop_uid=str(ds.SOPInstanceUID),
        study_uid=str(ds.StudyInstanceUID),
        series_uid=str(ds.SeriesInstanceUID),
        transfer_syntax=str(ds.file_meta.TransferSyntaxUID),
    )


def _uids(value: object) -> list[str]:
    """A UI value as a list, whether pydicom decoded one value or several."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]  # type: ignore[attr-defined]


def _decoded(path: Path) -> np.ndarray | None:
    """The pixels as this process's pydicom decodes them; None when no plugin can.

    The node runs in this process with the same plugins, so it can convert exactly what
    this can decode.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return dcmread(path).pixel_array
    except Exception:
        return None


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    with running_node(tmp_path_factory.mktemp("corpus-node")) as running:
        yield running


@pytest.fixture(scope="module")
def items(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Item]:
    folder = tmp_path_factory.mktemp("synthetic")
    study_uid = generate_uid()
    synthetic = [
        *synthetic_ct_series(3, rows=32, columns=32, study_uid=study_uid),
        secondary_capture_rgb(rows=24, columns=20, study_uid=study_uid),
        multiframe_mr(4, rows=16, columns=16, study_uid=study_uid),
    ]
    paths = {name: entry.path for name, entry in ENTRIES.items()}
    for name, dataset in zip(SYNTHETIC, synthetic, strict=True):
        paths[name] = write_part10(dataset, folder / f"{name}.dcm")
    return {name: _item(path) for name, path in paths.items()}


@pytest.fixture(scope="module")
def store_statuses(node: Node, items: dict[str, Item]) -> dict[str, int | None]:
    names = list(items)
    responses = scu.store(node.port, [items[name].path for name in names])
    return {
        name: int(response.Status) if "Status" in response else None
        for name, response in zip(names, responses, strict=True)
    }


def _retrieve_all(
    node: Node, items: dict[str, Item], names: list[str], syntaxes: dict[str, list[str]]
) -> dict[str, Retrieval]:
    """C-FIND then C-GET each named item over one association accepting `syntaxes` per SOP
    class for the C-STORE sub-operations."""
    received = scu.Received()
    contexts = [
        scu.MODELS["study"][0],
        scu.MODELS["study"][1],
        *[(sop, [ts]) for sop, listed in sorted(syntaxes.items()) for ts in listed],
    ]
    roles = [build_role(sop, scp_role=True) for sop in sorted(syntaxes)]
    results: dict[str, Retrieval] = {}
    with scu.association(
        node.port, contexts, roles=roles, evt_handlers=[(evt.EVT_C_STORE, received.handle)]
    ) as assoc:
        for name in names:
            item = items[name]
            matches, final = scu.find_on(
                assoc, item.image_identifier(SOPClassUID="", InstanceNumber="")
            )
            before = len(received.datasets)
            responses = scu.get_on(assoc, item.image_identifier())
            results[name] = Retrieval(
                matches=matches,
                find_status=int(final.Status),
                get_responses=responses,
                received=received.datasets[before:],
                received_syntaxes=received.transfer_syntaxes[before:],
            )
    return results


@pytest.fixture(scope="module")
def retrievals(
    node: Node, items: dict[str, Item], store_statuses: dict[str, int | None]
) -> dict[str, Retrieval]:
    syntaxes: dict[str, list[str]] = {}
    for item in items.values():
        listed = syntaxes.setdefault(item.sop_class, [])
        if item.transfer_syntax not in listed:
            listed.append(item.transfer_syntax)
    return _retrieve_all(node, items, NAMES, syntaxes)


@pytest.fixture(scope="module")
def decompressed(
    node: Node, items: dict[str, Item], store_statuses: dict[str, int | None]
) -> dict[str, Retrieval]:
    syntaxes = {items[name].sop_class: [ExplicitVRLittleEndian] for name in COMPRESSED}
    return _retrieve_all(node, items, COMPRESSED, syntaxes)


def test_the_corpus_covers_compressed_syntaxes() -> None:
    found = {UID(ENTRIES[name].transfer_syntax_uid).name for name in COMPRESSED}
    assert {"RLE Lossless", "JPEG Baseline (Process 1)"} <= found
    assert any("JPEG 2000" in name for name in found)


@pytest.mark.parametrize("name", NAMES)
def test_c_store_succeeds(store_statuses: dict[str, int | None], name: str) -> None:
    assert store_statuses[name] == SUCCESS


def test_each_instance_is_indexed_once(
    node: Node, items: dict[str, Item], store_statuses: dict[str, int | None]
) -> None:
    assert node.instance_count() == len({item.sop_uid for item in items.values()}) == len(items)


@pytest.mark.parametrize("name", NAMES)
def test_c_find_at_image_level_finds_it(
    retrievals: dict[str, Retrieval], items: dict[str, Item], name: str
) -> None:
    found, item = retrievals[name], items[name]
    assert found.find_status == SUCCESS
    assert [str(m.SOPInstanceUID) for m in found.matches] == [item.sop_uid]
    match = found.matches[0]
    assert match.QueryRetrieveLevel == "IMAGE"
    assert match.SOPClassUID == item.sop_class
    assert match.StudyInstanceUID == item.study_uid
    assert match.SeriesInstanceUID == item.series_uid


@pytest.mark.parametrize("name", NAMES)
def test_c_get_in_the_stored_syntax_returns_identical_pixel_bytes(
    retrievals: dict[str, Retrieval], items: dict[str, Item], name: str
) -> None:
    got, item = retrievals[name], items[name]
    assert got.final.Status == SUCCESS
    assert got.final.NumberOfCompletedSuboperations == 1
    assert got.final.NumberOfFailedSuboperations == 0
    assert [str(ds.SOPInstanceUID) for ds in got.received] == [item.sop_uid]
    assert got.received_syntaxes == [item.transfer_syntax]
    assert pixel_bytes(got.received[0]) == pixel_bytes(item.path)


@pytest.mark.parametrize("name", COMPRESSED)
def test_c_get_decompresses_for_an_explicit_little_endian_requestor(
    decompressed: dict[str, Retrieval], items: dict[str, Item], name: str
) -> None:
    got, item = decompressed[name], items[name]
    expected = _decoded(item.path)
    if expected is None:
        # Undecodable here means undecodable in the node: that sub-operation must fail and
        # say which instance it was (PS3.4 C.4.3.3.1), not claim success.
        assert got.final.Status == UNABLE_TO_PERFORM_SUBOPERATIONS
        assert got.final.NumberOfFailedSuboperations == 1
        assert got.final.NumberOfCompletedSuboperations == 0
        assert got.received == []
        assert got.failed_uids == [item.sop_uid]
        return
    assert got.final.Status == SUCCESS
    assert got.final.NumberOfCompletedSuboperations == 1
    assert got.received_syntaxes == [ExplicitVRLittleEndian]
    (received,) = got.received
    assert received.SOPInstanceUID == item.sop_uid
    assert np.array_equal(received.pixel_array, expected)
