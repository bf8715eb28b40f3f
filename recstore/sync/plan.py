"""Which recordings Kaltura still lacks, what is left to do for each, and the multirequests.

A recording belongs to the Kaltura entry whose ``referenceId`` is its GUID. The syncer looks
entries up by reference id (``referenceIdIn``, every status, no tag or category filter), so it
works past Kaltura's 10,000-row listing limit and does not re-import an entry that was only
moved to another category or re-tagged. An entry deleted in Kaltura stays deleted.

What is left is read from Kaltura's state each cycle, never from memory, which makes every
failure retry itself next cycle without duplicates:

========================================  ========================================
Kaltura has                               steps
========================================  ========================================
no entry with the GUID                    entry (``media.add``), content, metadata
the entry, status NO_CONTENT (7)          content (``media.addContent``)
the entry, ERROR_IMPORTING (-2)           content again (``media.updateContent``)
the entry, no metadata of the profile     metadata (``metadata.add``)
only deleted entries                      nothing: deleted on purpose
========================================  ========================================

Within one cycle a GUID is planned once, whatever the VidyoReplay paging repeats. The steps of
a batch of recordings go into one multirequest, later calls referring to the new entry as
``{N:result:id}``; :func:`read_outcomes` checks every element of the answer.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from recstore.clients.kaltura import Call
from recstore.clients.kaltura_types import KalturaMediaEntry
from recstore.clients.vidyo import Record
from recstore.sync.metadata import metadata_xml

T = TypeVar("T")

#: KalturaEntryStatus values the syncer reads.
ERROR_IMPORTING = -2
DELETED = 3
NO_CONTENT = 7
#: ``statusIn`` for the lookup: every status, DELETED included (hidden by default).
ALL_STATUSES = "-2,-1,0,1,2,3,4,5,6,7"
#: ``moderationStatusIn`` for the lookup: every KalturaEntryModerationStatus (pending and
#: rejected are hidden by default, ``KalturaBaseEntryFilter::setDefaultModerationStatus``).
ALL_MODERATION_STATUSES = "1,2,3,4,5,6"
#: ``displayInSearchIn`` for the lookup: every EntryDisplayInSearchType, RECYCLED (-2, the
#: recycle bin) and SYSTEM (-1) included (hidden by default).
ALL_DISPLAY_IN_SEARCH = "-2,-1,0,1,2"
#: Kaltura's ``referenceId`` holds at most this many characters.
MAX_REFERENCE_ID = 255
#: Kaltura keeps the first 150 values of an ``...In`` filter (``SphinxCriterion``,
#: ``MAX_IN_VALUES``); longer lists are sent in chunks of this size.
MAX_IN_VALUES = 150


class Step(enum.StrEnum):
    """One call's worth of work for a recording, in the order they are sent."""

    ENTRY = "entry"
    CONTENT = "content"
    CONTENT_AGAIN = "content-again"
    METADATA = "metadata"


@dataclass(frozen=True)
class SyncRules:
    """What every imported entry gets (``workers.VidyoSync.*``)."""

    tag: str
    categories: tuple[str, ...] = ()
    #: Owner of new entries; None: the recording's VidyoReplay user name.
    user_id: str | None = None
    #: The custom metadata profile; None: no metadata is written.
    profile_id: int | None = None
    #: Recordings of this id or lower get no new entry (``importAfterId``).
    import_after: int | None = None


@dataclass(frozen=True)
class KalturaEntry:
    """What the lookup tells about an existing entry."""

    id: str
    reference_id: str
    status: int
    created_at: int = 0
    #: A content replacement is under way (``replacementStatus`` other than NONE).
    replacing: bool = False

    @classmethod
    def from_api(cls, data: KalturaMediaEntry) -> KalturaEntry:
        replacement = data.replacement_status or "0"
        return cls(
            id=data.id,
            reference_id=data.reference_id or "",
            status=int(data.status or 0),
            created_at=data.created_at,
            replacing=replacement not in ("0", "NONE"),
        )


@dataclass(frozen=True)
class Work:
    """The steps left for one recording; ``entry_id`` is None until the entry exists."""

    record: Record
    steps: tuple[Step, ...]
    entry_id: str | None = None

    @property
    def is_new(self) -> bool:
        return Step.ENTRY in self.steps


@dataclass
class PagePlan:
    """The work for one page of recordings, and how many needed none."""

    work: list[Work] = field(default_factory=list)
    complete: int = 0
    deleted: int = 0
    repeated: int = 0
    #: Recordings without an entry that ``importAfterId`` leaves out.
    held_back: int = 0
    #: Recordings that cannot be imported as they stand, with the reason (reported each cycle).
    unusable: list[tuple[Record, str]] = field(default_factory=list)


def usable_guid(guid: str) -> bool:
    """Can ``guid`` be a ``referenceId`` that ``referenceIdIn`` finds again?

    A GUID the lookup cannot find would be imported again every cycle, so such a recording is
    reported instead of imported.
    """
    return bool(guid) and "," not in guid and len(guid) <= MAX_REFERENCE_ID


def group_by_reference(entries: Iterable[KalturaMediaEntry]) -> dict[str, list[KalturaEntry]]:
    """Looked-up entries by reference id."""
    grouped: dict[str, list[KalturaEntry]] = {}
    for data in entries:
        entry = KalturaEntry.from_api(data)
        grouped.setdefault(entry.reference_id, []).append(entry)
    return grouped


def chunks(values: Sequence[T], size: int = MAX_IN_VALUES) -> Iterator[list[T]]:
    """``values`` in lists of at most ``size``, for ``...In`` filters."""
    for start in range(0, len(values), size):
        yield list(values[start : start + size])


def by_sort_value(
    records: Iterable[Record], entries: Iterable[KalturaMediaEntry]
) -> dict[str, list[KalturaEntry]]:
    """Entries that lost their reference id, found by the seed's other mark, by GUID.

    Seed 000 (every version since May 2012) gave each entry the recording's GUID as
    ``referenceId`` and its id as ``partnerSortValue``, under its tag (``VIDYO_KALTURA_TAGS``),
    and found "the last one synced" by that ``partnerSortValue``. An entry whose reference id
    was cleared (an editor, a tool) keeps the other two marks; only such an entry (no
    reference id at all) stands for the recording of that id, never one whose reference id
    names something else.
    """
    by_id: dict[int, list[KalturaEntry]] = {}
    for data in entries:
        if (data.reference_id or "").strip():
            continue
        by_id.setdefault(data.partner_sort_value or 0, []).append(KalturaEntry.from_api(data))
    return {r.guid: by_id[r.id] for r in records if r.id in by_id}


def choose_entry(entries: Sequence[KalturaEntry]) -> KalturaEntry | None:
    """The entry that stands for the recording: the oldest one not deleted.

    The original syncer could leave several entries per GUID; the oldest is the one people
    have been sharing. None when every entry with the GUID was deleted.
    """
    alive = [e for e in entries if e.status != DELETED]
    if not alive:
        return None
    return min(alive, key=lambda e: (e.created_at, e.id))


def plan_page(
    records: Iterable[Record],
    found: Mapping[str, Sequence[KalturaEntry]],
    with_metadata: set[str],
    rules: SyncRules,
    seen: set[str],
) -> PagePlan:
    """The work for ``records`` given Kaltura's ``found`` entries (by reference id).

    ``with_metadata`` holds the ids of entries that already have the profile's metadata;
    ``seen`` collects the GUIDs planned in this cycle so none is planned twice.
    """
    plan = PagePlan()
    for record in records:
        if not usable_guid(record.guid):
            plan.unusable.append((record, "its GUID cannot be a Kaltura reference id"))
            continue
        if not record.file_link:
            plan.unusable.append((record, "VidyoReplay gives no file link (yet)"))
            continue
        if record.guid in seen:
            plan.repeated += 1
            continue
        seen.add(record.guid)
        entries = found.get(record.guid, ())
        if not entries and rules.import_after is not None and record.id <= rules.import_after:
            plan.held_back += 1
            continue
        if not entries:
            steps = [Step.ENTRY, Step.CONTENT]
            if rules.profile_id is not None:
                steps.append(Step.METADATA)
            plan.work.append(Work(record, tuple(steps)))
            continue
        entry = choose_entry(entries)
        if entry is None:
            plan.deleted += 1
            continue
        steps = []
        if entry.status == NO_CONTENT:
            steps.append(Step.CONTENT)
        elif entry.status == ERROR_IMPORTING and not entry.replacing:
            steps.append(Step.CONTENT_AGAIN)
        if rules.profile_id is not None and entry.id not in with_metadata:
            steps.append(Step.METADATA)
        if steps:
            plan.work.append(Work(record, tuple(steps), entry.id))
        else:
            plan.complete += 1
    return plan


def tag_words(tag: str, extra: str | None) -> list[str]:
    """The sync tag first, then the recording's own tags: trimmed, each once (case-blind)."""
    words: list[str] = []
    known: set[str] = set()
    for word in [tag, *(extra or "").split(",")]:
        word = word.strip()
        if word and word.lower() not in known:
            known.add(word.lower())
            words.append(word)
    return words


def entry_fields(record: Record, rules: SyncRules) -> dict[str, Any]:
    """The ``KalturaMediaEntry`` of ``media.add`` for a recording."""
    fields: dict[str, Any] = {
        "objectType": "KalturaMediaEntry",
        "mediaType": 1,
        "name": record.title.strip() or f"VidyoReplay recording {record.id}",
        "description": record.comments or "",
        "tags": ",".join(tag_words(rules.tag, record.tags)),
        "referenceId": record.guid,
        "partnerSortValue": record.id,
    }
    owner = rules.user_id or record.user_name
    if owner:
        fields["userId"] = owner
    if rules.categories:
        fields["categories"] = ",".join(rules.categories)
    return fields


def url_resource(url: str, headers: Sequence[str] = ()) -> dict[str, Any]:
    """A ``KalturaUrlResource`` Kaltura pulls itself; ``headers`` (``Name: value``) go along."""
    resource: dict[str, Any] = {"objectType": "KalturaUrlResource", "url": url}
    if headers:
        resource["urlHeaders"] = [{"objectType": "KalturaString", "value": h} for h in headers]
    return resource


def batches(work: Sequence[Work], size: int) -> Iterator[list[Work]]:
    """``work`` in lists of at most ``size`` recordings, in order."""
    if size < 1:
        raise ValueError("batch size must be at least 1")
    for start in range(0, len(work), size):
        yield list(work[start : start + size])


@dataclass(frozen=True)
class Slots:
    """Where each step of one recording sits in the multirequest (1-based)."""

    work: Work
    indices: Mapping[Step, int]


def build_calls(
    batch: Sequence[Work],
    rules: SyncRules,
    resource_for: Callable[[Record], Mapping[str, Any]],
) -> tuple[list[Call], list[Slots]]:
    """One multirequest for ``batch``: each recording's steps, new entries referenced by index."""
    calls: list[Call] = []
    slots: list[Slots] = []
    for work in batch:
        indices: dict[Step, int] = {}
        entry_ref = work.entry_id
        for step in work.steps:
            if step is Step.ENTRY:
                call = Call("media", "add", {"entry": entry_fields(work.record, rules)})
            elif entry_ref is None:
                raise ValueError(f"step {step} of recording {work.record.id} has no entry")
            elif step in (Step.CONTENT, Step.CONTENT_AGAIN):
                action = "addContent" if step is Step.CONTENT else "updateContent"
                params = {"entryId": entry_ref, "resource": dict(resource_for(work.record))}
                call = Call("media", action, params)
            else:
                if rules.profile_id is None:
                    raise ValueError("a metadata step needs rules.profile_id")
                call = Call(
                    "metadata_metadata",
                    "add",
                    {
                        "metadataProfileId": rules.profile_id,
                        "objectType": 1,
                        "objectId": entry_ref,
                        "xmlData": metadata_xml(work.record),
                    },
                )
            calls.append(call)
            indices[step] = len(calls)
            if step is Step.ENTRY:
                entry_ref = f"{{{len(calls)}:result:id}}"
        slots.append(Slots(work, indices))
    return calls, slots


@dataclass(frozen=True)
class Outcome:
    """What one recording's calls did: the entry, the steps done, the first failure."""

    work: Work
    entry_id: str | None
    done: tuple[Step, ...]
    #: ``(step, reason)`` of the first failed step; later steps that needed it are not listed.
    failure: tuple[Step, str] | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None


def read_outcomes(slots: Sequence[Slots], results: Sequence[Any]) -> list[Outcome]:
    """Every recording's outcome from the multirequest's answers (an exception = that call failed).

    A failed ``media.add`` makes the calls that refer to it fail too; only the root cause is
    reported. A recording whose content or metadata step failed keeps its new entry: the next
    cycle finds it by reference id and does only what is left.
    """
    outcomes: list[Outcome] = []
    for slot in slots:
        entry_id = slot.work.entry_id
        done: list[Step] = []
        failure: tuple[Step, str] | None = None
        for step, index in slot.indices.items():
            result = results[index - 1]
            if isinstance(result, BaseException):
                if failure is None:
                    failure = (step, str(result))
                continue
            if step is Step.ENTRY:
                if not isinstance(result, Mapping) or not result.get("id"):
                    failure = failure or (step, "media.add answered no entry id")
                    continue
                entry_id = str(result["id"])
            done.append(step)
        outcomes.append(Outcome(slot.work, entry_id, tuple(done), failure))
    return outcomes
