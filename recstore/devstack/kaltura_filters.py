"""``KalturaMediaEntryFilter`` / ``KalturaBaseEntryFilter`` and the pager, as the server reads them.

Only the fields the archiver and the syncer use, with the server's semantics: tags compare as
whole comma-separated words (case-insensitive), a null ``lastPlayedAt`` matches neither bound
(only ``lastPlayedAtLessThanOrEqualOrNull``), time values under ten years are relative to now
(``kTime::getRelativeTime``: ``-86400`` means "a day ago"), deleted entries are hidden unless a
status filter asks for them, and the pager stops at :data:`~kaltura_model.MAX_MATCHES` rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from recstore.devstack.kaltura_model import ENTRY_DELETED, MAX_MATCHES, Entry, Store
from recstore.devstack.kaltura_wire import as_int, as_str

RELATIVE_TIME_THRESHOLD = 315_360_000  # ten years, in seconds
DEFAULT_PAGE_SIZE = 30
MAX_PAGE_SIZE = 500

Predicate = Callable[[Entry], bool]

_ORDER_KEYS: dict[str, Callable[[Entry], Any]] = {
    "createdAt": lambda e: e.sort_key,
    "updatedAt": lambda e: (e.updated_at, e.seq),
    "plays": lambda e: (e.plays, e.seq),
    "views": lambda e: (e.views, e.seq),
    "lastPlayedAt": lambda e: (e.last_played_at or 0, e.seq),
    "name": lambda e: (e.name.lower(), e.seq),
    "partnerSortValue": lambda e: (e.partner_sort_value, e.seq),
    "duration": lambda e: (e.ms_duration, e.seq),
}


def relative_time(value: int) -> int:
    if value and abs(value) <= RELATIVE_TIME_THRESHOLD:
        return int(time.time()) + value
    return value


def _csv(value: Any) -> list[str]:
    text = as_str(value) or ""
    return [v.strip() for v in text.split(",") if v.strip()]


@dataclass
class EntryQuery:
    predicates: list[Predicate] = field(default_factory=list)
    created_min: int | None = None
    created_max: int | None = None
    candidates: set[str] | None = None
    order: str = "-createdAt"

    def narrow(self, ids: set[str]) -> None:
        self.candidates = ids if self.candidates is None else self.candidates & ids


def entry_query(store: Store, flt: dict[str, Any] | None) -> EntryQuery:
    q = EntryQuery()
    flt = flt if isinstance(flt, dict) else {}
    f = {k: v for k, v in flt.items() if as_str(v) not in (None, "")}
    p = q.predicates

    def time_bound(name: str) -> int | None:
        value = as_int(f.get(name))
        return None if value is None else relative_time(value)

    if "idEqual" in f:
        q.narrow({as_str(f["idEqual"]) or ""})
    if "idIn" in f:
        q.narrow(set(_csv(f["idIn"])))
    if "idNotIn" in f:
        excluded = set(_csv(f["idNotIn"]))
        p.append(lambda e: e.id not in excluded)
    if "referenceIdEqual" in f:
        q.narrow(set(store.by_reference.get(as_str(f["referenceIdEqual"]) or "", set())))
    if "referenceIdIn" in f:
        refs = _csv(f["referenceIdIn"])
        q.narrow(set().union(*(store.by_reference.get(r, set()) for r in refs)))
    _tag_filters(f, p)
    _category_filters(store, f, p)
    _status_filters(f, p)
    q.created_min = time_bound("createdAtGreaterThanOrEqual")
    q.created_max = time_bound("createdAtLessThanOrEqual")
    _range(
        p,
        time_bound("updatedAtGreaterThanOrEqual"),
        time_bound("updatedAtLessThanOrEqual"),
        lambda e: e.updated_at,
    )
    played_min = time_bound("lastPlayedAtGreaterThanOrEqual")
    played_max = time_bound("lastPlayedAtLessThanOrEqual")
    if played_min is not None:
        p.append(lambda e: e.last_played_at is not None and e.last_played_at >= played_min)
    if played_max is not None:
        p.append(lambda e: e.last_played_at is not None and e.last_played_at <= played_max)
    or_null = time_bound("lastPlayedAtLessThanOrEqualOrNull")
    if or_null is not None:
        p.append(lambda e: e.last_played_at is None or e.last_played_at <= or_null)
    _range(
        p,
        as_int(f.get("playsGreaterThanOrEqual")),
        as_int(f.get("playsLessThanOrEqual")),
        lambda e: e.plays,
    )
    if "playsEqual" in f:
        plays = as_int(f["playsEqual"])
        p.append(lambda e: e.plays == plays)
    _range(
        p,
        as_int(f.get("partnerSortValueGreaterThanOrEqual")),
        as_int(f.get("partnerSortValueLessThanOrEqual")),
        lambda e: e.partner_sort_value,
    )
    if "partnerSortValueEqual" in f:
        psv = as_int(f["partnerSortValueEqual"])
        p.append(lambda e: e.partner_sort_value == psv)
    if "partnerSortValueIn" in f:
        psvs = {int(v) for v in _csv(f["partnerSortValueIn"]) if v.lstrip("-").isdigit()}
        p.append(lambda e: e.partner_sort_value in psvs)
    if "mediaTypeEqual" in f:
        media_type = as_int(f["mediaTypeEqual"])
        p.append(lambda e: e.media_type == media_type)
    if "userIdEqual" in f:
        user = as_str(f["userIdEqual"])
        p.append(lambda e: e.user_id == user)
    if "creatorIdEqual" in f:
        creator = as_str(f["creatorIdEqual"])
        p.append(lambda e: e.creator_id == creator)
    if "nameLike" in f:
        needle = (as_str(f["nameLike"]) or "").lower()
        p.append(lambda e: needle in e.name.lower())
    if "nameEqual" in f:
        name = as_str(f["nameEqual"])
        p.append(lambda e: e.name == name)
    order = as_str(f.get("orderBy"))
    if order and order.lstrip("+-") in _ORDER_KEYS:
        q.order = order if order[0] in "+-" else "+" + order
    return q


def _range(p: list[Predicate], lo: int | None, hi: int | None, get: Callable[[Entry], int]) -> None:
    if lo is not None:
        p.append(lambda e: get(e) >= lo)
    if hi is not None:
        p.append(lambda e: get(e) <= hi)


def _tag_filters(f: dict[str, Any], p: list[Predicate]) -> None:
    if "tagsLike" in f:
        wanted = {t.lower() for t in _csv(f["tagsLike"])}
        p.append(lambda e: wanted <= e.tag_set())
    if "tagsMultiLikeAnd" in f:
        all_of = {t.lower() for t in _csv(f["tagsMultiLikeAnd"])}
        p.append(lambda e: all_of <= e.tag_set())
    if "tagsMultiLikeOr" in f:
        any_of = {t.lower() for t in _csv(f["tagsMultiLikeOr"])}
        p.append(lambda e: bool(any_of & e.tag_set()))


def _category_filters(store: Store, f: dict[str, Any], p: list[Predicate]) -> None:
    def ids(e: Entry) -> set[int]:
        return {store.categories[c] for c in e.categories}

    if "categoriesIdsMatchOr" in f:
        any_ids = {int(v) for v in _csv(f["categoriesIdsMatchOr"]) if v.isdigit()}
        p.append(lambda e: bool(any_ids & ids(e)))
    if "categoriesIdsMatchAnd" in f:
        all_ids = {int(v) for v in _csv(f["categoriesIdsMatchAnd"]) if v.isdigit()}
        p.append(lambda e: all_ids <= ids(e))
    if "categoriesIdsNotContains" in f:
        not_ids = {int(v) for v in _csv(f["categoriesIdsNotContains"]) if v.isdigit()}
        p.append(lambda e: not (not_ids & ids(e)))
    if "categoriesIdsEmpty" in f:
        empty = as_int(f["categoriesIdsEmpty"]) == 1
        p.append(lambda e: (not e.categories) == empty)
    for name in ("categoriesFullNameIn", "categoriesMatchOr"):
        if name in f:
            names = set(_csv(f[name]))
            p.append(lambda e, names=names: bool(names & set(e.categories)))  # type: ignore[misc]
    if "categoriesMatchAnd" in f:
        all_names = set(_csv(f["categoriesMatchAnd"]))
        p.append(lambda e: all_names <= set(e.categories))
    if "categoryAncestorIdIn" in f:
        ancestors = {int(v) for v in _csv(f["categoryAncestorIdIn"]) if v.isdigit()}
        p.append(lambda e: bool(ancestors & store.ancestor_ids(e)))


def _status_filters(f: dict[str, Any], p: list[Predicate]) -> None:
    explicit = False
    if "statusEqual" in f:
        explicit = True
        status = as_int(f["statusEqual"])
        p.append(lambda e: e.status == status)
    if "statusIn" in f:
        explicit = True
        statuses = {int(v) for v in _csv(f["statusIn"]) if v.lstrip("-").isdigit()}
        p.append(lambda e: e.status in statuses)
    if "statusNotIn" in f:
        explicit = True
        not_statuses = {int(v) for v in _csv(f["statusNotIn"]) if v.lstrip("-").isdigit()}
        p.append(lambda e: e.status not in not_statuses)
    if not explicit:
        p.append(lambda e: e.status != ENTRY_DELETED)


def run_query(store: Store, q: EntryQuery) -> list[Entry]:
    """Every match, in the requested order."""
    matches = list(store.select(q.predicates, q.created_min, q.created_max, q.candidates))
    field_name, descending = q.order.lstrip("+-"), q.order.startswith("-")
    if field_name == "createdAt":
        if descending:
            matches.reverse()
    else:
        matches.sort(key=_ORDER_KEYS[field_name], reverse=descending)
    return matches


def page_bounds(pager: Any) -> tuple[int, int]:
    """``(offset, end)`` of the page, capped where the search engine stops answering."""
    pager = pager if isinstance(pager, dict) else {}
    size = as_int(pager.get("pageSize")) or DEFAULT_PAGE_SIZE
    size = min(max(size, 1), MAX_PAGE_SIZE)
    index = max(as_int(pager.get("pageIndex")) or 1, 1)
    offset = (index - 1) * size
    return min(offset, MAX_MATCHES), min(offset + size, MAX_MATCHES)
