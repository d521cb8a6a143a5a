"""Command set codec (PS3.7 Annex E) and P-DATA fragments, against pydicom's encoding."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from openpacs.dimse import messages
from openpacs.dimse.messages import MessageError, decode_command, encode_command, fragments

STORE_RQ = {
    "AffectedSOPClassUID": "1.2.840.10008.5.1.4.1.1.2",
    "CommandField": messages.C_STORE_RQ,
    "MessageID": 7,
    "Priority": messages.PRIORITY_MEDIUM,
    "CommandDataSetType": messages.HAS_DATASET,
    "AffectedSOPInstanceUID": "1.2.3.4.5",
    "MoveOriginatorApplicationEntityTitle": "MOVER",
    "MoveOriginatorMessageID": 3,
}


def _pydicom_command(fields: dict[str, object]) -> bytes:
    """The same command set as pydicom writes it (Implicit VR LE), with its group length."""
    ds = Dataset()
    for keyword, value in fields.items():
        setattr(ds, keyword, value)
    body = _implicit_le(ds)
    head = Dataset()
    head.CommandGroupLength = len(body)
    return _implicit_le(head) + body


def _implicit_le(ds: Dataset) -> bytes:
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, True
    write_dataset(buffer, ds)
    return buffer.getvalue()


def test_encode_matches_pydicom_byte_for_byte() -> None:
    assert encode_command(STORE_RQ) == _pydicom_command(STORE_RQ)


def test_decode_round_trips_and_answers_the_usual_questions() -> None:
    fields = dict(STORE_RQ, OffendingElement=(0x00100010, 0x00100020), ErrorComment="bad  ")
    command = decode_command(encode_command(fields))
    assert command["AffectedSOPInstanceUID"] == "1.2.3.4.5"
    assert command["OffendingElement"] == (0x00100010, 0x00100020)
    assert command["ErrorComment"] == "bad"
    assert command.command_field == messages.C_STORE_RQ
    assert command.message_id == 7
    assert command.has_dataset
    assert not decode_command(
        encode_command({"CommandField": 0x8030, "CommandDataSetType": 0x0101})
    ).has_dataset


def test_unknown_group_0000_elements_are_kept_other_groups_refused() -> None:
    data = encode_command({"CommandField": 0x30}) + b"\x00\x00\x50\x00\x02\x00\x00\x00ab"
    assert decode_command(data)["(0000,0050)"] == b"ab"
    with pytest.raises(MessageError, match="not a command element"):
        decode_command(data + b"\x08\x00\x18\x00\x00\x00\x00\x00")


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x00\x00\x01\x02\x00",  # truncated header
        b"\x00\x00\x00\x01\x04\x00\x00\x00\x30",  # value past the end
        b"\x00\x00\x00\x01\x03\x00\x00\x00\x30\x00\x00",  # US of 3 bytes
        b"\x00\x00\x10\x01\x02\x00\x00\x00\x01\x00",  # no CommandField
    ],
)
def test_malformed_command_sets_raise_message_error(data: bytes) -> None:
    with pytest.raises(MessageError):
        decode_command(data)


def test_bad_values_are_refused_when_encoding() -> None:
    with pytest.raises(MessageError):
        encode_command({"CommandField": 70000})
    with pytest.raises(MessageError):
        encode_command({"NotAnElement": 1})


@settings(max_examples=400, deadline=None)
@given(
    st.binary(max_size=200),
    st.lists(st.tuples(st.integers(0, 500), st.integers(0, 255)), max_size=5),
)
def test_fuzzed_command_sets_decode_or_raise_message_error(
    prefix: bytes, flips: list[tuple[int, int]]
) -> None:
    data = bytearray(encode_command(STORE_RQ) + prefix)
    for at, value in flips:
        data[at % len(data)] = value
    with contextlib.suppress(MessageError):
        decode_command(bytes(data))


def test_fragments_fill_each_pdu_up_to_the_peer_maximum() -> None:
    data = bytes(range(256)) * 100
    parts = list(fragments(5, data, 4096, is_command=False))
    assert all(len(chunk) == 4090 for _, chunk in parts[:-1])
    assert b"".join(bytes(chunk) for _, chunk in parts) == data
    header, chunk = parts[-1]
    assert header[0] == 0x04
    assert int.from_bytes(header[2:6], "big") == len(chunk) + 6
    assert header[10] == 5
    assert header[11] == 0x02
    assert [h[11] for h, _ in parts[:-1]] == [0] * (len(parts) - 1)
    (only,) = fragments(1, b"cmd", 0, is_command=True)
    assert only[0][11] == 0x03
    assert bytes(only[1]) == b"cmd"
    (empty,) = fragments(1, b"", 4096, is_command=False)
    assert len(empty[1]) == 0
