"""Accept header negotiation for DICOMweb (PS3.18 8.7).

An Accept value lists media ranges with parameters and quality factors. WADO-RS asks for
`multipart/related; type="application/dicom"; transfer-syntax=...` (or octet-stream frames),
where `transfer-syntax=*` means "as stored" and a missing transfer-syntax means the media
type's default, Explicit VR Little Endian (PS3.18 8.7.3.5.2, Table 8.7.2-1). A wildcard
(`*/*`, `multipart/related` without a type) gets the default media type, application/dicom,
so the same default syntax: only `transfer-syntax=*` asks for the stored bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from openpacs.errors import OpenPacsError
from openpacs.web.multipart import parse_media_type

EXPLICIT_LITTLE = "1.2.840.10008.1.2.1"
ANY_SYNTAX = "*"


class NotAcceptable(OpenPacsError):
    http_status = 406


@dataclass(frozen=True)
class Acceptable:
    """One media range of an Accept header; `part_type` is the type of multipart parts."""

    media_type: str
    part_type: str | None
    transfer_syntax: str | None
    quality: float


def parse_accept(value: str | None) -> list[Acceptable]:
    """The media ranges of `value`, best first; `*/*` when there is no Accept header."""
    ranges: list[Acceptable] = []
    for item in _split(value or "*/*"):
        media = parse_media_type(item)
        try:
            quality = float(media.params.get("q", "1"))
        except ValueError:
            quality = 0.0
        if quality <= 0 or "/" not in media.type:
            continue
        part = media.params.get("type")
        syntax = media.params.get("transfer-syntax")
        ranges.append(Acceptable(media.type, part.lower() if part else None, syntax, quality))
    ranges.sort(key=lambda r: -r.quality)  # stable: equal qualities keep their order
    return ranges


def _split(value: str) -> list[str]:
    """Split at commas outside quoted strings."""
    items, current, quoted = [], [], False
    for char in value:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            items.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    items.append("".join(current).strip())
    return [item for item in items if item]


def _matches(pattern: str, media_type: str) -> bool:
    if pattern in ("*/*", media_type):
        return True
    main, _, sub = pattern.partition("/")
    return sub == "*" and media_type.startswith(main + "/")


def multipart_syntaxes(accept: list[Acceptable], part_type: str) -> list[str] | None:
    """Transfer syntaxes acceptable for multipart parts of `part_type`, best first.

    `*` means any (the stored one). None when the client accepts no such multipart body.
    """
    syntaxes: list[str] = []
    for item in accept:
        if item.media_type == "*/*":
            syntaxes.append(EXPLICIT_LITTLE)
        elif item.media_type == "multipart/related" and (
            item.part_type is None or _matches(item.part_type, part_type)
        ):
            syntaxes.append(item.transfer_syntax or EXPLICIT_LITTLE)
    return list(dict.fromkeys(syntaxes)) or None


def choose_media_type(accept: list[Acceptable], offered: tuple[str, ...]) -> str:
    """The first offered single-part media type the client accepts; NotAcceptable otherwise."""
    for item in accept:
        for media_type in offered:
            if _matches(item.media_type, media_type):
                return media_type
    raise NotAcceptable(f"acceptable media types here: {', '.join(offered)}")


def frame_parts(accept: list[Acceptable], stored_frame_type: str | None) -> list[tuple[str, str]]:
    """Acceptable (part media type, transfer syntax) for frames, best first.

    Frames are octet-stream in Explicit VR Little Endian, or the stored compressed bitstream
    (`stored_frame_type`, e.g. image/jp2) when the stored syntax is acceptable.
    """
    choices: list[tuple[str, str]] = []
    for item in accept:
        if item.media_type == "*/*":
            choices.append(("application/octet-stream", EXPLICIT_LITTLE))
            continue
        if item.media_type != "multipart/related":
            continue
        part = item.part_type or "application/octet-stream"
        syntax = item.transfer_syntax
        if _matches(part, "application/octet-stream") and syntax in (None, EXPLICIT_LITTLE):
            choices.append(("application/octet-stream", EXPLICIT_LITTLE))
        elif syntax == ANY_SYNTAX or (stored_frame_type and _matches(part, stored_frame_type)):
            choices.append((stored_frame_type or "application/octet-stream", ANY_SYNTAX))
        elif syntax is not None and stored_frame_type is not None:
            choices.append((part, syntax))
    return choices
