from __future__ import annotations

import pytest

from recstore.common.units import format_size, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (20971520, 20971520),
        ("20MB", 20_000_000),
        ("20 MiB", 20 * 1024**2),
        ("1.5GiB", int(1.5 * 1024**3)),
        ("512kb", 512_000),
        ("7", 7),
        ("7B", 7),
    ],
)
def test_sizes(text: int | str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", ["", "MB", "-5MB", "5 parsecs", "1e9", True, -1])
def test_bad_sizes(bad: int | str) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size(bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [(30, 30.0), ("30s", 30.0), ("5m", 300.0), ("2h", 7200.0), ("1d", 86400.0), ("0.5s", 0.5)],
)
def test_durations(text: int | str, expected: float) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["soon", "5 weeks", "-1s", False])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_format_size() -> None:
    assert format_size(512) == "512 B"
    assert format_size(20 * 1024**2) == "20.0 MiB"
    assert format_size(3 * 1024**4) == "3.0 TiB"
