"""multipart/related: writer -> reader round trips under any chunking, and malformed bodies."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openpacs.web.multipart import (
    BodyTooLarge,
    MultipartError,
    MultipartReader,
    PartData,
    PartStart,
    UnsupportedMediaType,
    boundary_of,
    new_boundary,
    parse_media_type,
    write_parts,
)

Parts = list[tuple[dict[str, str], bytes]]


def _encode(parts: Parts, boundary: str, pieces: int = 3) -> bytes:
    def body(data: bytes) -> list[bytes]:
        step = max(1, len(data) // pieces)
        return [data[i : i + step] for i in range(0, len(data), step)]

    return b"".join(write_parts(((h, body(d)) for h, d in parts), boundary))


def _decode(chunks: list[bytes], boundary: str, **limits: int) -> Parts:
    reader = MultipartReader(boundary, **limits)
    parts: Parts = []
    data = bytearray()
    headers: dict[str, str] = {}
    for chunk in chunks:
        for event in reader.feed(chunk):
            if isinstance(event, PartStart):
                headers, data = event.headers, bytearray()
            elif isinstance(event, PartData):
                data += event.data
            else:
                assert event.size == len(data)
                parts.append((headers, bytes(data)))
    reader.finish()
    return parts


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


header_values = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40
).map(str.strip)
part = st.tuples(
    st.dictionaries(
        st.sampled_from(["content-type", "content-location", "x-extra"]), header_values, max_size=3
    ),
    st.binary(max_size=3000)
    | st.sampled_from([b"", b"\r\n", b"--", b"\r\n--", b"\r\n\r\n--x--\r\n"]),
)


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(part, max_size=6), cuts=st.lists(st.integers(0, 20000), max_size=12))
def test_round_trip_under_any_chunking(parts: Parts, cuts: list[int]) -> None:
    boundary = new_boundary()
    encoded = _encode(parts, boundary)
    assert _decode(_split(encoded, cuts), boundary) == parts


@settings(max_examples=50, deadline=None)
@given(parts=st.lists(part, min_size=1, max_size=4), cut=st.integers(0, 10**6))
def test_truncated_bodies_are_refused(parts: Parts, cut: int) -> None:
    boundary = new_boundary()
    encoded = _encode(parts, boundary)
    closing = len(b"--" + boundary.encode() + b"--")
    truncated = encoded[: cut % (len(encoded) - 2 - closing + 1)]
    with pytest.raises(MultipartError):
        _decode([truncated], boundary)


def test_preamble_epilogue_and_padding() -> None:
    body = (
        b"This is a preamble.\r\n--b  \r\nContent-Type: application/dicom\r\n\r\n"
        b"ABC\r\n--b\r\n\r\nDEF\r\n--b--\r\nepilogue"
    )
    assert _decode([body], "b") == [({"content-type": "application/dicom"}, b"ABC"), ({}, b"DEF")]


def test_limits() -> None:
    boundary = "b"
    body = _encode([({}, b"x" * 1000), ({}, b"y")], boundary)
    with pytest.raises(BodyTooLarge, match="part 1"):
        _decode([body], boundary, max_part_bytes=999)
    with pytest.raises(BodyTooLarge, match="parts"):
        _decode([body], boundary, max_parts=1)
    with pytest.raises(BodyTooLarge, match="body"):
        _decode([body[:600], body[600:]], boundary, max_total_bytes=500)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "no multipart boundary"),
        (b"just some text", "no multipart boundary"),
        (b"--b\r\nContent-Type: x\r\n", "headers"),
        (b"--b\r\nBad header line\r\n\r\nx\r\n--b--", "malformed header"),
        (b"--b junk\r\n\r\nx\r\n--b--", "followed by text"),
        (b"--b\r\n\r\npart without end", "truncated"),
        (b"--b\r\n" + b"H: " + b"v" * 20000, "16 KiB"),
    ],
)
def test_malformed_bodies(body: bytes, reason: str) -> None:
    with pytest.raises(MultipartError, match=reason):
        _decode([body], "b")


def test_content_type() -> None:
    value = 'multipart/related; type="application/dicom"; boundary="a b:c"'
    assert boundary_of(value) == "a b:c"
    media = parse_media_type('Multipart/Related; Type="application/dicom"; transfer-syntax=*')
    assert media.type == "multipart/related"
    assert media.params == {"type": "application/dicom", "transfer-syntax": "*"}
    with pytest.raises(UnsupportedMediaType, match="missing"):
        boundary_of(None)
    with pytest.raises(UnsupportedMediaType, match="application/json"):
        boundary_of("application/json")
    with pytest.raises(MultipartError, match="no boundary"):
        boundary_of("multipart/related; type=application/dicom")
    with pytest.raises(MultipartError, match="70"):
        boundary_of("multipart/related; boundary=" + "x" * 71)
