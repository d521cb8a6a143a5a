"""What every DICOMweb route needs: checked path UIDs, the instances they name, URLs."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

from fastapi import Request

from openpacs.archive.service import Archive
from openpacs.dicom.levels import Level
from openpacs.dicom.query import Condition, Equals, Query
from openpacs.dicom.render import RenderCache
from openpacs.dicom.uids import checked_uid
from openpacs.errors import NotFound, OpenPacsError
from openpacs.index.records import StoredInstance

_UID_TAGS = {
    "StudyInstanceUID": 0x0020000D,
    "SeriesInstanceUID": 0x0020000E,
    "SOPInstanceUID": 0x00080018,
}
_CACHE_LOCK = threading.Lock()
log = logging.getLogger(__name__)


def uid_conditions(
    study: str, series: str | None = None, instance: str | None = None
) -> tuple[Condition, ...]:
    given = (
        ("StudyInstanceUID", study),
        ("SeriesInstanceUID", series),
        ("SOPInstanceUID", instance),
    )
    return tuple(
        Condition(keyword, _UID_TAGS[keyword], "uid", (Equals(checked_uid(uid, keyword)),))
        for keyword, uid in given
        if uid is not None
    )


def instances_of(
    archive: Archive, study: str, series: str | None = None, instance: str | None = None
) -> list[StoredInstance]:
    """The stored instances under the path's UIDs, in study/series/instance order."""
    found = archive.instances_for(Query(Level.IMAGE, uid_conditions(study, series, instance)))
    if not found:
        what = "instance" if instance else "series" if series else "study"
        raise NotFound(f"no such {what}")
    return found


def dicomweb_url(request: Request) -> str:
    """The service root as the client sees it, for RetrieveURL and BulkDataURI values."""
    return f"{str(request.base_url).rstrip('/')}/dicom-web"


def render_cache(request: Request) -> RenderCache:
    """One cache of rendered frames per application."""
    state = request.app.state
    cache = getattr(state, "render_cache", None)
    if cache is None:
        with _CACHE_LOCK:
            cache = getattr(state, "render_cache", None)
            if cache is None:
                cache = state.render_cache = RenderCache()
    return cache


def cut_short_on_error(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Once the status is sent an error can only end the body early: without its close
    delimiter the client sees an incomplete multipart body, never a silently short one."""
    try:
        yield from chunks
    except OpenPacsError as exc:
        log.warning("DICOMweb response cut short reason=%s", exc.reason)
    except Exception:
        log.exception("DICOMweb response cut short")
