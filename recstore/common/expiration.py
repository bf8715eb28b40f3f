"""Expiration phrases of seed 004 ("4 years 3 months 2 weeks 1 day"), counted from now.

Grammar (case-insensitive)::

    phrase      := number period ( separator number period )*
    number      := ASCII digits, at most 6 of them
    period      := year | years | month | months | week | weeks | day | days
    separator   := whitespace | "," | "and", e.g. "1 year, 2 months and 3 days"

Space between number and period is optional ("1month"); each period may appear at most once,
in any order; leading and trailing whitespace is ignored. Empty, blank or absent means *no
expiration* (None). Everything else is refused with :class:`ExpirationError` (a ValueError):
unknown periods, abbreviations, fractions, signs, a period named twice, a total of zero, a
span beyond :data:`MAX_YEARS` - better refused at parse time, where the message goes to the
dead-letter queue with the reason, than discovered as a date overflow during an upload.

Arithmetic is calendar-correct and done in UTC: years and months first, in one step, clamped
to the end of the month (Jan 31 + 1 month = Feb 28/29, Feb 29 + 1 year = Feb 28), then weeks
and days.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dateutil.relativedelta import relativedelta

from recstore.common.text import shorten

#: Longest span accepted: beyond it a typo is likelier than intent, and dates near the year
#: 9999 overflow.
MAX_YEARS = 1000
_MAX_DIGITS = 6
_PERIODS = {
    "year": "years",
    "years": "years",
    "month": "months",
    "months": "months",
    "week": "weeks",
    "weeks": "weeks",
    "day": "days",
    "days": "days",
}
# re.ASCII: "\s" and the digits must be ASCII; int() would read other scripts' digits too.
_PHRASE = re.compile(r"([0-9]+)\s*([a-z]*)", re.IGNORECASE | re.ASCII)
_SEPARATOR = re.compile(r"\s*,\s*(?:and\s+)?|\s+(?:and\s+)?", re.IGNORECASE | re.ASCII)
_EXAMPLE = "use phrases such as '4 years 3 months 2 weeks 1 day'"


class ExpirationError(ValueError):
    """The text is not an expiration phrase, or the date it gives cannot be represented."""


@dataclass(frozen=True, slots=True)
class Expiration:
    """A span of calendar time; always positive and at most :data:`MAX_YEARS` long."""

    years: int = 0
    months: int = 0
    weeks: int = 0
    days: int = 0

    def __post_init__(self) -> None:
        # The invariants live here so that every Expiration, however made, renders to a
        # phrase that parses back to it.
        values = (self.years, self.months, self.weeks, self.days)
        if any(type(value) is not int or value < 0 for value in values):
            raise ExpirationError("expiration parts must be non-negative integers")
        if not any(values):
            raise ExpirationError("an expiration of zero expires at once; leave it empty instead")
        span = self.years + self.months / 12 + (self.weeks * 7 + self.days) / 365.25
        if span > MAX_YEARS:
            raise ExpirationError(f"an expiration longer than {MAX_YEARS} years is refused")

    def expire_at(self, now: datetime) -> datetime:
        """``now`` plus this span, in UTC; ``now`` must be timezone-aware (any zone)."""
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("expire_at needs a timezone-aware datetime, not a naive one")
        start = now.astimezone(UTC)
        try:
            return (
                start
                + relativedelta(years=self.years, months=self.months)
                + timedelta(weeks=self.weeks, days=self.days)
            )
        except (OverflowError, ValueError):
            raise ExpirationError(f"{start.isoformat()} + {self} is past the year 9999") from None

    def __str__(self) -> str:
        """The canonical phrase, e.g. ``4 years 3 months 2 weeks 1 day``; it parses back."""
        parts = []
        for unit, value in (
            ("year", self.years),
            ("month", self.months),
            ("week", self.weeks),
            ("day", self.days),
        ):
            if value:
                parts.append(f"{value} {unit}" + ("" if value == 1 else "s"))
        return " ".join(parts)


def parse_expiration(text: str | None) -> Expiration | None:
    """The expiration ``text`` describes, None for "no expiration"; ExpirationError otherwise."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    shown = shorten(text)
    values: dict[str, int] = {}
    position = 0
    while True:
        phrase = _PHRASE.match(text, position)
        if phrase is None:
            raise ExpirationError(
                f"{shown}: expected '<number> <period>' at {shorten(text[position:])}; {_EXAMPLE}"
            )
        digits, word = phrase.groups()
        period = _PERIODS.get(word.lower())
        if period is None:
            rest = text[phrase.start(2) :]
            raise ExpirationError(
                f"{shown}: after {digits} comes {shorten(word or rest) if rest else 'nothing'}; "
                "a period must follow: years, months, weeks or days"
            )
        if period in values:
            raise ExpirationError(f"{shown}: {period} given more than once")
        if len(digits.lstrip("0")) > _MAX_DIGITS:
            raise ExpirationError(f"{shown}: the number of {period} is too large")
        values[period] = int(digits)
        position = phrase.end()
        if position == len(text):
            break
        separator = _SEPARATOR.match(text, position)
        if separator is None or separator.end() == position or separator.end() == len(text):
            raise ExpirationError(f"{shown}: cannot read {shorten(text[position:])}; {_EXAMPLE}")
        position = separator.end()
    try:
        return Expiration(**values)
    except ExpirationError as exc:
        raise ExpirationError(f"{shown}: {exc}") from None
