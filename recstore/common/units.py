"""Sizes and durations as operators write them ("20MB", "90s", "4h"), parsed once at start.

Sizes follow the usual convention: KB/MB/GB are powers of 1000, KiB/MiB/GiB powers of 1024,
a bare number is bytes. Durations accept a bare number of seconds or a number with s/m/h/d.
"""

from __future__ import annotations

import re

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_DURATION_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_NUMBER_UNIT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(value: int | str) -> int:
    """Bytes from ``20971520``, ``"20MB"`` or ``"20 MiB"``; ``ValueError`` names the unit list."""
    if isinstance(value, bool):
        raise ValueError("a size must be a number of bytes or a string such as '20MB'")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a size cannot be negative")
        return value
    match = _NUMBER_UNIT.match(str(value))
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _SIZE_UNITS:
        raise ValueError(
            f"{value!r} is not a size: use bytes or a number with one of "
            "B, KB, MB, GB, TB, KiB, MiB, GiB, TiB"
        )
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


def parse_duration(value: int | float | str) -> float:
    """Seconds from ``30``, ``"30s"``, ``"5m"``, ``"2h"`` or ``"1d"``."""
    if isinstance(value, bool):
        raise ValueError("a duration must be seconds or a string such as '30s'")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    match = _NUMBER_UNIT.match(str(value))
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _DURATION_UNITS:
        raise ValueError(f"{value!r} is not a duration: use seconds or a number with s, m, h or d")
    return float(match.group(1)) * _DURATION_UNITS[unit]


def format_size(size: int) -> str:
    """A short human form for logs and reports (binary units, one decimal)."""
    amount = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024:
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} TiB"
