"""Expiration phrases: the seed's grammar, calendar arithmetic, and refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recstore.transfer.expiration import Expiration, ExpirationError, parse_expiration

NOW = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


def test_the_seed_example() -> None:
    expiration = parse_expiration("4 years 3 months 2 weeks 1 day")
    assert expiration == Expiration(years=4, months=3, weeks=2, days=1)
    # 2026-01-31 + 4 y 3 m = 2030-04-30 (clamped), + 15 days = 2030-05-15
    assert expiration.expire_at(NOW) == datetime(2030, 5, 15, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 day", Expiration(days=1)),
        ("2 Weeks", Expiration(weeks=2)),
        ("1 year, 2 months and 3 days", Expiration(years=1, months=2, days=3)),
        ("3 days 1 year", Expiration(years=1, days=3)),
        ("1month", Expiration(months=1)),
    ],
)
def test_grammar(text: str, expected: Expiration) -> None:
    assert parse_expiration(text) == expected


@pytest.mark.parametrize("empty", [None, "", "   "])
def test_empty_means_no_expiration(empty: str | None) -> None:
    assert parse_expiration(empty) is None


@pytest.mark.parametrize(
    "bad",
    [
        "4 yearz",
        "forever",
        "1 year 2 years",
        "0 days",
        "-1 day",
        "1.5 days",
        "days",
        "1 day extra",
        "99999 years",
    ],
)
def test_refusals(bad: str) -> None:
    with pytest.raises(ExpirationError):
        parse_expiration(bad)


def test_month_ends_and_leap_days() -> None:
    assert Expiration(months=1).expire_at(datetime(2024, 1, 31, tzinfo=UTC)) == datetime(
        2024, 2, 29, tzinfo=UTC
    )
    assert Expiration(years=1).expire_at(datetime(2024, 2, 29, tzinfo=UTC)) == datetime(
        2025, 2, 28, tzinfo=UTC
    )
    assert Expiration(days=1).expire_at(datetime(2024, 2, 28, tzinfo=UTC)) == datetime(
        2024, 2, 29, tzinfo=UTC
    )


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Expiration(days=1).expire_at(datetime(2026, 1, 1))


def test_text_round_trips() -> None:
    for text in ("4 years 3 months 2 weeks 1 day", "1 year 1 day"):
        assert str(parse_expiration(text)) == text


@given(
    st.integers(0, 50),
    st.integers(0, 24),
    st.integers(0, 60),
    st.integers(0, 400),
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
)
def test_later_and_monotonic(years: int, months: int, weeks: int, days: int, now: datetime) -> None:
    if not (years or months or weeks or days):
        return
    expiration = Expiration(years, months, weeks, days)
    at = expiration.expire_at(now)
    assert at > now
    assert Expiration(years, months, weeks, days + 1).expire_at(now) == at + timedelta(days=1)
    assert Expiration(years + 1, months, weeks, days).expire_at(now) >= at
