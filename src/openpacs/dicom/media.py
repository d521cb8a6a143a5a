"""DICOM media sets (PS3.10, PS3.11): the files a DICOMDIR references, and new media sets
written with pydicom's FileSet."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from pydicom import dcmread
from pydicom.errors import InvalidDicomError
from pydicom.fileset import FileSet

from openpacs.errors import InvalidInstance


def referenced_files(dicomdir: Path) -> list[Path]:
    """The files the DICOMDIR at `dicomdir` references, in its record order (PS3.3 F.3:
    Referenced File ID, relative to the DICOMDIR's folder)."""
    try:
        directory = dcmread(dicomdir)
        records = directory.DirectoryRecordSequence
    except (InvalidDicomError, AttributeError, ValueError, OSError, EOFError) as exc:
        raise InvalidInstance(f"{dicomdir}: not a readable DICOMDIR: {exc}") from exc
    found = []
    for record in records:
        parts = record.get("ReferencedFileID")
        if not parts:
            continue
        components = [parts] if isinstance(parts, str) else list(parts)
        if any(part in ("", ".", "..") for part in components):
            raise InvalidInstance(f"{dicomdir}: Referenced File ID {parts!r} leaves its folder")
        found.append(dicomdir.parent.joinpath(*components))
    return found


@dataclass
class MediaSetResult:
    written: int = 0
    left_out: list[tuple[str, str]] = field(default_factory=list)
    """(file, reason) of each instance a media set cannot hold (a DICOMDIR record needs
    attributes it lacks, or its SOP class has no record type)."""


def write_media_set(
    files: Iterable[tuple[str, AbstractContextManager[Path]]], folder: Path
) -> MediaSetResult:
    """Write a media set to the empty or new `folder`: each (name, file opened by its context
    manager), a DICOMDIR over them; pydicom names the files (PS3.10 8.5 file IDs) and builds
    the records."""
    media = FileSet()
    media.ID = "OPENPACS"
    result = MediaSetResult()
    try:
        for name, opened in files:
            try:
                with opened as path:
                    media.add(dcmread(path))
            except (ValueError, KeyError, AttributeError, InvalidDicomError) as exc:
                result.left_out.append((name, str(exc)))
                continue
            result.written += 1
        folder.mkdir(parents=True, exist_ok=True)
        media.write(folder)
    finally:
        with suppress(OSError):  # FileSet stages added instances in a folder of its own
            media._stage["t"].cleanup()
    return result
