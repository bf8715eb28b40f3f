"""Expiration phrases of seed 004: "4 years 3 months 2 weeks 1 day", from now, calendar-correct.

Grammar: one or more ``<number> <period>`` with period year(s), month(s), week(s) or day(s),
any case, any order, each period at most once, separated by spaces (commas and "and" are
tolerated, as people write them). Empty or absent means no expiration. Years and months are
added first with month-end clamping (Jan 31 + 1 month = Feb 28/29, Feb 29 + 1 year = Feb 28),
then weeks and days.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from dateutil.relativedelta import relativedelta

_UNITS = {"year": "years", "month": "months", "week": "weeks", "day": "days"}
_PHRASE = re.compile(r"(\d+)\s*(year|month|week|day)s?\b", re.IGNORECASE)
_FILLER = re.compile(r"[\s,]+|\band\b", re.IGNORECASE)
#: Beyond this, dates overflow or a typo is more likely than intent.
MAX_YEARS = 1000


class ExpirationError(ValueError):
    """The text is not an expiration phrase."""


@dataclass(frozen=True)
class Expiration:
    years: int = 0
    months: int = 0
    weeks: int = 0
    days: int = 0

    def expire_at(self, now: datetime) -> datetime:
        if now.tzinfo is None:
            raise ValueError("expire_at needs a timezone-aware datetime")
        return (
            now
            + relativedelta(years=self.years, months=self.months)
            + timedelta(weeks=self.weeks, days=self.days)
        )

    def __str__(self) -> str:
        parts = []
        for unit in ("years", "months", "weeks", "days"):
            value = getattr(self, unit)
            if value:
                parts.append(f"{value} {unit if value != 1 else unit[:-1]}")
        return " ".join(parts)


def parse_expiration(text: str | None) -> Expiration | None:
    """The expiration, or None for "no expiration"; :class:`ExpirationError` otherwise."""
    if text is None or not text.strip():
        return None
    values: dict[str, int] = {}
    position = 0
    for match in _PHRASE.finditer(text):
        gap = text[position : match.start()]
        if _FILLER.sub("", gap):
            raise ExpirationError(f"{text!r}: cannot read {gap.strip()!r}")
        unit = _UNITS[match.group(2).lower()]
        if unit in values:
            raise ExpirationError(f"{text!r}: {unit} given twice")
        values[unit] = int(match.group(1))
        position = match.end()
    if _FILLER.sub("", text[position:]) or not values:
        raise ExpirationError(
            f"{text!r} is not an expiration: use phrases such as '4 years 3 months 2 weeks 1 day'"
        )
    expiration = Expiration(**values)
    if not any(values.values()):
        raise ExpirationError(f"{text!r} expires immediately; leave it empty for no expiration")
    total_years = (
        expiration.years + expiration.months / 12 + (expiration.weeks * 7 + expiration.days) / 365
    )
    if total_years > MAX_YEARS:
        raise ExpirationError(f"{text!r} is more than {MAX_YEARS} years")
    return expiration
