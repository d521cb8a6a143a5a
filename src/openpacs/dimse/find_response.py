"""Build C-FIND responses (PS3.4 C.4.1.1.3.2) from index matches.

The content of a result is `openpacs.dicom.results` (shared with QIDO-RS); a C-FIND response
adds the Query/Retrieve Level, always answers RetrieveAETitle, and declares UTF-8
(SpecificCharacterSet ISO_IR 192) when any value is not ASCII, since text is Unicode inside.
"""

from __future__ import annotations

from pydicom.dataset import Dataset

from openpacs.archive.records import Match
from openpacs.dicom.query import Query
from openpacs.dicom.results import has_non_ascii, result_dataset

UTF8 = "ISO_IR 192"
_RETRIEVE_AE_TITLE = 0x00080054  # returned always: where to C-MOVE or C-GET this from


def find_response(query: Query, match: Match, *, retrieve_aet: str) -> Dataset:
    tags = {*query.return_tags, _RETRIEVE_AE_TITLE}
    response = result_dataset(match, tags, retrieve_aet=retrieve_aet)
    response.QueryRetrieveLevel = match.level.value
    if query.charset_requested or has_non_ascii(response):
        response.SpecificCharacterSet = UTF8
    return response
