"""The report: one table (rich when installed, plain text otherwise) with each figure per
system and the ratio openpacs/Orthanc on the same backend, and the raw results as JSON."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import services, systems
from bench.results import Figure, Results

SHORT = {
    "openpacs-sqlite": "op-sqlite",
    "openpacs-postgresql": "op-pg",
    "openpacs-pg-s3": "op-pg-s3*",
    "orthanc-sqlite": "orth-sqlite",
    "orthanc-postgresql": "orth-pg",
    "openpacs-pg-pgblobs": "op-pg-pgb",
    "orthanc-pg-pgblobs": "orth-pg-pgb",
    "storescp": "storescp",
    "pynetdicom": "pynetdicom",
}
RATIOS = (
    ("op/orth sqlite", "openpacs-sqlite", "orthanc-sqlite"),
    ("op/orth pg", "openpacs-postgresql", "orthanc-postgresql"),
    ("op/orth pg-pgb", "openpacs-pg-pgblobs", "orthanc-pg-pgblobs"),
)
LEGEND = (
    "op = openpacs, orth = Orthanc (Debian), storescp = DCMTK storescp --fork +B (the floor), "
    "pynetdicom = a bare pynetdicom storage SCP in one process (1 MB PDUs, chunked receive, no "
    "index, no fsync: the ceiling of openpacs's DICOM library). "
    "* op-pg-s3: PostgreSQL index + S3 emulated by moto (moto's speed is not S3's). "
    '-pgb: images in PostgreSQL (openpacs [storage] url = "postgresql"; Orthanc\'s '
    "PostgreSQL plugin with EnableStorage: true). "
    "Orthanc runs with DicomThreadsCount 64 (default 4) so that fifty associations are served "
    "at once, as openpacs' default serves them. 50 associations: one storescu process per "
    "association, latency from each C-STORE request to its response as storescu logs them, "
    "throughput from the first request to the last response. "
    "First render: a frame not requested before (no render cache can answer); same frame "
    "again: one frame requested repeatedly. "
    "Ratios are openpacs/Orthanc on the same index backend: for inst/s and MB/s higher is "
    "better, for ms, s, MB and CPU lower is better. MB = 10^6 bytes. Memory is VmRSS summed "
    "over the server's process tree (the PostgreSQL server and moto are not counted). "
    "n/a: the system has no such service; error: the measurement failed (see the JSON)."
)


def versions() -> dict[str, str]:
    """Versions of the programs under test (from their own --version output)."""
    import openpacs

    found = {"openpacs": openpacs.__version__}
    commands = {
        "orthanc": [systems.ORTHANC, "--version"],
        "dcmtk": ["/usr/bin/storescu", "--version"],
    }
    for label, command in commands.items():
        try:
            text = subprocess.run(command, capture_output=True, text=True, timeout=10).stdout
            found[label] = text.splitlines()[0].strip() if text else "?"
        except (OSError, subprocess.SubprocessError) as exc:
            found[label] = f"unknown ({exc})"
    return found


def machine_facts() -> dict[str, Any]:
    def read(path: str, prefix: str) -> str:
        try:
            for line in Path(path).read_text().splitlines():
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return "?"

    facts: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "memory": read("/proc/meminfo", "MemTotal"),
        "cpu": read("/proc/cpuinfo", "model name"),
        "kernel": platform.release(),
        "python": platform.python_version(),
        **versions(),
    }
    for package in ("pydicom", "pynetdicom", "sqlalchemy", "psycopg", "moto"):
        try:
            facts[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            facts[package] = "not installed"
    try:
        facts["postgresql"] = services.server_version()
    except Exception as exc:
        facts["postgresql"] = f"unreachable ({exc})"
    return facts


def _number(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value:.0f}%"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "MB" or abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def cell(entry: dict[str, Any] | None, unit: str, width: int = 34) -> str:
    if entry is None:
        return "-"
    if "na" in entry:
        return "n/a"
    if "value" in entry:
        text = _number(entry["value"], unit)
        failed = len(entry.get("errors", ()))
        return f"{text} ({failed} failed)" if failed else text
    message = entry.get("errors", ["?"])[0]
    return ("error: " + message)[:width]


def ratio(figure: Figure, ours: str, theirs: str) -> str:
    if figure.unit in ("%", "x"):  # a share of a core, or already a ratio
        return ""
    a, b = figure.entries.get(ours, {}), figure.entries.get(theirs, {})
    if "value" in a and "value" in b and b["value"]:
        return f"{a['value'] / b['value']:.2f}x"
    return "-"


def rows(results: Results, names: list[str]) -> tuple[list[str], list[list[str]]]:
    ratios = [r for r in RATIOS if r[1] in names and r[2] in names]
    header = ["figure", *(SHORT.get(n, n) for n in names), *(r[0] for r in ratios)]
    body = []
    for figure in results.figures.values():
        line = [figure.label, *(cell(figure.entries.get(n), figure.unit) for n in names)]
        line += [ratio(figure, ours, theirs) for _, ours, theirs in ratios]
        body.append(line)
    return header, body


def plain_table(header: list[str], body: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        first = row[0].ljust(widths[0])
        rest = (value.rjust(width) for value, width in zip(row[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(row) for row in body)])


def problems(results: Results) -> list[str]:
    lines = []
    for figure in results.figures.values():
        for name, entry in figure.entries.items():
            lines += [f"{name} / {figure.key}: {message}" for message in entry.get("errors", ())]
    return lines + [f"note: {note}" for note in results.notes]


def show(results: Results, names: list[str], title: str) -> str:
    """Print the table; returns its plain-text form (for the README and the JSON)."""
    header, body = rows(results, names)
    text = plain_table(header, body)
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(f"\n{title}\n\n{text}\n")
    else:
        table = Table(title=title)
        for index, column in enumerate(header):
            table.add_column(column, justify="left" if index == 0 else "right")
        for row in body:
            table.add_row(*row)
        Console().print(table)
    print(LEGEND)
    for line in problems(results):
        print(f"  {line}")
    return text


def write_json(path: Path | None, kind: str, payload: dict[str, Any]) -> Path:
    """bench/results/<UTC timestamp>-<kind>.json unless `path` is given."""
    if path is None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = Path(__file__).resolve().parent / "results" / f"{stamp}-{kind}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1, default=str) + "\n", encoding="utf-8")
    return path
