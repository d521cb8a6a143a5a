"""multipart/related (RFC 2387, RFC 2046 5.1) for DICOMweb: a streaming reader and writer.

Starlette parses only multipart/form-data. STOW-RS receives multipart/related bodies that may
be gigabytes, and WADO-RS sends them, so neither side may hold a whole body: the reader is an
incremental parser fed chunks as they arrive (events out: a part's headers, its data, its
end), and the writer is a generator of chunks around the parts' own chunk iterators.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email.message import Message

from openpacs.errors import OpenPacsError

_CRLF = b"\r\n"
_MAX_BOUNDARY = 70  # RFC 2046 5.1.1
_MAX_HEADER_BYTES = 16 * 1024


class MultipartError(OpenPacsError):
    """The body is not well-formed multipart/related."""

    http_status = 400


class UnsupportedMediaType(OpenPacsError):
    http_status = 415


class BodyTooLarge(OpenPacsError):
    http_status = 413


@dataclass(frozen=True)
class MediaType:
    """A parsed Content-Type or Accept media range: `type/subtype` and its parameters."""

    type: str
    params: dict[str, str]


def parse_media_type(value: str) -> MediaType:
    """`multipart/related; type="application/dicom"; boundary=x` (RFC 7231 3.1.1.1)."""
    message = Message()
    message["content-type"] = value
    # email's parser lower-cases the type and parameter names and unquotes the values.
    params = {k.lower(): str(v) for k, v in message.get_params(failobj=[], unquote=True)[1:]}
    main = value.split(";", 1)[0].strip().lower()
    return MediaType(main, params)


def boundary_of(content_type: str | None, *, expected: str = "multipart/related") -> str:
    """The boundary of a multipart body, or the reason the Content-Type is not acceptable."""
    if not content_type:
        raise UnsupportedMediaType(f"Content-Type is missing: expected {expected}")
    media = parse_media_type(content_type)
    if media.type != expected:
        raise UnsupportedMediaType(f"Content-Type {media.type!r} is not {expected}")
    boundary = media.params.get("boundary", "")
    if not boundary:
        raise MultipartError("the multipart Content-Type has no boundary parameter")
    if len(boundary) > _MAX_BOUNDARY or not boundary.isascii():
        raise MultipartError("the multipart boundary is not 1 to 70 ASCII characters")
    return boundary


@dataclass(frozen=True)
class PartStart:
    headers: dict[str, str]
    """Header names lower-cased."""

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "text/plain")


@dataclass(frozen=True)
class PartData:
    data: bytes


@dataclass(frozen=True)
class PartEnd:
    size: int


Event = PartStart | PartData | PartEnd


class MultipartReader:
    """An incremental multipart parser: `feed` chunks of any size, then `finish`."""

    def __init__(
        self,
        boundary: str,
        *,
        max_parts: int = 100_000,
        max_part_bytes: int | None = None,
        max_total_bytes: int | None = None,
    ) -> None:
        self._dash_boundary = b"--" + boundary.encode("ascii")
        self._delimiter = _CRLF + self._dash_boundary
        self._buffer = bytearray()
        self._state = "preamble"
        self._parts = 0
        self._part_bytes = 0
        self._total = 0
        self._max_parts = max_parts
        self._max_part_bytes = max_part_bytes
        self._max_total_bytes = max_total_bytes

    def feed(self, chunk: bytes) -> Iterator[Event]:
        self._total += len(chunk)
        if self._max_total_bytes is not None and self._total > self._max_total_bytes:
            raise BodyTooLarge(f"the body is larger than {self._max_total_bytes} bytes")
        if self._state == "epilogue":
            return  # RFC 2046: text after the close delimiter is ignored
        self._buffer += chunk
        while True:
            step = getattr(self, f"_{self._state}")()
            if step is None:
                return
            yield from step

    def finish(self) -> None:
        """The body ended: anything but a close delimiter means it was truncated."""
        if self._state != "epilogue":
            where = "in the headers of" if self._state == "headers" else "inside"
            if self._state == "preamble":
                raise MultipartError("the body has no multipart boundary line")
            raise MultipartError(f"the body is truncated {where} part {self._parts}")

    # Each state returns the events it produced, or None when it needs more data.

    def _preamble(self) -> list[Event] | None:
        start = 0 if self._buffer.startswith(self._dash_boundary) else -1
        if start < 0:
            found = self._buffer.find(self._delimiter)
            if found < 0:
                keep = len(self._delimiter) - 1
                if len(self._buffer) > keep:
                    del self._buffer[: len(self._buffer) - keep]
                if self._total > _MAX_HEADER_BYTES and self._parts == 0:
                    raise MultipartError("no multipart boundary line found in the body")
                return None
            start = found + 2
        return self._after_boundary(start + len(self._dash_boundary))

    def _after_boundary(self, position: int) -> list[Event] | None:
        """After a boundary: `--` closes the body, else padding then CRLF starts a part."""
        rest = self._buffer[position:]
        if len(rest) < 2:
            return None
        if rest.startswith(b"--"):
            self._state = "epilogue"
            self._buffer.clear()
            return []
        line_end = rest.find(_CRLF)
        if line_end < 0:
            if len(rest) > 1024:
                raise MultipartError("a boundary line is followed by text")
            return None
        if rest[:line_end].strip(b" \t"):
            raise MultipartError("a boundary line is followed by text")
        del self._buffer[: position + line_end + 2]
        self._parts += 1
        if self._parts > self._max_parts:
            raise BodyTooLarge(f"the body has more than {self._max_parts} parts")
        self._state = "headers"
        return []

    def _headers(self) -> list[Event] | None:
        if self._buffer.startswith(_CRLF):
            end, block = 0, b""
        else:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > _MAX_HEADER_BYTES:
                    raise MultipartError("a part's headers are longer than 16 KiB")
                return None
            block = bytes(self._buffer[:end])
            end += 2
        del self._buffer[: end + 2]
        headers: dict[str, str] = {}
        for line in block.split(_CRLF) if block else []:
            name, colon, value = line.partition(b":")
            if not colon or not name.strip():
                raise MultipartError(f"part {self._parts} has a malformed header line")
            headers[name.strip().decode("latin-1").lower()] = value.strip().decode("latin-1")
        self._state = "body"
        self._part_bytes = 0
        return [PartStart(headers)]

    def _body(self) -> list[Event] | None:
        found = self._buffer.find(self._delimiter)
        if found < 0:
            safe = len(self._buffer) - (len(self._delimiter) - 1)
            if safe <= 0:
                return None
            return [self._data(safe)]
        events: list[Event] = [self._data(found)] if found else []
        events.append(PartEnd(self._part_bytes))
        self._state = "boundary"
        del self._buffer[:2]  # the CRLF that belongs to the delimiter
        return events

    def _boundary(self) -> list[Event] | None:
        return self._after_boundary(len(self._dash_boundary))

    def _epilogue(self) -> None:
        self._buffer.clear()

    def _data(self, size: int) -> PartData:
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        self._part_bytes += size
        if self._max_part_bytes is not None and self._part_bytes > self._max_part_bytes:
            raise BodyTooLarge(f"part {self._parts} is larger than {self._max_part_bytes} bytes")
        return PartData(data)


def new_boundary() -> str:
    return f"openpacs-{secrets.token_hex(16)}"


def write_parts(
    parts: Iterable[tuple[dict[str, str], Iterable[bytes]]], boundary: str
) -> Iterator[bytes]:
    """A multipart body: each part's headers, then its chunks as they come, then the close.

    Delimiters and headers travel with the next body chunk, so a response of many small
    parts is not sent as three writes per part.
    """
    dash = b"--" + boundary.encode("ascii")
    pending = b""
    for headers, body in parts:
        head = b"".join(f"{name}: {value}\r\n".encode("latin-1") for name, value in headers.items())
        pending += dash + _CRLF + head + _CRLF
        for chunk in body:
            if chunk:
                yield pending + chunk if pending else chunk
                pending = b""
        pending += _CRLF
    yield pending + dash + b"--" + _CRLF
