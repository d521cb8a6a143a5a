"""Build C-FIND responses (PS3.4 C.4.1.1.3.2) from index matches.

The content of a result is `openpacs.dicom.results` (shared with QIDO-RS); a C-FIND response
adds the Query/Retrieve Level, always answers RetrieveAETitle, and declares UTF-8
(SpecificCharacterSet ISO_IR 192) when any value is not ASCII, since text is Unicode inside.

A C-FIND answers one response per match, so encoding them is the bulk of its work: a response
whose attributes are all text (the usual return keys: names, IDs, UIDs, dates, codes) is
encoded here straight from the match in a little-endian syntax, the bytes pydicom writes for
the same data set; anything else (sequences, binary or numeric VRs, Big Endian, deflate) is
built as a pydicom data set and encoded by pydicom.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from openpacs.archive.records import Match
from openpacs.dicom.query import Query
from openpacs.dicom.results import has_non_ascii, result_dataset, result_tags, source_of
from openpacs.dimse.datasets import encode

UTF8 = "ISO_IR 192"
_RETRIEVE_AE_TITLE = 0x00080054  # returned always: where to C-MOVE or C-GET this from
_QUERY_RETRIEVE_LEVEL = 0x00080052
_SPECIFIC_CHARACTER_SET = 0x00080005
# VRs whose value is text with "\" between values; the long-length ones among them (PS3.5
# table 7.1-1) take a 4-byte length in Explicit VR.
_TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "LO", "LT", "SH", "ST", "TM", "UI", "PN",
                       "UC", "UR", "UT"})  # fmt: skip
_LONG_TEXT_VRS = frozenset({"UC", "UR", "UT"})
_NUMBER_VRS = frozenset({"IS", "DS"})  # text too, but stored ones are JSON numbers
_SINGLE_VALUED = frozenset({"LT", "ST", "UR", "UT"})  # a "\" is text there, not a separator
_SHORT = struct.Struct("<HH2sH")
_LONG = struct.Struct("<HH2sxxL")
_IMPLICIT = struct.Struct("<HHL")


@dataclass(frozen=True)
class FindResponse:
    """The identifier of one pending C-FIND response, encoded when the syntax is known."""

    query: Query
    match: Match
    retrieve_aet: str

    def dataset(self) -> Dataset:
        tags = {*self.query.return_tags, _RETRIEVE_AE_TITLE}
        response = result_dataset(self.match, tags, retrieve_aet=self.retrieve_aet)
        response.QueryRetrieveLevel = self.match.level.value
        if self.query.charset_requested or has_non_ascii(response):
            response.SpecificCharacterSet = UTF8
        return response

    def encoded(self, transfer_syntax: str) -> bytes:
        """The identifier's bytes in `transfer_syntax`."""
        if transfer_syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
            texts = self._texts()
            implicit = transfer_syntax == ImplicitVRLittleEndian
            data = _encode_texts(texts, implicit=implicit) if texts is not None else None
            if data is not None:
                return data
        return encode(self.dataset(), transfer_syntax)

    def _texts(self) -> dict[int, tuple[str, str]] | None:
        """tag -> (VR, text) of every attribute, or None when one is not text."""
        texts: dict[int, tuple[str, str]] = {}
        requested = {*self.query.return_tags, _RETRIEVE_AE_TITLE}
        for tag in result_tags(self.match.level, requested):
            source = source_of(tag, self.match, self.retrieve_aet)
            if source is None:
                continue
            vr, value, stored = source
            if stored is None and vr in _NUMBER_VRS:
                text = _value_text(value)  # a count or number from the index, as text already
            elif vr in _TEXT_VRS:
                text = _value_text(value) if stored is None else _stored_text(vr, stored)
            else:
                return None
            if text is None:
                return None
            texts[tag] = (vr, text)
        texts[_QUERY_RETRIEVE_LEVEL] = ("CS", self.match.level.value)
        unicode = not all(text.isascii() for _, text in texts.values())
        if self.query.charset_requested or unicode:
            texts[_SPECIFIC_CHARACTER_SET] = ("CS", UTF8)
        return texts


def find_response(query: Query, match: Match, *, retrieve_aet: str) -> FindResponse:
    return FindResponse(query, match, retrieve_aet)


def _value_text(value: Any) -> str | None:
    """An index value (a string, a list of strings, or nothing) as the element's text."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\\".join(value)
    return None


def _stored_text(vr: str, stored: Mapping[str, Any]) -> str | None:
    """A stored DICOM JSON element's values as the element's text; None for what only
    pydicom renders (binary values, numbers, odd shapes)."""
    values = stored.get("Value")
    if not isinstance(values, list) or (vr in _SINGLE_VALUED and len(values) != 1):
        return None
    texts = []
    for value in values:
        if vr == "PN":
            if not isinstance(value, dict) or not set(value) <= _PN_GROUPS:
                return None
            groups = [value.get(group) or "" for group in ("Alphabetic", "Ideographic", "Phonetic")]
            if not all(isinstance(group, str) for group in groups):
                return None
            while groups and not groups[-1]:
                groups.pop()
            texts.append("=".join(groups))
        elif isinstance(value, str):
            texts.append(value)
        else:
            return None
    return "\\".join(texts)


_PN_GROUPS = frozenset({"Alphabetic", "Ideographic", "Phonetic"})


def _encode_texts(texts: dict[int, tuple[str, str]], *, implicit: bool) -> bytes | None:
    """The elements in tag order; None when a value is too long for its VR's length field."""
    out = bytearray()
    for tag in sorted(texts):
        vr, text = texts[tag]
        data = text.encode("utf-8")
        if len(data) % 2:
            data += b"\0" if vr == "UI" else b" "
        group, element = tag >> 16, tag & 0xFFFF
        if implicit:
            out += _IMPLICIT.pack(group, element, len(data))
        elif vr in _LONG_TEXT_VRS:
            out += _LONG.pack(group, element, vr.encode("ascii"), len(data))
        elif len(data) <= 0xFFFF:
            out += _SHORT.pack(group, element, vr.encode("ascii"), len(data))
        else:
            return None
        out += data
    return bytes(out)
