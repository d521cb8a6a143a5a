"""The data set a C-STORE sub-operation sends, and on which presentation context.

An instance goes out in its stored transfer syntax when the receiver accepted it: the bytes
after the stored file's meta group, never decoded (a `FileSlice` of a local stored file, which
the association sends straight from the file). Otherwise it is converted to an
uncompressed syntax the receiver accepted (`openpacs.dicom.transcode`). When neither works
the sub-operation fails (None), and the retrieve lists the instance as failed.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterable, Mapping
from pathlib import Path

from pydicom import dcmread

from openpacs.archive.records import StoredInstance
from openpacs.archive.service import Archive
from openpacs.dicom.transcode import transcode
from openpacs.dimse.association import FileSlice
from openpacs.dimse.datasets import encode
from openpacs.dimse.messages import C_STORE_RQ, PRIORITY_MEDIUM
from openpacs.dimse.negotiation import AcceptedContext
from openpacs.dimse.retrieve import sendable_syntax
from openpacs.errors import OpenPacsError

log = logging.getLogger(__name__)

_ELEMENT = struct.Struct("<HH2s")  # tag and VR of a file meta element (explicit VR LE)
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN",
                       b"UR", b"UT", b"UV"})  # fmt: skip
_META_LIMIT = 65536  # far more than any file meta group holds


def dataset_offset(path: Path) -> int:
    """Where the data set starts in a Part 10 file (after preamble, "DICM" and file meta).

    The meta group's elements are walked rather than its group length trusted, since files
    written without (0002,0000) are common and still stored byte for byte."""
    with path.open("rb") as file:
        head = file.read(144)
        if len(head) < 132 or head[128:132] != b"DICM":
            raise OpenPacsError(f"{path.name} is not a Part 10 file")
        if len(head) == 144 and _ELEMENT.unpack_from(head, 132) == (2, 0, b"UL"):
            return 144 + struct.unpack_from("<L", head, 140)[0]  # the group length says
        head += file.read(_META_LIMIT - 12)
    offset = 132
    while offset + 8 <= len(head):
        group, _element, vr = _ELEMENT.unpack_from(head, offset)
        if group != 2:
            return offset
        if vr not in _LONG_VRS:
            offset += 8 + struct.unpack_from("<H", head, offset + 6)[0]
        elif offset + 12 <= len(head):
            offset += 12 + struct.unpack_from("<L", head, offset + 8)[0]
        else:
            break
    if offset == len(head) < 132 + _META_LIMIT:
        return offset  # a file meta group and no data set
    raise OpenPacsError(f"{path.name} has no readable file meta group")


def store_syntaxes(
    contexts: Iterable[AcceptedContext], instance: StoredInstance, *, as_scp: bool
) -> dict[str, int]:
    """Transfer syntax -> context ID of the accepted contexts that may carry `instance`'s
    C-STORE: those where we are SCP (C-GET, on the requestor's association) or SCU (C-MOVE)."""
    return {
        accepted.transfer_syntax: accepted.id
        for accepted in contexts
        if accepted.abstract_syntax == instance.sop_class_uid
        and (accepted.scp_role if as_scp else accepted.scu_role)
    }


def store_request(
    instance: StoredInstance, message_id: int, originator: tuple[str, int] | None = None
) -> dict[str, object]:
    """The C-STORE-RQ command of a sub-operation; a C-MOVE's names its originator."""
    command: dict[str, object] = {
        "CommandField": C_STORE_RQ,
        "MessageID": message_id,
        "AffectedSOPClassUID": instance.sop_class_uid,
        "AffectedSOPInstanceUID": instance.sop_uid,
        "Priority": PRIORITY_MEDIUM,
    }
    if originator is not None:
        command["MoveOriginatorApplicationEntityTitle"] = originator[0]
        command["MoveOriginatorMessageID"] = originator[1]
    return command


def payload_for(
    archive: Archive, instance: StoredInstance, contexts: Mapping[str, int]
) -> tuple[int, bytes | FileSlice] | None:
    """(context ID, data set bytes) for `instance`, given the accepted contexts of its SOP
    class by transfer syntax; None when it cannot be sent."""
    try:
        target = sendable_syntax(instance, contexts)
        stored = archive.stored_file(instance) if target == instance.transfer_syntax else None
        if stored is not None:  # sent from the file by the association, never read here
            offset = dataset_offset(stored)
            return contexts[target], FileSlice(stored, offset, stored.stat().st_size - offset)
        with archive.open_local(instance) as path:
            if target == instance.transfer_syntax:
                offset = dataset_offset(path)
                with path.open("rb") as file:
                    file.seek(offset)
                    return contexts[target], file.read()
            dataset = dcmread(path)
        return contexts[target], encode(transcode(dataset, target), target)
    except OpenPacsError as exc:
        log.warning("sub-operation cannot be sent sop=%s reason=%s", instance.sop_uid, exc.reason)
    except Exception as exc:
        log.exception("sub-operation failed sop=%s: %s", instance.sop_uid, type(exc).__name__)
    return None
