"""The figures of a run: for each figure (a row of the table), one entry per system: a value
with its samples, an error message, or "n/a" with the reason."""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from statistics import median
from typing import Any

ERROR_WIDTH = 300


class BenchError(Exception):
    """A measurement that could not be made; its message goes into the table (no traceback)."""


@dataclass
class Figure:
    key: str
    label: str
    unit: str
    higher_is_better: bool
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Results:
    figures: dict[str, Figure] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def define(self, key: str, label: str, unit: str, *, higher_is_better: bool) -> None:
        if key not in self.figures:
            self.figures[key] = Figure(key, label, unit, higher_is_better)

    def put(self, key: str, system: str, value: float, **details: Any) -> None:
        self.figures[key].entries[system] = {"value": value, **details}

    def add_sample(self, key: str, system: str, sample: float, **details: Any) -> None:
        """One more repetition: the entry's value is the median of its samples so far."""
        entry = self.figures[key].entries.get(system)
        if entry is None or "samples" not in entry:
            entry = {"samples": [], "runs": []}
            self.figures[key].entries[system] = entry
        entry["samples"].append(sample)
        entry["runs"].append(details)
        entry["value"] = median(entry["samples"])

    def error(self, key: str, system: str, exc: BaseException | str) -> None:
        """Record a failure; an earlier successful sample of the same figure is kept."""
        message = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        message = " ".join(str(message).split())[:ERROR_WIDTH]
        entry = self.figures[key].entries.setdefault(system, {})
        entry.setdefault("errors", []).append(message)
        if not isinstance(exc, str | BenchError):
            entry.setdefault("tracebacks", []).append(traceback.format_exc(limit=6))

    def not_applicable(self, key: str, system: str, reason: str) -> None:
        self.figures[key].entries[system] = {"na": reason}

    def note(self, text: str) -> None:
        self.notes.append(text)

    def as_json(self) -> dict[str, Any]:
        return {
            "figures": [
                {
                    "key": figure.key,
                    "label": figure.label,
                    "unit": figure.unit,
                    "higher_is_better": figure.higher_is_better,
                    "systems": figure.entries,
                }
                for figure in self.figures.values()
            ],
            "notes": self.notes,
        }
