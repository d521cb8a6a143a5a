"""Where files to import come from: folders, lists of files, ZIP archives and S3 prefixes.

Nothing here knows DICOM: a source yields items (a name to report, a size) and fetches each
one as a local file, so the archive stores every item the same way whatever its origin. A
fetched copy (a ZIP member, an S3 object) is written to the caller's staging folder and handed
over; a local file is read where it lies.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from openpacs.errors import OpenPacsError

Origin = Literal["file", "zip", "s3"]


@dataclass(frozen=True)
class SourceItem:
    origin: Origin
    container: str
    """The ZIP file's path or the bucket ("" for a plain file)."""
    name: str
    """The file's path, the member's name or the object's key."""
    size: int

    @property
    def label(self) -> str:
        """How reports name the item."""
        if self.origin == "zip":
            return f"{self.container}!{self.name}"
        if self.origin == "s3":
            return f"s3://{self.container}/{self.name}"
        return self.name


@dataclass(frozen=True)
class Fetched:
    path: Path
    owned: bool
    """True for a copy made for the caller, which the caller may consume or must remove."""


class SourceError(OpenPacsError):
    """A source cannot be read at all (missing folder, unreadable list, bucket refused)."""

    http_status = 400


def is_s3(source: str) -> bool:
    return source.startswith("s3://")


def split_s3(url: str) -> tuple[str, str]:
    """(bucket, prefix) of an ``s3://bucket/prefix`` URL."""
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    if not bucket:
        raise SourceError(f"{url}: no bucket in the S3 URL")
    return bucket, prefix


def local_items(path: Path) -> Iterator[SourceItem]:
    """A file (a ZIP's members when it is one), or every file under a folder, sorted."""
    if path.is_dir():
        for folder, subfolders, files in os.walk(path):
            subfolders.sort()
            for name in sorted(files):
                yield from _file_items(Path(folder) / name, explicit=False)
    elif path.is_file():
        yield from _file_items(path, explicit=True)
    else:
        raise SourceError(f"{path}: no such file or folder")


def listed_paths(listing: Path) -> Iterator[Path]:
    """The paths in a list file, one a line (blank lines and ``#`` comments ignored)."""
    try:
        lines = listing.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SourceError(f"{listing}: {exc.strerror or exc}") from None
    for line in lines:
        text = line.strip()
        if text and not text.startswith("#"):
            yield Path(text)


def _file_items(path: Path, *, explicit: bool) -> Iterator[SourceItem]:
    """A ZIP archive is expanded when named as a source or when its name ends in .zip."""
    try:
        size = path.stat().st_size
    except OSError:
        yield SourceItem("file", "", str(path), 0)  # reported as unreadable when fetched
        return
    if (explicit or path.suffix.lower() == ".zip") and zipfile.is_zipfile(path):
        yield from zip_items(path)
    else:
        yield SourceItem("file", "", str(path), size)


def zip_items(path: Path) -> Iterator[SourceItem]:
    try:
        with zipfile.ZipFile(path) as archive:
            members = [info for info in archive.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, OSError) as exc:
        raise SourceError(f"{path}: not a readable ZIP archive: {exc}") from None
    for info in members:
        yield SourceItem("zip", str(path), info.filename, info.file_size)


def s3_items(client: Any, url: str) -> Iterator[SourceItem]:
    bucket, prefix = split_s3(url)
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    try:
        for page in pages:
            for entry in page.get("Contents", ()):
                if not entry["Key"].endswith("/"):
                    yield SourceItem("s3", bucket, entry["Key"], int(entry["Size"]))
    except Exception as exc:  # botocore's errors: the whole source is unreadable
        raise SourceError(f"{url}: cannot list: {exc}") from None


class Fetcher:
    """Fetches items as local files, one process's ZIP handles and S3 client kept open."""

    def __init__(self, staging: Path | None, s3_client: Any | None = None) -> None:
        self._staging = staging
        self._s3 = s3_client
        self._zips: dict[str, zipfile.ZipFile] = {}

    def fetch(self, item: SourceItem) -> Fetched:
        """The item as a local file; OSError (or botocore's errors for S3) when unreadable."""
        if item.origin == "file":
            return Fetched(Path(item.name), owned=False)
        descriptor, name = tempfile.mkstemp(suffix=".import", dir=self._staging)
        target = Path(name)
        try:
            with os.fdopen(descriptor, "wb") as out:
                if item.origin == "zip":
                    with self._zip(item.container).open(item.name) as member:
                        shutil.copyfileobj(member, out, 1024 * 1024)
                else:
                    if self._s3 is None:
                        raise OSError("no S3 client to fetch S3 objects with")
                    self._s3.download_fileobj(item.container, item.name, out)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return Fetched(target, owned=True)

    def _zip(self, path: str) -> zipfile.ZipFile:
        if path not in self._zips:
            self._zips[path] = zipfile.ZipFile(path)
        return self._zips[path]

    def close(self) -> None:
        for archive in self._zips.values():
            archive.close()
        self._zips.clear()


class Sources:
    """Import sources for jobs run by a server: folders and files (the caller checks which
    it may read), ZIP archives and s3:// prefixes; one fetcher per thread."""

    def __init__(self, staging: Callable[[], Path | None], s3_client: Callable[[], Any]) -> None:
        self._staging = staging
        self._s3_client = s3_client
        self._local = threading.local()

    def found(self, source: str) -> list[SourceItem]:
        if is_s3(source):
            return list(s3_items(self._s3_client(), source))
        return list(local_items(Path(source)))

    def fetch(self, item: SourceItem) -> tuple[Path, bool]:
        fetcher = getattr(self._local, "fetcher", None)
        if fetcher is None:
            client = self._s3_client() if item.origin == "s3" else None
            fetcher = self._local.fetcher = Fetcher(self._staging(), client)
        elif item.origin == "s3" and fetcher._s3 is None:
            fetcher._s3 = self._s3_client()
        fetched = fetcher.fetch(item)
        return fetched.path, fetched.owned

    def finish(self) -> None:
        """Close what this thread's fetches keep open (ZIP archives)."""
        fetcher = getattr(self._local, "fetcher", None)
        if fetcher is not None:
            fetcher.close()
            self._local.fetcher = None
