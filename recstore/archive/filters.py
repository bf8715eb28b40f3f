"""Seed 001's filter options as a :class:`Selection`, and how each becomes a Kaltura filter.

Most criteria are sent to Kaltura (``KalturaMediaEntryFilter`` fields), so a selection of a few
hundred entries out of 800,000 costs a few hundred rows, not a full scan. What Kaltura cannot
say is checked here on each listed entry:

* ``--tag !X`` (no negation exists in the API), and ``--tag X`` once more as a whole word,
  because the server's tag match is a full-text one that may also accept similar words.
* Nothing else: every other option is exact on the server.

Years are calendar years back from *now* (``--played_within 1`` on 29 Feb is "since 28 Feb
of last year"); fractions are allowed (``0.5``).

``--unplayed_for N`` means "not played during the last N years": played before then, or never
played — and then also created before then, since an entry that is younger than N years cannot
have gone N years unplayed (seed 003 archives "videos without a lastPlayedAt"; this keeps a
recording uploaded yesterday from qualifying). On the wire: ``lastPlayedAtLessThanOrEqualOrNull``
plus ``createdAtLessThanOrEqual``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta

from recstore.archive.states import tag_words
from recstore.clients.kaltura import MAX_IN_VALUES
from recstore.clients.kaltura_types import KalturaMediaEntry

#: The server keeps only the first 150 values of an ``idIn`` list (``SphinxCriterion``
#: MAX_IN_VALUES), so ``--id`` lists go in batches of that size.
IDS_PER_QUERY = MAX_IN_VALUES
#: KalturaEntryStatus values but DELETED (3): what a selection without ``--status`` means. Sent
#: always: with no status field the server lists READY entries only
#: (``KalturaBaseEntryFilter::setDefaultStatus``), hiding ERROR and PRECONVERT ones.
NOT_DELETED = (-2, -1, 0, 1, 2, 4, 5, 6, 7)


class SelectionError(ValueError):
    """An option value that cannot select anything (the CLI reports it as bad usage)."""


@dataclass(frozen=True)
class Selection:
    """Which entries a command works on (the seed's filter options)."""

    #: ``X`` (must carry the tag) or ``!X`` (must not).
    tags: tuple[str, ...] = ()
    #: Category ids; an entry in any of them or their sub-categories matches.
    categories: tuple[int, ...] = ()
    plays: int | None = None
    #: KalturaEntryStatus values; empty means every status but DELETED (:data:`NOT_DELETED`).
    statuses: tuple[int, ...] = ()
    created_within: float | None = None
    created_before: float | None = None
    played_within: float | None = None
    unplayed_for: float | None = None
    ids: tuple[str, ...] = ()
    max_entries: int | None = None
    #: Extra raw Kaltura filter fields (for callers such as the sync job; not a CLI option).
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("created_within", "created_before", "played_within", "unplayed_for"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise SelectionError(f"--{name} must be a number of years >= 0, not {value}")
        if self.max_entries is not None and self.max_entries < 0:
            raise SelectionError("--max_entries must be >= 0")
        if self.plays is not None and self.plays < 0:
            raise SelectionError("--plays must be >= 0")
        for tag in self.tags:
            if not tag.lstrip("!").strip() or "," in tag:
                raise SelectionError(f"--tag {tag!r}: one tag word, optionally after '!'")

    @property
    def wanted_tags(self) -> list[str]:
        return [t.strip() for t in self.tags if not t.startswith("!")]

    @property
    def unwanted_tags(self) -> list[str]:
        return [t[1:].strip() for t in self.tags if t.startswith("!")]

    @property
    def exact_on_server(self) -> bool:
        """True when Kaltura's own count is the answer (no check here needed)."""
        return not self.tags

    def kaltura_filter(self, now: datetime) -> dict[str, Any]:
        """The ``KalturaMediaEntryFilter`` for everything Kaltura can decide itself."""
        f: dict[str, Any] = {"objectType": "KalturaMediaEntryFilter", **self.extra}
        if self.wanted_tags:
            f["tagsMultiLikeAnd"] = ",".join(self.wanted_tags)
        if self.categories:
            f["categoryAncestorIdIn"] = ",".join(str(c) for c in self.categories)
        if self.plays is not None:
            # No ``plays*`` filter field exists (plays is order-only; the server drops unknown
            # fields unread): compare the attribute, as seed 001 did.
            f["advancedSearch"] = plays_condition(self.plays)
        if self.statuses or not any(k.startswith("status") for k in self.extra):
            f["statusIn"] = ",".join(str(s) for s in self.statuses or NOT_DELETED)
        created_min: list[int] = []
        created_max: list[int] = []
        if self.created_within is not None:
            created_min.append(years_ago(now, self.created_within))
        if self.created_before is not None:
            created_max.append(years_ago(now, self.created_before))
        if self.played_within is not None:
            f["lastPlayedAtGreaterThanOrEqual"] = years_ago(now, self.played_within)
        if self.unplayed_for is not None:
            cutoff = years_ago(now, self.unplayed_for)
            f["lastPlayedAtLessThanOrEqualOrNull"] = cutoff
            created_max.append(cutoff)
        if created_min:
            f["createdAtGreaterThanOrEqual"] = max(created_min)
        if created_max:
            f["createdAtLessThanOrEqual"] = min(created_max)
        return f

    def accepts(self, entry: KalturaMediaEntry) -> bool:
        """The checks Kaltura cannot make, on one listed entry."""
        if not self.tags:
            return True
        words = {w.lower() for w in tag_words(entry.tags)}
        if any(t.lower() not in words for t in self.wanted_tags):
            return False
        return not any(t.lower() in words for t in self.unwanted_tags)

    def id_batches(self) -> list[tuple[str, ...]]:
        """The ``--id`` list in query-sized batches; one empty batch when there is none."""
        if not self.ids:
            return [()]
        unique = list(dict.fromkeys(self.ids))
        return [tuple(unique[i : i + IDS_PER_QUERY]) for i in range(0, len(unique), IDS_PER_QUERY)]


def plays_condition(plays: int) -> dict[str, Any]:
    """``plays == N`` as a ``KalturaMediaEntryCompareAttributeCondition`` (``advancedSearch``).

    ``attribute`` is ``KalturaMediaEntryCompareAttribute::PLAYS`` ("plays"), ``comparison``
    ``KalturaSearchConditionComparison::EQUAL`` (1, ``alpha/lib/enums/
    searchConditionComparison.php``).
    """
    return {
        "objectType": "KalturaMediaEntryCompareAttributeCondition",
        "attribute": "plays",
        "comparison": "1",
        "value": str(plays),
    }


def years_ago(now: datetime, years: float) -> int:
    """Unix time ``years`` calendar years before ``now`` (fractions as 365.25-day years)."""
    whole = int(years)
    moment = now - relativedelta(years=whole) - timedelta(days=(years - whole) * 365.25)
    return int(moment.timestamp())


def read_id_file(lines: Iterable[str]) -> list[str]:
    """Entry ids from an ``--idfile``: one per line (or whitespace-separated); ``#`` comments."""
    ids: list[str] = []
    for line in lines:
        ids.extend(line.split("#", 1)[0].split())
    return ids


def parse_statuses(values: Iterable[str]) -> tuple[int, ...]:
    """``--status`` values, each an int or a comma-separated list of them (``1,-2,0``)."""
    statuses: list[int] = []
    for value in values:
        for part in value.replace(",", " ").split():
            try:
                statuses.append(int(part))
            except ValueError:
                raise SelectionError(
                    f"--status {part!r} is not a KalturaEntryStatus number"
                ) from None
    return tuple(statuses)
