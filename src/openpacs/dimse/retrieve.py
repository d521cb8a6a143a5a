"""What C-GET and C-MOVE send: retrieval queries, presentation contexts and datasets.

Each instance goes out in its stored transfer syntax when the receiver accepted it; otherwise it
is converted to an uncompressed syntax the receiver accepted (`openpacs.dicom.transcode`).
When neither works the sub-operation fails and the instance is listed in the Failed SOP
Instance UID List, while the others are still sent.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence

from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pynetdicom.presentation import PresentationContext, build_context
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from openpacs.archive.records import StoredInstance
from openpacs.archive.service import Archive
from openpacs.dicom.query import Query, query_from_identifier
from openpacs.dicom.transcode import UNCOMPRESSED, choose_syntax, transcode
from openpacs.dicom.unique_keys import retrieval_query
from openpacs.dimse import tuning
from openpacs.dimse.tuning import StoredFile
from openpacs.errors import OpenPacsError

log = logging.getLogger(__name__)

_MAX_CONTEXTS = 128  # PS3.8 9.3.2: presentation context IDs are odd numbers 1-255


def retrieve_query(identifier: Dataset) -> Query:
    """What a C-GET/C-MOVE identifier retrieves (`openpacs.dicom.unique_keys`)."""
    return retrieval_query(query_from_identifier(identifier))


def accepted_syntaxes(contexts: Iterable[PresentationContext]) -> dict[str, set[str]]:
    """Transfer syntaxes accepted for each SOP class in which we may send C-STOREs."""
    accepted: dict[str, set[str]] = defaultdict(set)
    for context in contexts:
        if context.as_scu and context.transfer_syntax:
            accepted[str(context.abstract_syntax)].add(str(context.transfer_syntax[0]))
    return accepted


def proposed_contexts(instances: Sequence[StoredInstance]) -> list[tuple[str, list[str]]]:
    """(SOP class, transfer syntaxes) to propose to a C-STORE receiver, one context each.

    One context per (SOP class, stored syntax), so the receiver can accept each stored syntax
    on its own, plus one uncompressed fallback per SOP class for what it refuses, plus
    Verification: a destination that accepts none of the storage contexts still associates,
    so each sub-operation can fail on its own and be reported (PS3.4 C.4.2.1.5), and a move
    refused for a bad identifier can send its failure status.
    """
    verification = (str(Verification), list(UNCOMPRESSED))
    room = _MAX_CONTEXTS - 1
    stored: dict[str, set[str]] = defaultdict(set)
    for instance in instances:
        stored[instance.sop_class_uid].add(instance.transfer_syntax)
    exact = [(sop, [ts]) for sop, syntaxes in sorted(stored.items()) for ts in sorted(syntaxes)]
    fallbacks = [(sop, list(UNCOMPRESSED)) for sop in sorted(stored)]
    if len(exact) + len(fallbacks) <= room:
        return [*exact, *fallbacks, verification]
    merged = [(sop, sorted(stored[sop]) + list(UNCOMPRESSED)) for sop in sorted(stored)[:room]]
    return [*merged, verification]


def move_contexts(instances: Sequence[StoredInstance]) -> list[PresentationContext]:
    """`proposed_contexts` as pynetdicom's presentation contexts (the send jobs' SCU)."""
    return [build_context(sop, syntaxes) for sop, syntaxes in proposed_contexts(instances)]


def sendable_syntax(instance: StoredInstance, accepted: Collection[str]) -> str:
    """The syntax `instance` goes out in (`choose_syntax`); OpenPacsError when none fits."""
    target = choose_syntax(instance.transfer_syntax, accepted)
    if target is None:
        raise OpenPacsError(
            f"the receiver accepts none of {instance.transfer_syntax} or an uncompressed"
            f" syntax for SOP class {instance.sop_class_uid}"
        )
    return target


def dataset_for(archive: Archive, instance: StoredInstance, accepted: set[str]) -> Dataset:
    """The instance ready to send, or a stub that the C-STORE layer will fail to send."""
    try:
        target = sendable_syntax(instance, accepted)
        stored = archive.stored_file(instance) if target == instance.transfer_syntax else None
        if stored is not None and tuning.sends_stored_files():
            return StoredFile(stored, instance.sop_class_uid, instance.sop_uid, target)
        with archive.open_local(instance) as path:
            dataset = dcmread(path)
        return transcode(dataset, target)
    except OpenPacsError as exc:
        log.warning("sub-operation cannot be sent sop=%s reason=%s", instance.sop_uid, exc.reason)
    except Exception as exc:
        log.exception("sub-operation failed sop=%s: %s", instance.sop_uid, type(exc).__name__)
    return _unsendable(instance)


def _unsendable(instance: StoredInstance) -> Dataset:
    """A dataset no accepted context fits: sending it fails and counts as a failed
    sub-operation with this SOP Instance UID in the failed list (PS3.4 C.4.2.1.4.2)."""
    stub = Dataset()
    stub.SOPClassUID = instance.sop_class_uid
    stub.SOPInstanceUID = instance.sop_uid
    stub.file_meta = FileMetaDataset()
    stub.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.999.unsendable"
    return stub
