"""Seed 001's overview statistics: how much is archived, and how much more could be saved.

One row per calendar year (UTC), plus ``never`` (entries never played) and ``all``:

* ``created``: entries created that year; ``archived`` / ``place_holder``: of those, how many
  are in each state.
* ``last_played``: entries whose last play fell in that year.
* ``savable_TB``: the Kaltura storage (every flavor) of the entries last played that year that
  still have their video — what replacing them with the placeholder would free. Reading the
  rows from the oldest year down answers "what do we gain with ``--unplayed_for N``?".
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from recstore.archive.inventory import EntryView
from recstore.archive.states import KB, ArchiveTags, EntryState

STATS_COLUMNS = ("year", "created", "archived", "place_holder", "last_played", "savable_TB")
NEVER = "never"
TB = 1000**4


@dataclass
class Stats:
    tags: ArchiveTags
    created: Counter[str] = field(default_factory=Counter)
    archived: Counter[str] = field(default_factory=Counter)
    place_holder: Counter[str] = field(default_factory=Counter)
    last_played: Counter[str] = field(default_factory=Counter)
    savable_bytes: Counter[str] = field(default_factory=Counter)

    def add(self, view: EntryView) -> None:
        created = _year(view.entry.created_at) or "unknown"
        played = _year(view.entry.last_played_at) or NEVER
        state = view.state(self.tags)
        self.created[created] += 1
        self.last_played[played] += 1
        if state is EntryState.ARCHIVED:
            self.archived[created] += 1
        elif state is EntryState.PLACE_HOLDER:
            self.place_holder[created] += 1
        if state is not EntryState.PLACE_HOLDER:
            self.savable_bytes[played] += sum(
                f.size_bytes if f.size_bytes is not None else f.size_kb * KB for f in view.flavors
            )

    def rows(self) -> list[dict[str, Any]]:
        keys = set(self.created) | set(self.last_played)
        years = sorted(k for k in keys if k.isdigit())
        ordered = [*years, *(k for k in ("unknown", NEVER) if k in keys)]
        rows = [self._row(k, k) for k in ordered]
        rows.append(self._row("all", None))
        return rows

    def _row(self, label: str, key: str | None) -> dict[str, Any]:
        def pick(counter: Counter[str]) -> int:
            return counter[key] if key is not None else sum(counter.values())

        return {
            "year": label,
            "created": pick(self.created),
            "archived": pick(self.archived),
            "place_holder": pick(self.place_holder),
            "last_played": pick(self.last_played),
            "savable_TB": f"{pick(self.savable_bytes) / TB:.3f}",
        }


def _year(timestamp: Any) -> str | None:
    if timestamp in (None, "", 0):
        return None
    return str(datetime.fromtimestamp(int(timestamp), UTC).year)
