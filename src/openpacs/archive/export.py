"""Exporting what a query selects (`openpacs export`): a DICOMDIR media set in a folder
(PS3.10), or the same media set in a ZIP archive. pydicom's FileSet names the files and
writes them with the file meta information a media set needs; datasets keep their values."""

from __future__ import annotations

import logging
import os
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from openpacs.archive.service import Archive
from openpacs.dicom.levels import Level
from openpacs.dicom.media import MediaSetResult, write_media_set
from openpacs.dicom.query import Condition, Query
from openpacs.errors import InvalidQuery

log = logging.getLogger(__name__)


def export_media_set(
    archive: Archive, conditions: Sequence[Condition], folder: Path
) -> MediaSetResult:
    """Write the instances matching every condition (on indexed keys) to `folder`, which
    must be new or empty, as a media set with its DICOMDIR."""
    if folder.exists() and any(folder.iterdir()):
        raise InvalidQuery(f"{folder} is not empty: a media set needs a folder of its own")
    instances = archive.instances_for(Query(Level.IMAGE, tuple(conditions)))
    result = write_media_set(
        ((instance.sop_uid, archive.open_local(instance)) for instance in instances), folder
    )
    for sop_uid, reason in result.left_out:
        log.warning("left out of the media set sop_uid=%s reason=%s", sop_uid, reason)
    return result


def export_zip(archive: Archive, conditions: Sequence[Condition], target: Path) -> MediaSetResult:
    """The media set of `export_media_set` in a ZIP archive at `target` (written beside it,
    then renamed into place)."""
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        media = Path(work) / "media"
        result = export_media_set(archive, conditions, media)
        partial = Path(work) / "partial.zip"
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED, allowZip64=True) as bundle:
            for path in sorted(media.rglob("*")):
                if path.is_file():
                    bundle.write(path, path.relative_to(media).as_posix())
        os.replace(partial, target)
    return result
