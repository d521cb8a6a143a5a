"""Run a real openpacs node in-process for tests: SQLite index, folder store, DIMSE on a free
loopback port. Nothing is mocked: the same composition `openpacs serve` uses."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openpacs.archive.service import Archive
from openpacs.compose import build_archive, build_dicom_server, configure_libraries
from openpacs.config import Settings, load_settings
from openpacs.dimse.server import DicomServer
from tests.support.backends import Backend

HOST = "127.0.0.1"


@dataclass
class Node:
    settings: Settings
    archive: Archive
    server: DicomServer
    folder: Path

    @property
    def aet(self) -> str:
        return self.settings.dicom.aet

    @property
    def port(self) -> int:
        return self.server.port_of("dicom")

    @property
    def tls_port(self) -> int:
        return self.server.port_of("dicom-tls")

    @property
    def blob_folder(self) -> Path:
        return self.folder / "blobs"

    def instance_count(self) -> int:
        return self.archive.totals().instances

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until none of the node's associations runs.

        A peer sees a final response a moment before the node's side of the association has
        ended; tests that look at what an association leaves behind wait for it first.
        """
        deadline = time.monotonic() + timeout
        while self.server.active_associations:
            if time.monotonic() > deadline:
                raise TimeoutError(f"node associations still running after {timeout} s")
            time.sleep(0.01)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):  # a nested table ([auth.oidc]) as an inline table
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def write_config(folder: Path, sections: dict[str, dict[str, Any]]) -> Path:
    """A TOML file for `sections`, with the index and store inside `folder` by default.

    A list of tables under the key "remotes" of [dicom] becomes [[dicom.remotes]]. HTTP is
    off (port 0) unless `sections` set it: parallel tests must not share port 8042.
    """
    merged: dict[str, dict[str, Any]] = {
        "database": {"url": f"sqlite:///{folder / 'index.db'}"},
        "storage": {"url": str(folder / "blobs")},
        "http": {"port": 0},
    }
    for section, values in sections.items():
        merged.setdefault(section, {}).update(values)
    lines: list[str] = []
    remotes: list[dict[str, Any]] = []
    for section, values in merged.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            if section == "dicom" and key == "remotes":
                remotes = list(value)
                continue
            lines.append(f"{key} = {toml_value(value)}")
    for remote in remotes:
        lines.append("[[dicom.remotes]]")
        lines.extend(f"{key} = {toml_value(value)}" for key, value in remote.items())
    path = folder / "openpacs.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@contextmanager
def running_node(
    folder: Path, *, backend: Backend | None = None, **sections: dict[str, Any]
) -> Iterator[Node]:
    """An openpacs node on free loopback ports; `sections` are TOML sections to set.

    Without a backend the node keeps a SQLite index and a blob folder inside `folder`.
    """
    folder.mkdir(parents=True, exist_ok=True)
    dicom = {"port": 4242, **sections.pop("dicom", {})}
    merged = backend.sections(folder) if backend is not None else {}
    for section, values in sections.items():
        merged.setdefault(section, {}).update(values)
    settings = load_settings(write_config(folder, {"dicom": dicom, **merged}), environ={})
    previous_tempdir = tempfile.tempdir
    archive = build_archive(settings)
    archive.start()
    configure_libraries(archive.staging_dir())
    server = build_dicom_server(archive, settings, host=HOST)
    ports = {"dicom": 0}
    if settings.dicom.tls_port:
        ports["dicom-tls"] = 0
    server.start(ports=ports)
    try:
        yield Node(settings, archive, server, folder)
    finally:
        server.stop(grace_seconds=5)
        archive.close()
        tempfile.tempdir = previous_tempdir
