"""DIMSE command sets (PS3.7 Annex E, Implicit VR Little Endian) and their P-DATA fragments.

The command set is a small closed set of group 0000 elements, so it is coded by hand rather
than through pydicom: `encode_command` writes CommandGroupLength first; `decode_command`
checks every length against the bytes it has and raises `MessageError` on anything else.
Group 0000 elements this table does not know are kept by tag (PS3.7 6.3.1 lets a receiver
ignore them); elements of any other group are refused.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from typing import cast

# CommandField values (PS3.7 E.1).
C_STORE_RQ, C_STORE_RSP = 0x0001, 0x8001
C_GET_RQ, C_GET_RSP = 0x0010, 0x8010
C_FIND_RQ, C_FIND_RSP = 0x0020, 0x8020
C_MOVE_RQ, C_MOVE_RSP = 0x0021, 0x8021
C_ECHO_RQ, C_ECHO_RSP = 0x0030, 0x8030
N_EVENT_REPORT_RQ, N_EVENT_REPORT_RSP = 0x0100, 0x8100
N_GET_RQ, N_GET_RSP = 0x0110, 0x8110
N_SET_RQ, N_SET_RSP = 0x0120, 0x8120
N_ACTION_RQ, N_ACTION_RSP = 0x0130, 0x8130
N_CREATE_RQ, N_CREATE_RSP = 0x0140, 0x8140
N_DELETE_RQ, N_DELETE_RSP = 0x0150, 0x8150
C_CANCEL_RQ = 0x0FFF

NO_DATASET = 0x0101  # CommandDataSetType: no data set follows
HAS_DATASET = 0x0001

PRIORITY_MEDIUM, PRIORITY_HIGH, PRIORITY_LOW = 0, 1, 2

# keyword -> (element number in group 0000, VR)
ELEMENTS: dict[str, tuple[int, str]] = {
    "CommandGroupLength": (0x0000, "UL"),
    "AffectedSOPClassUID": (0x0002, "UI"),
    "RequestedSOPClassUID": (0x0003, "UI"),
    "CommandField": (0x0100, "US"),
    "MessageID": (0x0110, "US"),
    "MessageIDBeingRespondedTo": (0x0120, "US"),
    "MoveDestination": (0x0600, "AE"),
    "Priority": (0x0700, "US"),
    "CommandDataSetType": (0x0800, "US"),
    "Status": (0x0900, "US"),
    "OffendingElement": (0x0901, "AT"),
    "ErrorComment": (0x0902, "LO"),
    "ErrorID": (0x0903, "US"),
    "AffectedSOPInstanceUID": (0x1000, "UI"),
    "RequestedSOPInstanceUID": (0x1001, "UI"),
    "EventTypeID": (0x1002, "US"),
    "AttributeIdentifierList": (0x1005, "AT"),
    "ActionTypeID": (0x1008, "US"),
    "NumberOfRemainingSuboperations": (0x1020, "US"),
    "NumberOfCompletedSuboperations": (0x1021, "US"),
    "NumberOfFailedSuboperations": (0x1022, "US"),
    "NumberOfWarningSuboperations": (0x1023, "US"),
    "MoveOriginatorApplicationEntityTitle": (0x1030, "AE"),
    "MoveOriginatorMessageID": (0x1031, "US"),
}
_BY_ELEMENT = {element: (keyword, vr) for keyword, (element, vr) in ELEMENTS.items()}
_ORDER = {keyword: element for keyword, (element, _) in ELEMENTS.items()}
_ELEMENT_HEADER = struct.Struct("<HHL")
MAX_COMMAND = 64 * 1024  # a command set is a few hundred bytes; more is a malformed message


class MessageError(Exception):
    """A command set that cannot be decoded or encoded."""


CommandValue = int | str | bytes | tuple[int, ...]


class Command(Mapping[str, CommandValue]):
    """A decoded command set: keyword -> value (unknown group 0000 tags as '(0000,eeee)')."""

    __slots__ = ("_values",)

    def __init__(self, values: dict[str, CommandValue]) -> None:
        self._values = values

    def __getitem__(self, key: str) -> CommandValue:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Command({self._values!r})"

    @property
    def command_field(self) -> int:
        return cast(int, self._values.get("CommandField", -1))

    @property
    def message_id(self) -> int:
        return cast(int, self._values.get("MessageID", -1))

    @property
    def has_dataset(self) -> bool:
        return self._values.get("CommandDataSetType", NO_DATASET) != NO_DATASET


def _encode_value(vr: str, value: object, keyword: str) -> bytes:
    if vr == "US":
        if not isinstance(value, int) or not 0 <= value <= 0xFFFF:
            raise MessageError(f"{keyword} must be an unsigned 16-bit integer, not {value!r}")
        return value.to_bytes(2, "little")
    if vr == "UL":
        if not isinstance(value, int) or not 0 <= value <= 0xFFFFFFFF:
            raise MessageError(f"{keyword} must be an unsigned 32-bit integer, not {value!r}")
        return value.to_bytes(4, "little")
    if vr == "AT":
        tags = (value,) if isinstance(value, int) else value
        if not isinstance(tags, (tuple, list)):
            raise MessageError(f"{keyword} must be a tag or tags, not {value!r}")
        return b"".join(struct.pack("<HH", tag >> 16, tag & 0xFFFF) for tag in tags)
    if isinstance(value, bytes):
        raw = value
    elif isinstance(value, str):
        raw = value.encode("ascii" if vr != "LO" else "latin-1")
    else:
        raise MessageError(f"{keyword} must be text, not {value!r}")
    if len(raw) % 2:
        raw += b"\0" if vr == "UI" else b" "
    return raw


def encode_command(fields: Mapping[str, object]) -> bytes:
    """The command set's bytes, CommandGroupLength first, elements in tag order."""
    parts = []
    for keyword in sorted(fields, key=lambda k: _ORDER.get(k, -1)):
        if keyword == "CommandGroupLength":
            continue
        if keyword not in ELEMENTS:
            raise MessageError(f"{keyword} is not a command element")
        element, vr = ELEMENTS[keyword]
        value = _encode_value(vr, fields[keyword], keyword)
        parts.append(_ELEMENT_HEADER.pack(0, element, len(value)))
        parts.append(value)
    body = b"".join(parts)
    return _ELEMENT_HEADER.pack(0, 0, 4) + len(body).to_bytes(4, "little") + body


def _decode_value(vr: str, raw: memoryview, keyword: str) -> CommandValue:
    if vr in ("US", "UL"):
        size = 2 if vr == "US" else 4
        if len(raw) != size:
            raise MessageError(f"{keyword} has length {len(raw)}, not {size}")
        return int.from_bytes(raw, "little")
    if vr == "AT":
        if len(raw) % 4:
            raise MessageError(f"{keyword} length {len(raw)} is not a multiple of 4")
        pairs = struct.iter_unpack("<HH", raw)
        return tuple((group << 16) | element for group, element in pairs)
    text = bytes(raw)
    try:
        decoded = text.decode("ascii" if vr != "LO" else "latin-1")
    except UnicodeDecodeError:
        raise MessageError(f"{keyword} is not ASCII") from None
    return decoded.rstrip("\0 ") if vr == "UI" else decoded.strip(" \0")


def decode_command(data: bytes | bytearray | memoryview) -> Command:
    """Decode a command set; raises `MessageError` on any malformation."""
    view = memoryview(data)
    if len(view) > MAX_COMMAND:
        raise MessageError(f"command set of {len(view)} bytes is too large")
    values: dict[str, CommandValue] = {}
    at, end = 0, len(view)
    while at < end:
        if end - at < 8:
            raise MessageError("command element header truncated")
        group, element, length = _ELEMENT_HEADER.unpack_from(view, at)
        at += 8
        if group != 0:
            raise MessageError(f"element ({group:04x},{element:04x}) is not a command element")
        if length > end - at:
            raise MessageError(
                f"element (0000,{element:04x}) announces {length} bytes past the end"
            )
        raw = view[at : at + length]
        at += length
        known = _BY_ELEMENT.get(element)
        if known is None:
            values[f"(0000,{element:04x})"] = bytes(raw)
            continue
        keyword, vr = known
        if keyword in values:
            raise MessageError(f"{keyword} appears twice")
        values[keyword] = _decode_value(vr, raw, keyword)
    if "CommandField" not in values:
        raise MessageError("command set without CommandField")
    return Command(values)


_PDU_PDV_HEADER = struct.Struct(">BxLLBB")


def fragments(
    context_id: int, data: bytes | memoryview, max_pdu: int, *, is_command: bool
) -> Iterator[tuple[bytes, memoryview]]:
    """(header, fragment) pairs, one P-DATA-TF with one PDV each, of at most `max_pdu`.

    The header is the PDU header and the PDV header together (12 bytes), so a transport can
    write header and fragment with `writelines` and never join them. `max_pdu` 0: no limit.
    """
    view = memoryview(data)
    step = max_pdu - 6 if max_pdu else max(len(view), 1)
    if step <= 0:
        raise MessageError(f"maximum PDU length {max_pdu} leaves no room for data")
    total = len(view)
    offset = 0
    while True:
        chunk = view[offset : offset + step]
        offset += len(chunk)
        last = offset >= total
        yield pdv_header(context_id, len(chunk), is_command=is_command, last=last), chunk
        if last:
            return


def pdv_header(context_id: int, length: int, *, is_command: bool, last: bool) -> bytes:
    """The 12-byte P-DATA-TF and PDV header in front of one fragment of `length` bytes."""
    control = int(is_command) | (int(last) << 1)
    return _PDU_PDV_HEADER.pack(0x04, length + 6, length + 2, context_id, control)
