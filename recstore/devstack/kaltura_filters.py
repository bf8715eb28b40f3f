"""``KalturaMediaEntryFilter`` / ``KalturaBaseEntryFilter`` and the pager, as the server reads them.

Only the fields the archiver and the syncer use, with the server's semantics (sources in
``docs/fidelity.md``): a field the filter class does not have is dropped unread
(``KalturaRequestDeserializer::buildObject``), so a made-up ``playsEqual`` filters nothing;
``plays`` is compared through ``advancedSearch`` (``KalturaMediaEntryCompareAttributeCondition``);
``...In`` lists keep their first 150 values (``SphinxCriterion::MAX_IN_VALUES``); with no status
field only READY entries are listed, moderation-pending/rejected ones and the recycle bin hidden
(``KalturaBaseEntryFilter::prepareEntriesCriteriaFilter``); tags compare as whole
comma-separated words (case-insensitive), a null ``lastPlayedAt`` matches neither bound (only
``lastPlayedAtLessThanOrEqualOrNull``), time values under ten years are relative to now
(``kTime::getRelativeTime``: ``-86400`` means "a day ago"), and the pager stops at
:data:`~kaltura_model.MAX_MATCHES` rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from recstore.devstack.kaltura_model import (
    DISPLAY_RECYCLED,
    DISPLAY_SYSTEM,
    ENTRY_READY,
    MAX_MATCHES,
    MODERATION_PENDING,
    MODERATION_REJECTED,
    Entry,
    Store,
)
from recstore.devstack.kaltura_wire import ApiError, as_int, as_str

RELATIVE_TIME_THRESHOLD = 315_360_000  # ten years, in seconds
DEFAULT_PAGE_SIZE = 30
MAX_PAGE_SIZE = 500

Predicate = Callable[[Entry], bool]

#: ``SphinxCriterion::MAX_IN_VALUES``: values of a ``...In`` list past this are dropped.
MAX_IN_VALUES = 150

#: The ``KalturaMediaEntryFilter`` fields the stand-in reads; every one exists on the server's
#: class (``api_v3/lib/types/entry/filters/base/KalturaBaseEntryBaseFilter.php`` and the
#: playable/media filters; tests/test_kaltura_oracle.py checks them against the official
#: client). Any other field is dropped, as the server's deserializer does.
ENTRY_FILTER_FIELDS = frozenset(
    {
        "idEqual",
        "idIn",
        "idNotIn",
        "referenceIdEqual",
        "referenceIdIn",
        "tagsLike",
        "tagsMultiLikeAnd",
        "tagsMultiLikeOr",
        "categoriesIdsMatchOr",
        "categoriesIdsMatchAnd",
        "categoriesIdsNotContains",
        "categoriesIdsEmpty",
        "categoriesFullNameIn",
        "categoriesMatchOr",
        "categoriesMatchAnd",
        "categoryAncestorIdIn",
        "statusEqual",
        "statusNotEqual",
        "statusIn",
        "statusNotIn",
        "moderationStatusEqual",
        "moderationStatusIn",
        "moderationStatusNotIn",
        "displayInSearchEqual",
        "displayInSearchIn",
        "createdAtGreaterThanOrEqual",
        "createdAtLessThanOrEqual",
        "updatedAtGreaterThanOrEqual",
        "updatedAtLessThanOrEqual",
        "lastPlayedAtGreaterThanOrEqual",
        "lastPlayedAtLessThanOrEqual",
        "lastPlayedAtLessThanOrEqualOrNull",
        "partnerSortValueGreaterThanOrEqual",
        "partnerSortValueLessThanOrEqual",
        "mediaTypeEqual",
        "userIdEqual",
        "creatorIdEqual",
        "nameLike",
        "nameEqual",
        "orderBy",
        "advancedSearch",
    }
)

#: ``KalturaMediaEntryCompareAttribute`` values the stand-in compares (``entryIndex``'s
#: ``getCompareFieldByApiName`` map, ``alpha/lib/model/index/entryIndex.php``).
_COMPARE_ATTRIBUTES: dict[str, Callable[[Entry], int]] = {
    "plays": lambda e: e.plays,
    "views": lambda e: e.views,
    "lastPlayedAt": lambda e: e.last_played_at or 0,
    "msDuration": lambda e: e.ms_duration,
    "createdAt": lambda e: e.created_at,
    "updatedAt": lambda e: e.updated_at,
    "partnerSortValue": lambda e: e.partner_sort_value,
    "mediaType": lambda e: e.media_type,
}
#: ``searchConditionComparison``: EQUAL 1, GREATER_THAN 2, GREATER_THAN_OR_EQUAL 3,
#: LESS_THAN 4, LESS_THAN_OR_EQUAL 5, NOT_EQUAL 6.
_COMPARISONS: dict[int, Callable[[int, int], bool]] = {
    1: lambda a, b: a == b,
    2: lambda a, b: a > b,
    3: lambda a, b: a >= b,
    4: lambda a, b: a < b,
    5: lambda a, b: a <= b,
    6: lambda a, b: a != b,
}

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


def in_list(value: Any) -> list[str]:
    """A ``...In`` list as the search engine reads it: its first 150 values."""
    return _csv(value)[:MAX_IN_VALUES]


def _ints(value: Any) -> set[int]:
    return {int(v) for v in in_list(value) if v.lstrip("-").isdigit()}


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
    f = {
        k: v
        for k, v in flt.items()
        if k in ENTRY_FILTER_FIELDS and (isinstance(v, dict) or as_str(v) not in (None, ""))
    }
    p = q.predicates

    def time_bound(name: str) -> int | None:
        value = as_int(f.get(name))
        return None if value is None else relative_time(value)

    if "idEqual" in f:
        q.narrow({as_str(f["idEqual"]) or ""})
    if "idIn" in f:
        q.narrow(set(in_list(f["idIn"])))
    if "idNotIn" in f:
        excluded = set(in_list(f["idNotIn"]))
        p.append(lambda e: e.id not in excluded)
    if "referenceIdEqual" in f:
        q.narrow(set(store.by_reference.get(as_str(f["referenceIdEqual"]) or "", set())))
    if "referenceIdIn" in f:
        refs = in_list(f["referenceIdIn"])
        q.narrow(set().union(*(store.by_reference.get(r, set()) for r in refs)))
    _tag_filters(f, p)
    _category_filters(store, f, p)
    _status_filters(f, p)
    _compare_condition(f.get("advancedSearch"), p)
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
        as_int(f.get("partnerSortValueGreaterThanOrEqual")),
        as_int(f.get("partnerSortValueLessThanOrEqual")),
        lambda e: e.partner_sort_value,
    )
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
            names = set(in_list(f[name]) if name.endswith("In") else _csv(f[name]))
            p.append(lambda e, names=names: bool(names & set(e.categories)))  # type: ignore[misc]
    if "categoriesMatchAnd" in f:
        all_names = set(_csv(f["categoriesMatchAnd"]))
        p.append(lambda e: all_names <= set(e.categories))
    if "categoryAncestorIdIn" in f:
        ancestors = {int(v) for v in in_list(f["categoryAncestorIdIn"]) if v.isdigit()}
        p.append(lambda e: bool(ancestors & store.ancestor_ids(e)))


def _status_filters(f: dict[str, Any], p: list[Predicate]) -> None:
    """Status, moderation and display filters, with the server's defaults when none is given.

    ``KalturaBaseEntryFilter::prepareEntriesCriteriaFilter``: unless ``idEqual`` is given, no
    status field means READY only, no moderation field hides PENDING_MODERATION and REJECTED,
    and (unless ``idIn`` or a ``displayInSearch`` field is given) recycled and system entries
    are hidden.
    """
    by_id = "idEqual" in f
    if "statusEqual" in f:
        status = as_int(f["statusEqual"])
        p.append(lambda e: e.status == status)
    if "statusNotEqual" in f:
        not_status = as_int(f["statusNotEqual"])
        p.append(lambda e: e.status != not_status)
    if "statusIn" in f:
        statuses = _ints(f["statusIn"])
        p.append(lambda e: e.status in statuses)
    if "statusNotIn" in f:
        not_statuses = _ints(f["statusNotIn"])
        p.append(lambda e: e.status not in not_statuses)
    if not by_id and not {"statusEqual", "statusNotEqual", "statusIn", "statusNotIn"} & set(f):
        p.append(lambda e: e.status == ENTRY_READY)
    if "moderationStatusEqual" in f:
        moderation = as_int(f["moderationStatusEqual"])
        p.append(lambda e: e.moderation_status == moderation)
    if "moderationStatusIn" in f:
        moderations = _ints(f["moderationStatusIn"])
        p.append(lambda e: e.moderation_status in moderations)
    if "moderationStatusNotIn" in f:
        not_moderations = _ints(f["moderationStatusNotIn"])
        p.append(lambda e: e.moderation_status not in not_moderations)
    moderation_fields = {"moderationStatusEqual", "moderationStatusIn", "moderationStatusNotIn"}
    if not by_id and not moderation_fields & set(f):
        hidden = {MODERATION_PENDING, MODERATION_REJECTED}
        p.append(lambda e: e.moderation_status not in hidden)
    if "displayInSearchEqual" in f:
        display = as_int(f["displayInSearchEqual"])
        p.append(lambda e: e.display_in_search == display)
    if "displayInSearchIn" in f:
        displays = _ints(f["displayInSearchIn"])
        p.append(lambda e: e.display_in_search in displays)
    if not by_id and not {"idIn", "displayInSearchEqual", "displayInSearchIn"} & set(f):
        p.append(lambda e: e.display_in_search not in (DISPLAY_RECYCLED, DISPLAY_SYSTEM))


def _compare_condition(condition: Any, p: list[Predicate]) -> None:
    """``advancedSearch`` holding a ``KalturaMediaEntryCompareAttributeCondition``.

    An unknown attribute is refused as ``getCompareFieldByApiName`` does; an unknown
    comparison adds no condition (``AdvancedSearchFilterComparableCondition::applyCondition``
    logs "Missing comparison type" and returns). Other search items are not modelled: refused.
    """
    if condition is None:
        return
    kind = as_str(condition.get("objectType")) if isinstance(condition, dict) else None
    if kind != "KalturaMediaEntryCompareAttributeCondition":
        raise ApiError(
            "INVALID_OBJECT_TYPE", f'Invalid object type "{kind}"', INVALID_OBJ_TYPE=kind
        )
    assert isinstance(condition, dict)
    attribute = as_str(condition.get("attribute")) or ""
    get = _COMPARE_ATTRIBUTES.get(attribute)
    if get is None:
        raise ApiError(
            "INVALID_ENUM_VALUE",
            f'Invalid enumeration value "{attribute}" for parameter "attribute", expecting '
            'enumeration type "KalturaMediaEntryCompareAttribute"',
            ENUM_VAL=attribute,
            PARAM_NAME="attribute",
            ENUM_TYPE="KalturaMediaEntryCompareAttribute",
        )
    compare = _COMPARISONS.get(as_int(condition.get("comparison")) or 0)
    value = as_int(condition.get("value"))
    if compare is None or value is None:
        return
    p.append(lambda e: compare(get(e), value))


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


def page_bounds(pager: Any, *, search: bool = True) -> tuple[int, int]:
    """``(offset, end)`` of the page, capped where the search engine stops answering.

    A search (entries, metadata) refuses an offset of 10,000 or more with
    ``QUERY_EXCEEDED_MAX_MATCHES_ALLOWED`` and truncates a page that crosses it
    (``SphinxCriteria::applyFilters``, ``MAX_MATCHES``); a database list just pages.
    """
    pager = pager if isinstance(pager, dict) else {}
    size = as_int(pager.get("pageSize")) or DEFAULT_PAGE_SIZE
    size = min(max(size, 1), MAX_PAGE_SIZE)
    index = max(as_int(pager.get("pageIndex")) or 1, 1)
    offset = (index - 1) * size
    if not search:
        return offset, offset + size
    if offset >= MAX_MATCHES:
        raise ApiError(
            "QUERY_EXCEEDED_MAX_MATCHES_ALLOWED",
            "Unable to generate list. max matches value was reached",
        )
    return offset, min(offset + size, MAX_MATCHES)
