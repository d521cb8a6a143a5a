"""A ZIP of many instances, streamed as it is written: zipfile writes to a sink that is never
seeked (entries get data descriptors), and each chunk leaves as soon as it is made, so no
copy of the study is ever held in memory or on disk."""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator
from typing import BinaryIO

_CHUNK = 1024 * 1024


class _Sink:
    """A write-only, unseekable file object that hands its bytes on."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._written = 0

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        self._written += len(data)
        return len(data)

    def tell(self) -> int:
        return self._written

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def zip_stream(entries: Iterable[tuple[str, BinaryIO]]) -> Iterator[bytes]:
    """Yield the bytes of a ZIP holding each (name, opened file); files are closed here."""
    sink = _Sink()
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:  # type: ignore[arg-type]
        for name, source in entries:
            with source, zf.open(name, mode="w", force_zip64=True) as entry:
                while chunk := source.read(_CHUNK):
                    entry.write(chunk)
                    if data := sink.take():
                        yield data
            if data := sink.take():
                yield data
    if data := sink.take():
        yield data
