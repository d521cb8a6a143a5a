"""Every file of pydicom's test corpus sent as raw bytes by C-STORE (PS3.4 B.2.3).

pynetdicom's `send_c_store(path)` with `STORE_SEND_CHUNKED_DATASET` sends the bytes after the
file meta as they are, announcing the file meta's SOP Class, SOP Instance and transfer syntax:
truncated, mis-encoded and inconsistent files reach the archive exactly as written. Each
outcome must be one of two:

- Success: the instance is stored whole, findable by QIDO-RS under the UIDs it carries, and
  WADO-RS with `transfer-syntax=*` returns the same data set bytes;
- a failure status with a reason (Error Comment), and nothing of it kept: the archive holds
  for that SOP Instance UID what it held before.

Files that cannot even be offered (no file meta to announce them by) are listed below with
why, and the test fails when that list is not exactly what the corpus holds. The archive
overwrites duplicates, so each of the several encodings of one instance is checked in turn.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_dataset, read_preamble
from pynetdicom import _config
from pynetdicom.association import Association
from pynetdicom.dsutils import split_dataset

from tests.support import scu
from tests.support.corpus import PYDICOM_TEST_FILES
from tests.support.web import WebNode, multipart_parts, running_web_node

FILES = sorted(path for path in PYDICOM_TEST_FILES.rglob("*") if path.is_file())
META_KEYWORDS = ("MediaStorageSOPClassUID", "MediaStorageSOPInstanceUID", "TransferSyntaxUID")

# Files no C-STORE can announce: without a file meta there is no SOP Class, SOP Instance or
# transfer syntax to send them under (PS3.10 7.1), and the raw bytes cannot be sent otherwise.
NOT_OFFERED = {
    "ExplVR_BigEndNoMeta.dcm": "no preamble or DICM prefix: a data set without file meta",
    "ExplVR_LitEndNoMeta.dcm": "no preamble or DICM prefix: a data set without file meta",
    "no_meta.dcm": "no preamble or DICM prefix: a data set without file meta",
    "rtstruct.dcm": "no preamble or DICM prefix: a data set without file meta",
    "README.txt": "not DICOM (pydicom's notes on the corpus)",
    "dicomdirtests/README.txt": "not DICOM (pydicom's notes on the corpus)",
    "dicomdirtests/TINY_ALPHA/README": "not DICOM (pydicom's notes on the corpus)",
    "crayons.icc": "not DICOM (an ICC profile)",
    "rtplan.dump": "not DICOM (a text dump)",
    "rtstruct.dump": "not DICOM (a text dump)",
    "test1.json": "not DICOM (DICOM JSON)",
    "test_PN.json": "not DICOM (DICOM JSON)",
    "zipMR.gz": "not DICOM (a gzip file)",
    "meta_missing_tsyntax.dcm": "file meta without Transfer Syntax UID",
    "empty_charset_LEI.dcm": "file meta without Media Storage SOP Class and Instance UIDs",
    "nested_priv_SQ.dcm": "file meta with empty Media Storage SOP Class and Instance UIDs",
}

# SOP classes the archive refuses at association negotiation, which is a refusal too.
NOT_STORED_CLASSES = {
    # A DICOMDIR indexes a file-set (PS3.10 8); it is not a composite instance to archive.
    "1.2.840.10008.1.3.10": "Media Storage Directory Storage",
}

SUCCESS = 0x0000
WARNINGS = (0x0001, 0x0107, 0x0116, *range(0xB000, 0xC000))


def _name(path: Path) -> str:
    return path.relative_to(PYDICOM_TEST_FILES).as_posix()


def _file_meta(path: Path) -> tuple[Dataset, int] | None:
    """The file meta and the offset of the data set, or None when the file has no file meta
    holding the three attributes a C-STORE is announced by."""
    try:
        meta, offset = split_dataset(path)
    except (InvalidDicomError, EOFError, OSError):
        return None
    if not meta or any(not meta.get(keyword) for keyword in META_KEYWORDS):
        return None
    return meta, offset


OFFERED = {_name(path): meta for path in FILES if (meta := _file_meta(path)) is not None}
CONTEXTS = sorted(
    {
        (str(meta.MediaStorageSOPClassUID), str(meta.TransferSyntaxUID))
        for meta, _ in OFFERED.values()
    }
)


def test_files_that_cannot_be_offered_are_the_listed_ones() -> None:
    unoffered = {_name(path) for path in FILES} - set(OFFERED)
    assert unoffered == set(NOT_OFFERED)


class Sender:
    """One association with a context per (SOP class, transfer syntax) of the corpus, opened
    again when the archive aborted the previous one."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._context: Any = None
        self.assoc: Association | None = None

    def send(self, path: Path, context: tuple[str, str]) -> Dataset | None:
        """The C-STORE response, or None when the archive refused the context."""
        if self.assoc is None or not self.assoc.is_established:
            self.close()
            self._context = scu.association(self.port, [(c, [s]) for c, s in CONTEXTS])
            self.assoc = self._context.__enter__()
        accepted = {
            (str(cx.abstract_syntax), str(cx.transfer_syntax[0]))
            for cx in self.assoc.accepted_contexts
        }
        return self.assoc.send_c_store(path) if context in accepted else None

    def close(self) -> None:
        if self._context is not None:
            self._context.__exit__(None, None, None)
        self._context = self.assoc = None


@contextmanager
def _raw_sending() -> Iterator[None]:
    """pynetdicom sends a file's data set bytes as written, not a re-encoding of its parse."""
    saved = _config.STORE_SEND_CHUNKED_DATASET
    _config.STORE_SEND_CHUNKED_DATASET = True
    try:
        yield
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = saved


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebNode]:
    with running_web_node(
        tmp_path_factory.mktemp("raw-corpus"), archive={"duplicates": "overwrite"}
    ) as node:
        yield node


@pytest.fixture(scope="module")
def sender(web: WebNode) -> Iterator[Sender]:
    sender = Sender(web.dicom.port)
    with _raw_sending():
        yield sender
    sender.close()


@pytest.fixture(scope="module")
def http(web: WebNode) -> Iterator[httpx.Client]:
    with web.client() as client:
        yield client


def _found(http: httpx.Client, sop_instance_uid: str) -> list[dict[str, Any]]:
    response = http.get(
        "/dicom-web/instances",
        params={"SOPInstanceUID": sop_instance_uid, "includefield": "0020000D,0020000E"},
    )
    assert response.status_code in (200, 204), response.text
    return response.json() if response.status_code == 200 else []


def _value(result: dict[str, Any], tag: str) -> str:
    return result[tag]["Value"][0]


def _retrieved(http: httpx.Client, match: dict[str, Any]) -> bytes:
    """The single part of a WADO-RS instance retrieval in the stored syntax."""
    url = (
        f"/dicom-web/studies/{_value(match, '0020000D')}/series/{_value(match, '0020000E')}"
        f"/instances/{_value(match, '00080018')}"
    )
    response = http.get(
        url, headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'}
    )
    assert response.status_code == 200, response.text
    [(_, body)] = multipart_parts(response.content, response.headers["content-type"])
    return body


def _dataset_offset(part10: bytes) -> int:
    """Where the data set of a Part 10 file starts, after the preamble and file meta."""
    file = io.BytesIO(part10)
    read_preamble(file, False)
    read_dataset(file, False, True, stop_when=lambda tag, vr, length: tag.group != 2)
    return file.tell()


def _state(http: httpx.Client, sop_instance_uid: str) -> bytes | None:
    """What the archive holds for the UID: the stored file, or None."""
    found = _found(http, sop_instance_uid)
    assert len(found) <= 1
    return _retrieved(http, found[0]) if found else None


@pytest.mark.parametrize("name", sorted(OFFERED))
def test_raw_file_is_stored_whole_or_refused(
    web: WebNode, http: httpx.Client, sender: Sender, name: str
) -> None:
    path = PYDICOM_TEST_FILES / name
    meta, offset = OFFERED[name]
    uid = str(meta.MediaStorageSOPInstanceUID)
    before, count_before = _state(http, uid), web.dicom.instance_count()

    sop_class = str(meta.MediaStorageSOPClassUID)
    status = sender.send(path, (sop_class, str(meta.TransferSyntaxUID)))

    if status is None:
        assert sop_class in NOT_STORED_CLASSES, f"{name}: its context was refused"
        assert _state(http, uid) == before
        return
    code = int(status.Status) if "Status" in status else None
    if code == SUCCESS or code in WARNINGS:
        [match] = _found(http, uid)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            carried = dcmread(path, stop_before_pixels=True)
        assert _value(match, "0020000D") == carried.StudyInstanceUID
        assert _value(match, "0020000E") == carried.SeriesInstanceUID
        stored = _retrieved(http, match)
        assert stored[_dataset_offset(stored) :] == path.read_bytes()[offset:], "data set differs"
    else:
        assert code is not None, f"no response (association aborted) for {name}"
        assert code >= 0xA000, f"{name}: status 0x{code:04X} is neither success nor failure"
        assert str(status.get("ErrorComment", "")).strip(), "a failure says why"
        assert _state(http, uid) == before, "a refused file changed what was stored"
        assert web.dicom.instance_count() == count_before
