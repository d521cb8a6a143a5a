"""Normal forms for stored and queried values, so that SQL and Python compare them the same way.

Dates become YYYYMMDD, times HHMMSS.FFFFFF and date-times YYYYMMDDHHMMSS.FFFFFF (fixed width,
so string order is time order). Person names are compared in an upper-cased form without
trailing empty components (PS3.5 6.2: "Doe^John^^" and "DOE^JOHN" name the same person).
"""

from __future__ import annotations

import re
from typing import Literal

Bound = Literal["low", "high"]

_DIGITS = re.compile(r"^\d*$")


def normalize_name(value: str) -> str:
    """The case-insensitive comparison form of a PN value, component groups kept."""
    groups = [group.rstrip("^ ") for group in value.split("=")]
    while groups and not groups[-1]:
        groups.pop()
    return "=".join(groups).upper()


def normalize_date(value: str) -> str | None:
    """YYYYMMDD, accepting the ACR-NEMA form YYYY.MM.DD; None when not a date."""
    value = value.strip().replace(".", "")
    if len(value) == 8 and value.isdigit():
        return value
    return None


def normalize_time(value: str, bound: Bound = "low") -> str | None:
    """HHMMSS.FFFFFF; missing precision is filled towards `bound` (for range ends)."""
    value = value.strip().replace(":", "")
    whole, _, fraction = value.partition(".")
    if not whole or len(whole) > 6 or len(whole) % 2 or not whole.isdigit():
        return None
    if not _DIGITS.match(fraction) or len(fraction) > 6:
        return None
    filler = "0" if bound == "low" else "9"
    if bound == "high" and len(whole) < 6:
        # "10" as an upper bound means up to 10:59:59.999999
        whole = whole + "5959"[: 6 - len(whole)]
    return whole.ljust(6, "0") + "." + fraction.ljust(6, filler)


_DT = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\.\d{1,6})?([+-]\d{4})?$")


def normalize_datetime(value: str, bound: Bound = "low") -> str | None:
    """YYYYMMDDHHMMSS.FFFFFF; the UTC offset suffix is ignored (compared as local time)."""
    match = _DT.match(value.strip())
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, _offset = match.groups()
    high = bound == "high"
    parts = [
        year,
        month or ("12" if high else "01"),
        day or ("31" if high else "01"),
        hour or ("23" if high else "00"),
        minute or ("59" if high else "00"),
        second or ("59" if high else "00"),
    ]
    digits = (fraction or ".")[1:]
    return "".join(parts) + "." + digits.ljust(6, "9" if high and not fraction else "0")


def normalize_int(value: str) -> int | None:
    try:
        return int(value.strip())
    except ValueError:
        try:
            number = float(value)
        except ValueError:
            return None
        return int(number) if number.is_integer() else None
