"""The entries a :class:`~recstore.archive.filters.Selection` picks, with what the rules need.

Listing goes through the client's windowed iterator, so it sees every match, past Kaltura's
10,000-row paging cap. Flavors and the S3 copy are fetched per entry only when the caller
asks, with bounded concurrency and in listing order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from recstore.archive.filters import Selection
from recstore.archive.states import ArchiveTags, EntryState, Flavor, original_flavor, tag_words
from recstore.clients.kaltura_types import KalturaFlavorAsset, KalturaMediaEntry
from recstore.clients.s3 import ObjectInfo
from recstore.common.aio import ordered_map


class EntrySource(Protocol):
    """What listing needs of Kaltura (:class:`recstore.clients.kaltura.KalturaClient`)."""

    def iter_entries(self, entry_filter: Mapping[str, Any]) -> AsyncIterator[KalturaMediaEntry]: ...

    async def count(self, entry_filter: Mapping[str, Any]) -> int: ...

    async def flavors(self, entry_id: str) -> list[KalturaFlavorAsset]: ...


class ObjectLookup(Protocol):
    """What the rules need of S3 (:class:`recstore.clients.s3.S3Store`)."""

    async def find(self, bucket: str, key: str) -> ObjectInfo | None: ...


@dataclass(frozen=True)
class EntryView:
    """One entry as listed, with its flavors and S3 copy when they were asked for."""

    entry: KalturaMediaEntry
    flavors: Sequence[Flavor] = ()
    s3: ObjectInfo | None = None
    looked_up: frozenset[str] = field(default_factory=frozenset)

    @property
    def id(self) -> str:
        return self.entry.id

    @property
    def tags(self) -> list[str]:
        return tag_words(self.entry.tags)

    @property
    def original(self) -> Flavor | None:
        return original_flavor(self.flavors)

    def state(self, tags: ArchiveTags) -> EntryState:
        return tags.state(self.tags)


async def select(
    source: EntrySource, selection: Selection, now: datetime
) -> AsyncIterator[KalturaMediaEntry]:
    """Every entry the selection picks, once, oldest first, at most ``max_entries``."""
    limit = selection.max_entries
    if limit == 0:
        return
    given = 0
    base = selection.kaltura_filter(now)
    for batch in selection.id_batches():
        entry_filter = {**base, "idIn": ",".join(batch)} if batch else base
        async for entry in source.iter_entries(entry_filter):
            if not selection.accepts(entry):
                continue
            yield entry
            given += 1
            if limit is not None and given >= limit:
                return


async def count(source: EntrySource, selection: Selection, now: datetime) -> int:
    """How many entries the selection picks: Kaltura's count where it is exact, else a listing."""
    if selection.exact_on_server and len(selection.id_batches()) == 1:
        base = selection.kaltura_filter(now)
        batch = selection.id_batches()[0]
        total = await source.count({**base, "idIn": ",".join(batch)} if batch else base)
        return total if selection.max_entries is None else min(total, selection.max_entries)
    n = 0
    async for _ in select(source, selection, now):
        n += 1
    return n


async def inspect(
    entries: AsyncIterator[KalturaMediaEntry],
    source: EntrySource,
    *,
    objects: ObjectLookup | None = None,
    bucket: str | None = None,
    with_flavors: bool = True,
    concurrency: int = 16,
) -> AsyncIterator[EntryView]:
    """Each entry with its flavors and (given ``objects`` and ``bucket``) its S3 copy."""

    async def look(entry: KalturaMediaEntry) -> EntryView:
        flavors: list[Flavor] = []
        looked: set[str] = set()
        if with_flavors:
            flavors = [Flavor.from_api(f) for f in await source.flavors(entry.id)]
            looked.add("flavors")
        found = None
        if objects is not None and bucket:
            found = await objects.find(bucket, entry.id)
            looked.add("s3")
        return EntryView(entry, tuple(flavors), found, frozenset(looked))

    async for view in ordered_map(entries, look, concurrency):
        yield view
