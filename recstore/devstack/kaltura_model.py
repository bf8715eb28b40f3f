"""The Kaltura stand-in's data: entries, flavors, upload tokens, metadata, all in memory.

A dev stack holds tens of thousands of entries (the archiver's 10,000-result paging cap only
shows with more), so entries live in a dict plus a list kept sorted by ``createdAt``: a
``createdAt`` window is two bisections and every other filter is one pass over what is left.
Content bytes live on disk under the data directory, or are synthesised from a size and the
flavor id (deterministic, streamed) so a seed of large videos costs nothing.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# KalturaEntryStatus
ENTRY_ERROR_IMPORTING = -2
ENTRY_ERROR_CONVERTING = -1
ENTRY_IMPORT = 0
ENTRY_PRECONVERT = 1
ENTRY_READY = 2
ENTRY_DELETED = 3
ENTRY_NO_CONTENT = 7
# KalturaEntryModerationStatus (alpha/lib/model/entry.php)
MODERATION_PENDING = 1
MODERATION_REJECTED = 3
MODERATION_AUTO_APPROVED = 6
# EntryDisplayInSearchType (alpha/lib/enums/EntryDisplayInSearchType.php)
DISPLAY_RECYCLED = -2
DISPLAY_SYSTEM = -1
DISPLAY_PARTNER_ONLY = 1
# KalturaFlavorAssetStatus
FLAVOR_ERROR = -1
FLAVOR_QUEUED = 0
FLAVOR_CONVERTING = 1
FLAVOR_READY = 2
FLAVOR_DELETED = 3
FLAVOR_IMPORTING = 7

# entryReplacementStatus (alpha/lib/enums/entryReplacementStatus.php)
REPLACEMENT_NONE = "0"
REPLACEMENT_APPROVED_BUT_NOT_READY = "1"
REPLACEMENT_READY_BUT_NOT_APPROVED = "2"
REPLACEMENT_NOT_READY_AND_NOT_APPROVED = "3"
REPLACEMENT_FAILED = "4"

#: Sphinx answers no row past this offset, whatever the page asks for.
MAX_MATCHES = 10_000
SOURCE_FLAVOR_PARAMS = 0
WEB_FLAVOR_PARAMS = 301_951
_ID_CHARS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _random_id(rng: random.Random) -> str:
    """A Kaltura-looking id (``0_`` and eight base-36 characters), cheaply."""
    n = rng.getrandbits(41)
    chars = []
    for _ in range(8):
        n, r = divmod(n, 36)
        chars.append(_ID_CHARS[r])
    return "0_" + "".join(chars)


def now() -> int:
    return int(time.time())


def split_tags(tags: str) -> list[str]:
    return [t.strip() for t in tags.split(",") if t.strip()]


@dataclass
class Flavor:
    id: str
    entry_id: str
    is_original: bool
    size_bytes: int
    status: int
    created_at: int
    flavor_params_id: int = SOURCE_FLAVOR_PARAMS
    file_ext: str = "mp4"
    path: Path | None = None  # content on disk; None: synthesised from size_bytes
    #: False plays an older server that reports only the approximate ``size`` in KB.
    report_bytes: bool = True
    ready_at: float | None = None
    deleted_at: int | None = None
    updated_at: int = 0

    def to_api(self, partner_id: int) -> dict[str, Any]:
        answer = self._api(partner_id)
        if not self.report_bytes:
            del answer["sizeInBytes"]
        return answer

    def _api(self, partner_id: int) -> dict[str, Any]:
        return {
            "objectType": "KalturaFlavorAsset",
            "id": self.id,
            "entryId": self.entry_id,
            "partnerId": partner_id,
            "version": 1,
            "size": (self.size_bytes + 1023) // 1024,
            "sizeInBytes": self.size_bytes,
            "tags": "source" if self.is_original else "mobile,web,mbr",
            "fileExt": self.file_ext,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at or self.created_at,
            "deletedAt": self.deleted_at,
            "flavorParamsId": self.flavor_params_id,
            "width": 1280,
            "height": 720,
            "bitrate": 1000,
            "frameRate": 25,
            "isOriginal": self.is_original,
            "isWeb": not self.is_original,
            "containerFormat": "isom",
            "status": self.status,
        }


@dataclass
class Entry:
    id: str
    name: str
    created_at: int
    seq: int
    description: str = ""
    tags: str = ""
    categories: list[str] = field(default_factory=list)
    plays: int = 0
    views: int = 0
    last_played_at: int | None = None
    updated_at: int = 0
    status: int = ENTRY_READY
    user_id: str = ""
    creator_id: str = ""
    reference_id: str | None = None
    partner_sort_value: int = 0
    ms_duration: int = 0
    media_type: int = 1
    replacement_status: str = "0"  # REPLACEMENT_*
    ready_at: float | None = None
    moderation_status: int = MODERATION_AUTO_APPROVED
    display_in_search: int = DISPLAY_PARTNER_ONLY
    #: The display state before ``baseEntry.recycle``, given back by ``restoreRecycled``.
    previous_display: int | None = None
    recycled_at: int | None = None
    #: Found by the search but dropped when the rows are read (criteria the database query
    #: applies again, e.g. entitlement): counted and paged over, never shown.
    drop_after_search: bool = False
    #: The temporary entry converting this entry's new content (``media.updateContent``).
    replacing_entry_id: str | None = None
    #: On a temporary entry: the entry whose content it will replace.
    replaced_entry_id: str | None = None
    #: The conversion under way ends in ERROR_CONVERTING (``conversionFails`` setting).
    fails_conversion: bool = False
    _tags_cache: tuple[str, frozenset[str]] | None = field(default=None, repr=False)

    @property
    def sort_key(self) -> tuple[int, int]:
        return (self.created_at, self.seq)

    def tag_set(self) -> frozenset[str]:
        """Tags as lower-case words, cached: list filters call this for every entry."""
        cached = self._tags_cache
        if cached is None or cached[0] != self.tags:
            cached = self._tags_cache = (
                self.tags,
                frozenset(t.lower() for t in split_tags(self.tags)),
            )
        return cached[1]


@dataclass
class UploadToken:
    id: str
    user_id: str
    path: Path
    file_name: str = ""
    file_size: int | None = None
    auto_finalize: bool = False
    #: Chunks sent ahead of what is held, by position, appended once the gap is filled.
    chunks: dict[int, bytes] = field(default_factory=dict)
    uploaded: int = 0
    status: int = 0  # PENDING, 1 PARTIAL_UPLOAD, 2 FULL_UPLOAD, 3 CLOSED
    created_at: int = field(default_factory=now)
    updated_at: int = field(default_factory=now)

    def to_api(self, partner_id: int) -> dict[str, Any]:
        return {
            "objectType": "KalturaUploadToken",
            "id": self.id,
            "partnerId": partner_id,
            "userId": self.user_id,
            "status": self.status,
            "fileName": self.file_name,
            "fileSize": self.file_size,
            "uploadedFileSize": self.uploaded,
            "autoFinalize": int(self.auto_finalize),
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }


@dataclass
class MetadataProfile:
    id: int
    name: str
    system_name: str
    xsd: str
    views: str = ""
    description: str = ""
    create_mode: int = 1
    created_at: int = field(default_factory=now)

    def to_api(self, partner_id: int) -> dict[str, Any]:
        return {
            "objectType": "KalturaMetadataProfile",
            "id": self.id,
            "partnerId": partner_id,
            "metadataObjectType": "1",
            "version": 1,
            "name": self.name,
            "systemName": self.system_name,
            "description": self.description,
            "createdAt": self.created_at,
            "updatedAt": self.created_at,
            "status": 1,
            "xsd": self.xsd,
            "views": self.views or None,
            "createMode": self.create_mode,
        }


@dataclass
class Metadata:
    id: int
    profile_id: int
    object_id: str
    xml: str
    object_type: str = "1"  # KalturaMetadataObjectType: 1 ENTRY
    version: int = 1
    created_at: int = field(default_factory=now)
    updated_at: int = field(default_factory=now)

    def to_api(self, partner_id: int) -> dict[str, Any]:
        return {
            "objectType": "KalturaMetadata",
            "id": self.id,
            "partnerId": partner_id,
            "metadataProfileId": self.profile_id,
            "metadataProfileVersion": 1,
            "metadataObjectType": self.object_type,
            "objectId": self.object_id,
            "version": self.version,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "status": 1,
            "xml": self.xml,
        }


class Store:
    """Everything the stand-in knows, with the indexes the list actions need."""

    def __init__(self, data_dir: Path, partner_id: int) -> None:
        self.data_dir = data_dir
        self.partner_id = partner_id
        self.entries: dict[str, Entry] = {}
        self.by_created: list[tuple[int, int, str]] = []
        self.by_reference: dict[str, set[str]] = {}
        self.flavors: dict[str, Flavor] = {}
        self.flavors_of: dict[str, list[str]] = {}
        self.tokens: dict[str, UploadToken] = {}
        self.profiles: dict[int, MetadataProfile] = {}
        self.metadata: dict[int, Metadata] = {}
        self.categories: dict[str, int] = {}
        self._seq = itertools.count(1)
        self._ids = random.Random()
        self.pending: set[str] = set()  # entry ids waiting for conversion to finish

    # -- ids --

    def new_entry_id(self, rng: random.Random | None = None) -> str:
        while True:
            candidate = _random_id(rng or self._ids)
            if candidate not in self.entries:
                return candidate

    def new_flavor_id(self, rng: random.Random | None = None) -> str:
        while True:
            candidate = _random_id(rng or self._ids)
            if candidate not in self.flavors:
                return candidate

    def next_seq(self) -> int:
        return next(self._seq)

    # -- entries --

    def category_ids(self, names: list[str]) -> list[int]:
        """Ids of the named categories, created (with their ancestors) on first sight."""
        ids = []
        for name in names:
            if name in self.categories:
                ids.append(self.categories[name])
                continue
            parts = name.split(">")
            for depth in range(1, len(parts) + 1):
                self.categories.setdefault(">".join(parts[:depth]), 100_000 + len(self.categories))
            ids.append(self.categories[name])
        return ids

    def ancestor_ids(self, entry: Entry) -> set[int]:
        out = set()
        for name in entry.categories:
            parts = name.split(">")
            for depth in range(1, len(parts) + 1):
                out.add(self.categories[">".join(parts[:depth])])
        return out

    def add_entry(self, entry: Entry) -> None:
        if entry.id in self.entries:
            self.remove_entry(entry.id)
        self.category_ids(entry.categories)
        self.entries[entry.id] = entry
        bisect.insort(self.by_created, (entry.created_at, entry.seq, entry.id))
        if entry.reference_id:
            self.by_reference.setdefault(entry.reference_id, set()).add(entry.id)
        self.flavors_of.setdefault(entry.id, [])

    def load_bulk(self, entries: list[Entry]) -> None:
        """Add many entries with one sort instead of one insertion each (50,000 in a blink)."""
        entries = list({e.id: e for e in entries}.values())
        replaced = [e.id for e in entries if e.id in self.entries]
        if replaced:
            gone = set(replaced)
            self.by_created = [key for key in self.by_created if key[2] not in gone]
            for entry_id in replaced:
                old = self.entries.pop(entry_id)
                if old.reference_id:
                    self.by_reference.get(old.reference_id, set()).discard(entry_id)
                for flavor_id in self.flavors_of.pop(entry_id, []):
                    self.flavors.pop(flavor_id, None)
        for entry in entries:
            self.category_ids(entry.categories)
            self.entries[entry.id] = entry
            self.by_created.append((entry.created_at, entry.seq, entry.id))
            if entry.reference_id:
                self.by_reference.setdefault(entry.reference_id, set()).add(entry.id)
            self.flavors_of.setdefault(entry.id, [])
        self.by_created.sort()

    def remove_entry(self, entry_id: str) -> None:
        entry = self.entries.pop(entry_id)
        key = (entry.created_at, entry.seq, entry.id)
        i = bisect.bisect_left(self.by_created, key)
        if i < len(self.by_created) and self.by_created[i] == key:
            del self.by_created[i]
        if entry.reference_id:
            self.by_reference.get(entry.reference_id, set()).discard(entry_id)
        for flavor_id in self.flavors_of.pop(entry_id, []):
            self.flavors.pop(flavor_id, None)

    def set_reference(self, entry: Entry, reference_id: str | None) -> None:
        if entry.reference_id:
            self.by_reference.get(entry.reference_id, set()).discard(entry.id)
        entry.reference_id = reference_id or None
        if entry.reference_id:
            self.by_reference.setdefault(entry.reference_id, set()).add(entry.id)

    def add_flavor(self, flavor: Flavor) -> None:
        self.flavors[flavor.id] = flavor
        self.flavors_of.setdefault(flavor.entry_id, []).append(flavor.id)

    def live_flavors(self, entry_id: str) -> list[Flavor]:
        flavors = (self.flavors[f] for f in self.flavors_of.get(entry_id, []))
        return [f for f in flavors if f.status != FLAVOR_DELETED]

    def tick(self, at: float | None = None) -> None:
        """Finish the conversions whose delay is over (lazily, on each request)."""
        if not self.pending:
            return
        at = time.time() if at is None else at
        for entry_id in list(self.pending):
            entry = self.entries.get(entry_id)
            if entry is None:
                self.pending.discard(entry_id)
                continue
            waiting = [f for f in self.live_flavors(entry_id) if f.ready_at is not None]
            for flavor in waiting:
                if flavor.ready_at is not None and flavor.ready_at <= at:
                    flavor.status = FLAVOR_ERROR if entry.fails_conversion else FLAVOR_READY
                    flavor.ready_at, flavor.updated_at = None, int(at)
            if entry.ready_at is not None and entry.ready_at <= at:
                entry.ready_at = None
                entry.status = ENTRY_ERROR_CONVERTING if entry.fails_conversion else ENTRY_READY
                entry.updated_at = int(at)
                if entry.replaced_entry_id:
                    self.replacement_converted(entry)
            if entry.ready_at is None and all(f.ready_at is None for f in waiting):
                self.pending.discard(entry_id)

    # -- content replacement (media.updateContent on an entry with content) --

    def replacement_converted(self, temp: Entry) -> None:
        """``kFlowHelper::handleEntryReplacement``: the temporary entry is READY or failed."""
        entry = self.entries.get(temp.replaced_entry_id or "")
        if entry is None or entry.replacing_entry_id != temp.id:
            self.drop_entry(temp)
            return
        if temp.status == ENTRY_ERROR_CONVERTING:
            entry.replacement_status = REPLACEMENT_FAILED  # cancelReplace clears it
        elif entry.replacement_status == REPLACEMENT_APPROVED_BUT_NOT_READY:
            self.replace_entry(entry)
        elif entry.replacement_status == REPLACEMENT_NOT_READY_AND_NOT_APPROVED:
            entry.replacement_status = REPLACEMENT_READY_BUT_NOT_APPROVED

    def replace_entry(self, entry: Entry) -> None:
        """``kBusinessConvertDL::replaceEntry``: the temporary entry's READY assets become the
        entry's, and the temporary entry goes.

        ``kReplacementHelper::relinkReplacingEntryAssetsToReplacedEntryAssets``: an old asset
        with the flavor params of a new one keeps its id and takes the new content; an old
        one without is deleted; a new one without an old one joins the entry.
        """
        temp = self.entries.get(entry.replacing_entry_id or "")
        at = now()
        new = {} if temp is None else {f.flavor_params_id: f for f in self.live_flavors(temp.id)}
        for old in self.live_flavors(entry.id):
            fresh = new.pop(old.flavor_params_id, None)
            if fresh is None or fresh.status != FLAVOR_READY:
                old.status, old.deleted_at, old.ready_at = FLAVOR_DELETED, at, None
                continue
            old.path, old.size_bytes, old.file_ext = fresh.path, fresh.size_bytes, fresh.file_ext
            old.status, old.ready_at, old.updated_at = FLAVOR_READY, None, at
            old.report_bytes = True
            fresh.path = None
            fresh.status, fresh.deleted_at = FLAVOR_DELETED, at
        for fresh in new.values():
            self.flavors_of[fresh.entry_id].remove(fresh.id)
            fresh.entry_id = entry.id
            self.flavors_of.setdefault(entry.id, []).append(fresh.id)
        if temp is not None:
            entry.ms_duration = temp.ms_duration or entry.ms_duration
            self.drop_entry(temp)
        entry.status = ENTRY_READY
        entry.replacing_entry_id = None
        entry.replacement_status = REPLACEMENT_NONE
        entry.updated_at = at

    def cancel_replacement(self, entry: Entry) -> None:
        """``KalturaEntryService::cancelReplace``."""
        temp = self.entries.get(entry.replacing_entry_id or "")
        if temp is not None:
            self.drop_entry(temp)
        entry.replacing_entry_id = None
        entry.replacement_status = REPLACEMENT_NONE
        entry.updated_at = now()

    def drop_entry(self, entry: Entry) -> None:
        """``myEntryUtils::deleteEntry``: status DELETED, its flavors deleted."""
        at = now()
        entry.status, entry.updated_at, entry.ready_at = ENTRY_DELETED, at, None
        self.pending.discard(entry.id)
        for flavor in self.live_flavors(entry.id):
            flavor.status, flavor.deleted_at, flavor.ready_at = FLAVOR_DELETED, at, None

    # -- listing --

    def select(
        self,
        predicates: list[Callable[[Entry], bool]],
        created_min: int | None,
        created_max: int | None,
        candidates: set[str] | None,
    ) -> Iterator[Entry]:
        """Entries in ``createdAt`` order that pass every predicate."""
        if candidates is not None:
            chosen = sorted(
                (self.entries[i] for i in candidates if i in self.entries),
                key=lambda e: e.sort_key,
            )
            source: Iterator[Entry] = iter(chosen)
        else:
            lo = 0 if created_min is None else bisect.bisect_left(self.by_created, (created_min,))
            hi = (
                len(self.by_created)
                if created_max is None
                else bisect.bisect_left(self.by_created, (created_max + 1,))
            )
            source = (self.entries[key[2]] for key in self.by_created[lo:hi])
        for entry in source:
            if created_min is not None and entry.created_at < created_min:
                continue
            if created_max is not None and entry.created_at > created_max:
                continue
            if all(p(entry) for p in predicates):
                yield entry


def synthetic_chunks(seed: str, size: int, chunk: int = 1 << 16) -> Iterator[bytes]:
    """Deterministic pseudo-random bytes for a flavor without stored content."""
    block = hashlib.sha256(seed.encode()).digest() * (chunk // 32)
    sent = 0
    counter = 0
    while sent < size:
        piece = block[: min(chunk, size - sent)]
        if counter:
            piece = bytes([counter & 0xFF]) + piece[1:]
        yield piece
        sent += len(piece)
        counter += 1
