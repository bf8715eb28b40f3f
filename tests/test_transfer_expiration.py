"""Expiration phrases: the seed's grammar, calendar arithmetic in UTC, and refusals."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recstore.common.expiration import MAX_YEARS, Expiration, ExpirationError, parse_expiration

SEED = "4 years 3 months 2 weeks 1 day"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_the_seed_example() -> None:
    expiration = parse_expiration(SEED)
    assert expiration == Expiration(years=4, months=3, weeks=2, days=1)
    # 2026-01-31 + 4 y 3 m = 2030-04-30 (clamped), + 2 w 1 d = 2030-05-15
    assert expiration.expire_at(utc(2026, 1, 31, 12)) == utc(2030, 5, 15, 12)


@pytest.mark.parametrize(
    "order", list(itertools.permutations(["4 years", "3 months", "2 weeks", "1 day"]))
)
def test_every_order_of_the_seed_means_the_same(order: tuple[str, ...]) -> None:
    assert parse_expiration(" ".join(order)) == Expiration(4, 3, 2, 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 day", Expiration(days=1)),
        ("1 days", Expiration(days=1)),
        ("2 day", Expiration(days=2)),
        ("2 Weeks", Expiration(weeks=2)),
        ("1 YEAR", Expiration(years=1)),
        ("1month", Expiration(months=1)),
        ("  3 days  ", Expiration(days=3)),
        ("1 year\t2 months\n3 days", Expiration(years=1, months=2, days=3)),
        ("1 year, 2 months and 3 days", Expiration(years=1, months=2, days=3)),
        ("1 year, 2 months, and 3 days", Expiration(years=1, months=2, days=3)),
        ("1 year,2 months", Expiration(years=1, months=2)),
        ("1 year AND 2 days", Expiration(years=1, days=2)),
        ("0 years 1 day", Expiration(days=1)),
        ("007 days", Expiration(days=7)),
        ("0000000001 day", Expiration(days=1)),
        ("365000 days", Expiration(days=365_000)),
        (f"{MAX_YEARS} years", Expiration(years=MAX_YEARS)),
    ],
)
def test_grammar(text: str, expected: Expiration) -> None:
    assert parse_expiration(text) == expected


@pytest.mark.parametrize("empty", [None, "", "   ", "\t\n"])
def test_empty_means_no_expiration(empty: str | None) -> None:
    assert parse_expiration(empty) is None


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("4 yearz", "after 4 comes 'yearz'"),
        ("1 yr", "after 1 comes 'yr'"),
        ("1 d", "after 1 comes 'd'"),
        ("1 yearand 2 days", "after 1 comes 'yearand'"),
        ("forever", "expected '<number> <period>' at 'forever'"),
        ("days", "expected '<number> <period>' at 'days'"),
        ("1 year 2 years", "years given more than once"),
        ("1 day 1 days", "days given more than once"),
        ("0 days", "zero"),
        ("0 years 0 days", "zero"),
        ("-1 day", "expected '<number> <period>' at '-1 day'"),
        ("+1 day", "expected '<number> <period>' at '+1 day'"),
        ("1.5 days", "after 1 comes '.5 days'"),
        ("1,5 days", "after 1 comes ',5 days'"),
        ("1 day extra", "expected '<number> <period>' at 'extra'"),
        ("1 day 2", "after 2 comes nothing"),
        ("1 year and", "expected '<number> <period>' at 'and'"),
        ("1 year,", "cannot read ','"),
        (", 1 year", "expected '<number> <period>' at ', 1 year'"),
        ("1 year and and 2 days", "expected '<number> <period>' at 'and 2 days'"),
        ("1 year2 days", "cannot read '2 days'"),
        ("1 day;2 days", "cannot read ';2 days'"),
        ("\u0663 days", "expected '<number> <period>'"),  # ARABIC-INDIC DIGIT THREE
        ("1\u00a0day", "after 1 comes '\\xa0day'"),  # a no-break space is not a separator
        (f"{MAX_YEARS + 1} years", f"longer than {MAX_YEARS} years"),
        (f"{MAX_YEARS * 12 + 1} months", f"longer than {MAX_YEARS} years"),
        ("999999 weeks", f"longer than {MAX_YEARS} years"),
        ("1234567 days", "the number of days is too large"),
        ("9" * 5000 + " days", "the number of days is too large"),
    ],
)
def test_refusals(bad: str, why: str) -> None:
    with pytest.raises(ExpirationError) as caught:
        parse_expiration(bad)
    assert isinstance(caught.value, ValueError)  # job.py relies on it
    assert why in str(caught.value)
    assert len(str(caught.value)) < 300  # one readable line, even for a 5000-digit number


@pytest.mark.parametrize(
    ("start", "expiration", "expected"),
    [
        (utc(2024, 1, 31), Expiration(months=1), utc(2024, 2, 29)),  # leap year
        (utc(2025, 1, 31), Expiration(months=1), utc(2025, 2, 28)),
        (utc(2025, 3, 31), Expiration(months=1), utc(2025, 4, 30)),
        (utc(2025, 8, 31), Expiration(months=6), utc(2026, 2, 28)),
        (utc(2024, 1, 31), Expiration(months=13), utc(2025, 2, 28)),
        (utc(2024, 2, 29), Expiration(years=1), utc(2025, 2, 28)),
        (utc(2024, 2, 29), Expiration(years=4), utc(2028, 2, 29)),
        (utc(2024, 2, 28), Expiration(days=1), utc(2024, 2, 29)),
        (utc(2025, 2, 28), Expiration(days=1), utc(2025, 3, 1)),
        (utc(2025, 12, 31, 23, 59), Expiration(weeks=1), utc(2026, 1, 7, 23, 59)),
        # Months before days: Jan 30 + 1 month = Feb 28, + 1 day = Mar 1 (days first would
        # give Jan 31 + 1 month = Feb 28).
        (utc(2025, 1, 30), Expiration(months=1, days=1), utc(2025, 3, 1)),
        (utc(2025, 1, 31), Expiration(months=1, days=1), utc(2025, 3, 1)),
        # Years and months in one step: Feb 29 + 13 months = Mar 29 (one year first would
        # clamp to Feb 28 and give Mar 28).
        (utc(2024, 2, 29), Expiration(years=1, months=1), utc(2025, 3, 29)),
        (utc(2024, 1, 31), Expiration(years=1, months=1), utc(2025, 2, 28)),
    ],
)
def test_calendar_arithmetic(start: datetime, expiration: Expiration, expected: datetime) -> None:
    assert expiration.expire_at(start) == expected


def test_other_time_zones_are_converted_to_utc_first() -> None:
    berlin_winter = timezone(timedelta(hours=1))
    # 2026-02-01 00:30 in Berlin is still 2026-01-31 in UTC: January's month end applies.
    at = Expiration(months=1).expire_at(datetime(2026, 2, 1, 0, 30, tzinfo=berlin_winter))
    assert at == utc(2026, 2, 28, 23, 30)
    assert at.tzinfo is UTC


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Expiration(days=1).expire_at(datetime(2026, 1, 1))


def test_a_date_past_the_year_9999_is_an_expiration_error() -> None:
    with pytest.raises(ExpirationError, match="past the year 9999"):
        Expiration(years=2).expire_at(utc(9998, 6, 1))
    with pytest.raises(ExpirationError, match="past the year 9999"):
        Expiration(days=400).expire_at(utc(9999, 1, 1))


@pytest.mark.parametrize(
    "parts",
    [
        {},
        {"days": 0},
        {"days": -1},
        {"years": 1, "months": -1},
        {"days": True},
        {"days": 1.5},
        {"years": MAX_YEARS + 1},
    ],
)
def test_invalid_expirations_cannot_be_built(parts: dict[str, object]) -> None:
    with pytest.raises(ExpirationError):
        Expiration(**parts)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("expiration", "text"),
    [
        (Expiration(4, 3, 2, 1), SEED),
        (Expiration(years=1, days=1), "1 year 1 day"),
        (Expiration(months=2), "2 months"),
        (Expiration(weeks=1, days=10), "1 week 10 days"),
    ],
)
def test_str_is_the_canonical_phrase(expiration: Expiration, text: str) -> None:
    assert str(expiration) == text
    assert parse_expiration(text) == expiration


def test_expirations_are_immutable() -> None:
    expiration = Expiration(days=1)
    with pytest.raises(AttributeError):
        expiration.days = 2  # type: ignore[misc]


parts = st.tuples(
    st.integers(0, 50), st.integers(0, 24), st.integers(0, 60), st.integers(0, 400)
).filter(any)  # all zero is not an expiration
moments = st.datetimes(
    min_value=datetime(1970, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.just(UTC),
)


@given(parts)
def test_str_round_trips(values: tuple[int, int, int, int]) -> None:
    expiration = Expiration(*values)
    assert parse_expiration(str(expiration)) == expiration


@given(parts, moments, st.integers(0, 3))
def test_later_than_now_and_monotonic_in_each_part(
    values: tuple[int, int, int, int], now: datetime, which: int
) -> None:
    at = Expiration(*values).expire_at(now)
    assert at > now
    assert at.tzinfo is UTC
    bigger = list(values)
    bigger[which] += 1
    later = Expiration(*bigger).expire_at(now)
    assert later > at
    if which >= 2:  # weeks and days are exact durations, added after the calendar part
        assert later - at == (timedelta(weeks=1) if which == 2 else timedelta(days=1))
