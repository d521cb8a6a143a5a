"""DICOMweb (PS3.18) under /dicom-web: QIDO-RS, WADO-RS (with rendered resources), STOW-RS."""

from __future__ import annotations

from fastapi import APIRouter

from openpacs.web.dicomweb import qido, rendered, stow, wado

router = APIRouter(prefix="/dicom-web", tags=["DICOMweb"])
for _module in (qido, rendered, wado, stow):
    router.include_router(_module.router)

__all__ = ["router"]
