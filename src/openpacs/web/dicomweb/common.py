"""What every DICOMweb route needs: checked path UIDs, the instances they name, URLs."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

from fastapi import Request

from openpacs.archive.records import StoredInstance
from openpacs.archive.service import Archive
from openpacs.dicom.render import RenderCache
from openpacs.dicom.unique_keys import path_query
from openpacs.errors import NotFound, OpenPacsError

_CACHE_LOCK = threading.Lock()
log = logging.getLogger(__name__)


def instances_of(
    archive: Archive, study: str, series: str | None = None, instance: str | None = None
) -> list[StoredInstance]:
    """The stored instances under the path's UIDs, in study/series/instance order."""
    found = archive.instances_for(path_query(study, series, instance))
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
