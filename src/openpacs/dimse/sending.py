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
from collections.abc import Mapping
from pathlib import Path

from pydicom import dcmread

from openpacs.archive.service import Archive
from openpacs.dicom.transcode import choose_syntax, transcode
from openpacs.dimse.association import FileSlice
from openpacs.dimse.datasets import encode
from openpacs.errors import OpenPacsError
from openpacs.index.records import StoredInstance

log = logging.getLogger(__name__)

_GROUP_LENGTH = struct.Struct("<HH2sHL")  # (0002,0000) UL, explicit VR little endian


def dataset_offset(path: Path) -> int:
    """Where the data set starts in a Part 10 file (after preamble, "DICM" and file meta)."""
    with path.open("rb") as file:
        head = file.read(144)
    if len(head) < 144 or head[128:132] != b"DICM":
        raise OpenPacsError(f"{path.name} is not a Part 10 file")
    group, element, vr, length, value = _GROUP_LENGTH.unpack_from(head, 132)
    if (group, element, vr, length) != (2, 0, b"UL", 4):
        raise OpenPacsError(f"{path.name} has no file meta group length")
    return 144 + value


def payload_for(
    archive: Archive, instance: StoredInstance, contexts: Mapping[str, int]
) -> tuple[int, bytes | FileSlice] | None:
    """(context ID, data set bytes) for `instance`, given the accepted contexts of its SOP
    class by transfer syntax; None when it cannot be sent."""
    target = choose_syntax(instance.transfer_syntax, contexts)
    try:
        if target is None:
            raise OpenPacsError(
                f"the receiver accepts none of {instance.transfer_syntax} or an uncompressed"
                f" syntax for SOP class {instance.sop_class_uid}"
            )
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
