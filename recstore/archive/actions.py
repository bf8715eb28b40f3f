"""Seed 001's changing commands, one entry at a time: s3copy, replace-video, restore, repair.

Every action starts by looking at where the entry stands now (its tags, its flavors, its S3
copy) and decides from that alone, so running it twice is harmless: what is already done
comes back as ``DONE_BEFORE``, never done again. That is what lets the archive queue
redeliver a message, and the CLI be run again over the same selection.

The states are seed 001's (:class:`~recstore.archive.states.EntryState`): *initial* →
``s3copy`` → *archived* → ``replace-video`` → *place_holder* → ``restore`` → *archived*.
An action refuses (``SKIPPED``, with the reason) an entry in a state it cannot work with.

What keeps an original from being lost:

* ``replace-video`` deletes flavors only when the S3 copy exists and matches the original:
  the size (exact where Kaltura gives ``sizeInBytes``), and, where S3 recorded a SHA-256 of
  the copy, the bytes themselves (the original is read again and hashed). An original that
  was edited after archival (seed 001's "Edge case") differs, and is left alone.
* ``s3copy`` never writes over an existing copy, and never copies what looks like the
  placeholder video; ``repair`` refreshes a copy only from an original that is neither the
  placeholder nor missing.
* Order within ``replace-video``: the tag ``flavors_deleted`` first, then the placeholder is
  uploaded into a token, then the flavors are deleted and the token becomes the content. An
  interrupted run leaves an entry that the next run (or ``repair``) finishes.
* New content for an entry that has some is a *replacement* in Kaltura
  (``media.updateContent``): a temporary entry converts it while the entry keeps its READY
  status and old original, and the swap may wait for approval. ``replace-video`` and
  ``restore`` are DONE only once the replacement is over and the entry's original is the
  expected file (its size; for a restore also the S3 copy's SHA-256 where one is recorded);
  WAIT while it runs; FAILED with the reason when it failed or waits for approval. An entry
  with a replacement under way is not touched by another action (WAIT or FAILED likewise).

Outcomes: ``DONE``; ``DONE_BEFORE``; ``WOULD_DO`` (dry run: what ``--apply`` would do);
``SKIPPED`` (with the reason); ``WAIT_GLACIER`` (a restore from Glacier or an
Intelligent-Tiering archive tier was just requested);
``WAIT`` (a restore or an import is still running); ``FAILED`` (with the reason; ``transient``
says whether trying again later may help). One entry's failure is its own row, never the
batch's end.

Domain code: the clients come in through the small protocols below, and nothing here opens a
socket.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from recstore.archive.states import (
    ENTRY_READY,
    ENTRY_STATUS,
    ArchiveTags,
    EntryState,
    Flavor,
    SizeRule,
    original_flavor,
    tag_words,
    with_tag,
    without_tags,
)
from recstore.clients.kaltura import token_resource, url_resource
from recstore.clients.kaltura_types import KalturaFlavorAsset, KalturaMediaEntry, KalturaUploadToken
from recstore.clients.s3 import ObjectInfo, UploadResult, composite_checksum, part_digest
from recstore.common import metrics
from recstore.common.aio import ordered_map
from recstore.common.errors import NotFound, RecstoreError, RemoteError

log = logging.getLogger(__name__)

S3COPY = "s3copy"
REPLACE_VIDEO = "replace-video"
RESTORE = "restore"
REPAIR = "repair"
ACTIONS = (S3COPY, REPLACE_VIDEO, RESTORE, REPAIR)

#: Metadata recorded with each S3 copy (``x-amz-meta-*``), for people and for checks.
META_ENTRY = "kaltura-entry-id"
META_FLAVOR = "kaltura-flavor-id"
META_SIZE = "kaltura-flavor-bytes"
META_PART_SIZE = "recstore-part-size"

#: Flavor states in which new content is still on its way (import, conversion).
FLAVOR_PENDING = frozenset({0, 1, 6, 7, 8})
FLAVOR_ERROR = -1
ENTRY_ERRORS = frozenset({-2, -1})
#: entryReplacementStatus (``kaltura/server`` ``alpha/lib/enums/entryReplacementStatus.php``).
REPLACEMENT_STATUS = {
    "0": "NONE",
    "1": "APPROVED_BUT_NOT_READY",
    "2": "READY_BUT_NOT_APPROVED",
    "3": "NOT_READY_AND_NOT_APPROVED",
    "4": "FAILED",
}
#: Bytes read per call when reading the placeholder file.
FILE_READ = 1024 * 1024


class Outcome(enum.Enum):
    DONE = "DONE"
    DONE_BEFORE = "DONE_BEFORE"
    WOULD_DO = "WOULD_DO"
    SKIPPED = "SKIPPED"
    WAIT_GLACIER = "WAIT_GLACIER"
    WAIT = "WAIT"
    FAILED = "FAILED"


OUTCOME_COLUMNS = ("entry_id", "action", "outcome", "reason", "mode", "bytes", "seconds")


@dataclass(frozen=True)
class ActionResult:
    """One entry's row of a report."""

    entry_id: str
    action: str
    outcome: Outcome
    reason: str = ""
    applied: bool = False
    bytes: int = 0
    seconds: float = 0.0
    #: For FAILED: whether the same action may succeed later (a remote was down, a timeout).
    transient: bool = False
    #: For a transient FAILED: seconds after which trying again is worth it, when known (the
    #: entry is held by another worker whose lock lasts that long at most).
    retry_after: float | None = None

    def row(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id,
            "action": self.action,
            "outcome": self.outcome.value,
            "reason": self.reason,
            "mode": "apply" if self.applied else "dry-run",
            "bytes": self.bytes,
            "seconds": f"{self.seconds:.3f}",
        }


class KalturaOps(Protocol):
    """What the actions need of Kaltura (:class:`recstore.clients.kaltura.KalturaClient`)."""

    async def get_entry(self, entry_id: str) -> KalturaMediaEntry: ...

    async def flavors(self, entry_id: str) -> list[KalturaFlavorAsset]: ...

    async def flavor_url(self, flavor_id: str) -> str: ...

    def download(self, url: str, chunk_size: int) -> AsyncIterator[bytes]: ...

    async def update_tags(self, entry_id: str, tags: Sequence[str]) -> KalturaMediaEntry: ...

    async def delete_flavor(self, flavor_id: str) -> None: ...

    async def add_upload_token(
        self, file_name: str, file_size: int | None
    ) -> KalturaUploadToken: ...

    async def upload(
        self, token_id: str, chunks: AsyncIterable[bytes], *, start_at: int = 0
    ) -> KalturaUploadToken: ...

    async def update_content(
        self, entry_id: str, resource: Mapping[str, Any]
    ) -> KalturaMediaEntry: ...

    async def update_thumbnail(self, entry_id: str, offset_seconds: float) -> KalturaMediaEntry: ...


class ArchiveStore(Protocol):
    """What the actions need of S3 (:class:`recstore.clients.s3.S3Store`)."""

    async def find(self, bucket: str, key: str) -> ObjectInfo | None: ...

    async def upload_stream(
        self,
        bucket: str,
        key: str,
        parts: AsyncIterable[bytes],
        *,
        storage_class: str | None = None,
        metadata: Mapping[str, str] | None = None,
        content_type: str = "application/octet-stream",
        checksums: bool = True,
    ) -> UploadResult: ...

    def read_chunks(self, source: ObjectInfo, chunk_size: int) -> AsyncIterator[bytes]: ...

    async def restore(self, source: ObjectInfo, days: int, tier: str) -> bool: ...

    async def presigned_get(self, bucket: str, key: str, expires: int) -> str: ...

    async def delete(self, bucket: str, key: str) -> None: ...


#: The placeholder recstore ships (a 2-second MP4 of a few KB; its making is in
#: ``recstore/archive/data/PROVENANCE.md``): seed 002's image shipped none, so every
#: deployment had to bring its own before replace-video could run.
DEFAULT_PLACEHOLDER = Path(__file__).parent / "data" / "placeholder.mp4"


@dataclass(frozen=True)
class Placeholder:
    """The video that stands in for archived originals."""

    path: Path
    size: int

    @classmethod
    def of(cls, path: Path) -> Placeholder:
        return cls(path, path.stat().st_size)

    def looks_like(self, flavor: Flavor) -> bool:
        """Whether a flavor is (most likely) this file: same size, exact or in whole KB."""
        if flavor.size_bytes is not None:
            return flavor.size_bytes == self.size
        return abs(flavor.size_kb - self.size / 1024) <= 1

    async def chunks(self, chunk_size: int) -> AsyncIterator[bytes]:
        """The file in ``chunk_size`` pieces, read off the event loop."""
        handle = await asyncio.to_thread(self.path.open, "rb")
        try:
            while True:
                piece = await asyncio.to_thread(handle.read, chunk_size)
                if not piece:
                    return
                yield piece
        finally:
            handle.close()


@dataclass(frozen=True)
class ArchiveRules:
    """The settings the actions follow (``archive.*``), resolved once."""

    bucket: str
    tags: ArchiveTags = field(default_factory=ArchiveTags)
    sizes: SizeRule = field(default_factory=SizeRule)
    storage_class: str = "GLACIER"
    part_size: int = 32 * 1024 * 1024
    exempt_tag: str | None = None
    placeholder: Placeholder | None = None
    thumbnail_offset: float = 0.0
    verify_before_replace: bool = True
    ready_timeout: float = 1800.0
    ready_poll: float = 10.0
    restore_days: int = 2
    restore_tier: str = "Bulk"
    restore_mode: str = "url"
    url_expiry: int = 86400


@dataclass(frozen=True)
class Facts:
    """An entry as the actions see it: fresh tags, flavors and S3 copy."""

    entry: KalturaMediaEntry
    flavors: Sequence[Flavor]
    s3: ObjectInfo | None

    @property
    def id(self) -> str:
        return self.entry.id

    @property
    def tag_string(self) -> str:
        return self.entry.tags or ""

    @property
    def original(self) -> Flavor | None:
        return original_flavor(self.flavors)


@dataclass(frozen=True)
class _Verdict:
    outcome: Outcome
    reason: str
    bytes: int = 0
    transient: bool = False
    retry_after: float | None = None


def _size_text(flavor: Flavor) -> str:
    if flavor.size_bytes is not None:
        return f"{flavor.size_bytes} bytes"
    return f"about {flavor.size_kb} KB"


def _done(reason: str, size: int = 0) -> _Verdict:
    return _Verdict(Outcome.DONE, reason, size)


def _skip(reason: str) -> _Verdict:
    return _Verdict(Outcome.SKIPPED, reason)


def _fail(reason: str, transient: bool = False) -> _Verdict:
    return _Verdict(Outcome.FAILED, reason, transient=transient)


def _restore_terms(copy: ObjectInfo, rules: ArchiveRules) -> str:
    """The retrieval tier the S3 client asks for (and why, when it is not ``restoreTier``), and
    how long the restored copy stays: ``restoreDays`` for Glacier; an Intelligent-Tiering copy
    returns to its Frequent Access tier for good."""
    tier = copy.retrieval_tier(rules.restore_tier)
    if tier != rules.restore_tier:
        tier += f": {rules.restore_tier} is not offered there"
    if copy.restore_expires:
        return f"{tier}, {rules.restore_days} days"
    return f"{tier}, back to Frequent Access"


def _would(reason: str) -> _Verdict:
    return _Verdict(Outcome.WOULD_DO, f"dry run: would {reason}")


def _busy(other: str, retry_after: float) -> _Verdict:
    """The entry is held by another worker: try again once its lock is let go or runs out.

    Even when the other worker does the same action: the lock may be a dead worker's (killed
    mid-action, its message back in the queue before its lock expired), and a duplicate that
    stood back for good would leave the entry undone until the next planned run (a day).
    Tried again after the lock's TTL, it finds the entry free, or done (DONE_BEFORE).
    """
    return _Verdict(
        Outcome.FAILED,
        f"busy: {other} is running on another worker; tried again in {retry_after:g} s",
        transient=True,
        retry_after=retry_after,
    )


class _Failed(RecstoreError):
    """An action cannot go on; its verdict says why."""

    def __init__(self, verdict: _Verdict) -> None:
        super().__init__(verdict.reason)
        self.verdict = verdict


class EntryGuard(Protocol):
    """Keeps two workers from changing one entry at once
    (:class:`recstore.workers.leases.EntryLocks`).

    ``hold`` yields None while the entry is ours, or the action someone else is doing on it.
    ``ttl``: seconds after which a lock of a worker that died holding it has run out.
    """

    @property
    def ttl(self) -> float: ...

    def hold(self, entry_id: str, action: str) -> AbstractAsyncContextManager[str | None]: ...


class Archivist:
    """Runs the four actions on single entries; see the module docstring for the rules.

    With a ``guard``, an applied action first takes the entry: an entry held by another
    worker (whatever it does there, the same action too: that worker may have died holding
    it) is a transient failure, tried again once that lock is let go or has run out
    (``retry_after``). Dry runs change nothing and take nothing.
    """

    def __init__(
        self,
        kaltura: KalturaOps,
        store: ArchiveStore,
        rules: ArchiveRules,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        guard: EntryGuard | None = None,
    ) -> None:
        self.kaltura = kaltura
        self.store = store
        self.rules = rules
        self._guard = guard
        self._clock = clock
        self._sleep = sleep
        self._handlers = {
            S3COPY: self._s3copy,
            REPLACE_VIDEO: self._replace_video,
            RESTORE: self._restore,
            REPAIR: self._repair,
        }

    async def run(self, action: str, entry_id: str, *, apply: bool) -> ActionResult:
        """Decide and (with ``apply``) do ``action`` on one entry; never raises for the entry."""
        if action not in self._handlers:
            raise ValueError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
        started = self._clock()
        try:
            if apply and self._guard is not None:
                async with self._guard.hold(entry_id, action) as other:
                    verdict = (
                        await self._decide(action, entry_id, apply)
                        if other is None
                        else _busy(other, self._guard.ttl)
                    )
            else:
                verdict = await self._decide(action, entry_id, apply)
        except _Failed as failed:
            verdict = failed.verdict
        except RemoteError as exc:
            verdict = _fail(str(exc), transient=exc.transient)
        except RecstoreError as exc:
            verdict = _fail(str(exc))
        except Exception as exc:  # a bug or a local fault: this entry's row, not the batch's end
            log.exception("%s of %s failed unexpectedly", action, entry_id)
            verdict = _fail(f"unexpected {type(exc).__name__}: {exc}", transient=True)
        return ActionResult(
            entry_id=entry_id,
            action=action,
            outcome=verdict.outcome,
            reason=verdict.reason,
            applied=apply,
            bytes=verdict.bytes,
            seconds=round(self._clock() - started, 3),
            transient=verdict.transient,
            retry_after=verdict.retry_after,
        )

    async def _decide(self, action: str, entry_id: str, apply: bool) -> _Verdict:
        facts = await self.look(entry_id)
        if facts is None:
            return _skip("no such entry (deleted?)")
        if action != S3COPY and (running := await self._replacement_verdict(facts.entry)):
            return running
        return await self._handlers[action](facts, apply)

    async def run_many(
        self, action: str, entry_ids: AsyncIterable[str], *, apply: bool, concurrency: int
    ) -> AsyncIterator[ActionResult]:
        """:meth:`run` over many entries, ``concurrency`` at once, results in input order."""

        async def one(entry_id: str) -> ActionResult:
            return await self.run(action, entry_id, apply=apply)

        async for result in ordered_map(entry_ids, one, concurrency):
            yield result

    async def look(self, entry_id: str) -> Facts | None:
        """The entry now, or None when Kaltura no longer has it."""
        try:
            entry = await self.kaltura.get_entry(entry_id)
        except NotFound:
            return None
        flavors = [Flavor.from_api(f) for f in await self.kaltura.flavors(entry_id)]
        s3 = await self.store.find(self.rules.bucket, entry_id)
        return Facts(entry, tuple(flavors), s3)

    # -- the rules shared by the actions ------------------------------------------------------

    def _state(self, facts: Facts) -> EntryState:
        return self.rules.tags.state(tag_words(facts.tag_string))

    def _exempt(self, facts: Facts) -> str | None:
        tag = self.rules.exempt_tag
        if tag and tag.lower() in {w.lower() for w in tag_words(facts.tag_string)}:
            return f"exempt: tagged {tag}"
        return None

    def _is_placeholder(self, flavor: Flavor | None) -> bool:
        placeholder = self.rules.placeholder
        return flavor is not None and placeholder is not None and placeholder.looks_like(flavor)

    def _size_problem(self, original: Flavor, s3: ObjectInfo) -> str | None:
        if self.rules.sizes.matches(original, s3.size):
            return None
        return f"S3 copy has {s3.size} bytes, the original {_size_text(original)}"

    def _where(self, entry_id: str) -> str:
        return f"s3://{self.rules.bucket}/{entry_id}"

    async def _tag(self, facts: Facts, add: str | None = None, remove: Sequence[str] = ()) -> None:
        tags = facts.tag_string
        if remove:
            tags = without_tags(tags, remove)
        if add:
            tags = with_tag(tags, add)
        if tag_words(tags) != tag_words(facts.tag_string):
            await self.kaltura.update_tags(facts.id, tag_words(tags))

    def _deleted_tag_names(self) -> list[str]:
        tags = self.rules.tags
        return [tags.flavors_deleted, *tags.flavors_deleted_aliases]

    # -- s3copy -------------------------------------------------------------------------------

    async def _s3copy(self, facts: Facts, apply: bool) -> _Verdict:
        if exempt := self._exempt(facts):
            return _skip(exempt)
        tags = self.rules.tags
        state = self._state(facts)
        if state is EntryState.PLACE_HOLDER:
            if tags.is_archived(tag_words(facts.tag_string)) and facts.s3 is not None:
                return _Verdict(Outcome.DONE_BEFORE, "archived; the placeholder is in place")
            return _skip(f"tagged {tags.flavors_deleted}: the original is the placeholder")
        original = facts.original
        if problem := self._original_problem(original):
            return _skip(problem)
        assert original is not None
        if self.rules.sizes.too_big(original):
            return _skip(
                f"original is {original.size_kb} KB, above the archive limit of "
                f"{self.rules.sizes.max_original_kb} KB"
            )
        if self._is_placeholder(original):
            return _skip("the original looks like the placeholder video; not copied")
        if facts.s3 is not None:
            if problem := self._size_problem(original, facts.s3):
                return _skip(f"{problem}: the copy is not overwritten (see repair)")
            if state is EntryState.ARCHIVED:
                return _Verdict(Outcome.DONE_BEFORE, "in S3 with a matching size")
            if not apply:
                return _would(f"tag {tags.archived} (already in S3 with a matching size)")
            await self._tag(facts, add=tags.archived)
            return _done(f"already in S3 with a matching size; tagged {tags.archived}")
        size = original.size_bytes if original.size_bytes is not None else original.size_kb * 1024
        if not apply:
            return _would(
                f"copy {size} bytes to {self._where(facts.id)} ({self.rules.storage_class})"
            )
        copied = await self._copy(facts, original)
        await self._tag(facts, add=tags.archived)
        return _done(f"copied to {self._where(facts.id)} ({self.rules.storage_class})", copied.size)

    def _original_problem(self, original: Flavor | None) -> str | None:
        if original is None:
            return "no original flavor"
        if not original.ready:
            return f"original flavor is {original.status_name}, not READY"
        return None

    async def _copy(self, facts: Facts, original: Flavor) -> UploadResult:
        """Stream the original into S3 and check what was stored; a bad copy is removed.

        What S3 stored is known from the upload's own answers when they vouch for every byte
        (:attr:`UploadResult.confirmed`); only where they do not is it asked for with a HEAD
        (which makes ``rclone serve s3`` read the whole object again).
        """
        rules = self.rules
        url = await self.kaltura.flavor_url(original.id)
        metadata = {
            META_ENTRY: facts.id,
            META_FLAVOR: original.id,
            META_PART_SIZE: str(rules.part_size),
        }
        if original.size_bytes is not None:
            metadata[META_SIZE] = str(original.size_bytes)
        result = await self.store.upload_stream(
            rules.bucket,
            facts.id,
            self.kaltura.download(url, rules.part_size),
            storage_class=rules.storage_class,
            metadata=metadata,
            content_type="video/mp4",
        )
        stored = await self._stored(result)
        problem = None
        if stored is None or stored.size != result.size:
            got = "nothing" if stored is None else f"{stored.size} bytes"
            problem = f"S3 stored {got} of the {result.size} sent"
        elif original.size_bytes is not None and result.size != original.size_bytes:
            problem = f"downloaded {result.size} bytes, Kaltura says {original.size_bytes}"
        elif not rules.sizes.matches(original, result.size):
            problem = f"downloaded {result.size} bytes, Kaltura says about {original.size_kb} KB"
        elif (
            stored.checksum_sha256
            and stored.checksum_sha256.split("-")[0] != (result.checksum_sha256.split("-")[0])
        ):
            problem = "S3 states another SHA-256 than the bytes sent"
        if problem is not None:
            await self.store.delete(rules.bucket, facts.id)
            raise _Failed(_fail(f"{problem}; the copy was removed", transient=True))
        metrics.ARCHIVE_BYTES.labels(direction="to_s3").inc(result.size)
        return result

    async def _stored(self, result: UploadResult) -> ObjectInfo | None:
        """What S3 holds after ``result``: as the upload's answers vouched for it, else by HEAD."""
        if result.confirmed:
            return ObjectInfo(
                result.bucket,
                result.key,
                result.size,
                result.etag,
                checksum_sha256=result.checksum_sha256,
            )
        return await self.store.find(result.bucket, result.key)

    # -- replace-video ------------------------------------------------------------------------

    async def _replace_video(self, facts: Facts, apply: bool) -> _Verdict:
        if exempt := self._exempt(facts):
            return _skip(exempt)
        tags = self.rules.tags
        state = self._state(facts)
        if state is EntryState.INITIAL:
            return _skip(f"not archived (no {tags.archived} tag): run s3copy first")
        placeholder = self.rules.placeholder
        if placeholder is None:
            return _fail("archive.placeholderVideo is not set")
        s3 = facts.s3
        if s3 is None:
            return _skip(f"tagged {tags.archived} but there is no S3 copy")
        original = facts.original
        if self._is_placeholder(original):
            assert original is not None
            if original.ready:
                if state is EntryState.PLACE_HOLDER:
                    return _Verdict(Outcome.DONE_BEFORE, "the placeholder is in place")
                if not apply:
                    return _would(f"tag {tags.flavors_deleted} (the placeholder is in place)")
                await self._tag(facts, add=tags.flavors_deleted)
                return _done(f"the placeholder was in place; tagged {tags.flavors_deleted}")
            if original.status in FLAVOR_PENDING:
                if not apply:
                    return _Verdict(Outcome.WAIT, "the placeholder is being converted")
                await self._tag(facts, add=tags.flavors_deleted)
                await self._await_content(facts.id, "the placeholder", self._not_placeholder)
                return _done("the placeholder is in place")
        elif original is not None:
            if state is EntryState.ARCHIVED and (problem := self._original_problem(original)):
                return _skip(problem)
            if problem := self._size_problem(original, s3):
                return _skip(f"{problem}: the original is kept")
            if apply and (problem := await self._content_problem(original, s3)):
                return _skip(f"{problem}: the original is kept (edited after archival?)")
        elif state is EntryState.ARCHIVED:
            return _skip("no original flavor")
        flavors = [f for f in facts.flavors if f.status != 3]
        if not apply:
            return _would(
                f"delete {len(flavors)} flavor(s) and put the placeholder in place "
                f"(the S3 copy matches{'' if self.rules.verify_before_replace else ' in size'})"
            )
        await self._tag(facts, add=tags.flavors_deleted)
        token = await self.kaltura.add_upload_token(placeholder.path.name, placeholder.size)
        await self.kaltura.upload(token.id, placeholder.chunks(self.rules.part_size))
        for flavor in flavors:
            await self.kaltura.delete_flavor(flavor.id)
        await self.kaltura.update_content(facts.id, token_resource(token.id))
        await self._await_content(facts.id, "the placeholder", self._not_placeholder)
        await self.kaltura.update_thumbnail(facts.id, self.rules.thumbnail_offset)
        return _done(f"{len(flavors)} flavor(s) deleted; the placeholder is in place")

    async def _content_problem(self, original: Flavor, s3: ObjectInfo) -> str | None:
        """Read the original again and compare its SHA-256 with the S3 copy's, if recorded."""
        if not self.rules.verify_before_replace or not s3.checksum_sha256:
            return None
        try:
            part_size = int(s3.metadata.get(META_PART_SIZE, ""))
        except ValueError:
            return None  # a copy made elsewhere: its part boundaries are unknown
        url = await self.kaltura.flavor_url(original.id)
        digests = [
            await asyncio.to_thread(part_digest, piece)
            async for piece in self.kaltura.download(url, part_size)
        ]
        if composite_checksum(digests).split("-")[0] != s3.checksum_sha256.split("-")[0]:
            return "the original's SHA-256 differs from the S3 copy's"
        return None

    async def _replacement_verdict(self, entry: KalturaMediaEntry) -> _Verdict | None:
        """None when no content replacement is under way; else WAIT (it runs) or FAILED."""
        status = entry.replacement_status or "0"
        replacing = entry.replacing_entry_id or None
        if status == "0" and replacing is None:
            return None
        name = REPLACEMENT_STATUS.get(status, status)
        cancel = "cancel it (media.cancelReplace) and run again"
        if status in ("2", "3"):
            return _fail(
                f"the content replacement waits for approval in Kaltura ({name}): approve it "
                "(media.approveReplace) or cancel it (media.cancelReplace)"
            )
        if status == "4":
            return _fail(f"the content replacement failed in Kaltura (conversion): {cancel}")
        if replacing is not None:
            try:
                temp = await self.kaltura.get_entry(str(replacing))
            except NotFound:
                # replaced between the two reads: the temporary entry goes when it is over
                return _Verdict(Outcome.WAIT, "a content replacement is finishing in Kaltura")
            temp_status = _status(temp)
            if temp_status in ENTRY_ERRORS:
                return _fail(
                    f"the content replacement failed in Kaltura: the replacing entry {replacing}"
                    f" is {ENTRY_STATUS.get(temp_status, str(temp_status))}: {cancel}"
                )
        return _Verdict(Outcome.WAIT, f"a content replacement runs in Kaltura ({name})")

    async def _await_content(
        self,
        entry_id: str,
        what: str,
        problem: Callable[[Flavor], Awaitable[str | None]],
    ) -> Flavor:
        """Poll until the new content is the entry's READY original, and is what was sent.

        On an entry with content that is after Kaltura's replacement (see the module
        docstring); until then the entry and its old original look READY. ``problem`` says
        what is wrong with the original in place at the end (FAILED), if anything.
        """
        deadline = self._clock() + self.rules.ready_timeout
        while True:
            entry = await self.kaltura.get_entry(entry_id)
            running = await self._replacement_verdict(entry)
            if running is not None and running.outcome is Outcome.FAILED:
                raise _Failed(_fail(f"{what}: {running.reason}"))
            if running is None:
                original = original_flavor(
                    [Flavor.from_api(f) for f in await self.kaltura.flavors(entry_id)]
                )
                status = _status(entry)
                if status in ENTRY_ERRORS or (
                    original is not None and original.status == FLAVOR_ERROR
                ):
                    name = ENTRY_STATUS.get(status, str(status))
                    raise _Failed(_fail(f"{what} failed in Kaltura (entry {name})"))
                if status == ENTRY_READY and original is not None and original.ready:
                    if wrong := await problem(original):
                        raise _Failed(_fail(f"{what} is not in place: {wrong}"))
                    return original
            if self._clock() >= deadline:
                raise _Failed(
                    _Verdict(
                        Outcome.WAIT,
                        f"{what} is not READY after {self.rules.ready_timeout:g} s; "
                        "run again later",
                    )
                )
            await self._sleep(self.rules.ready_poll)

    async def _not_placeholder(self, original: Flavor) -> str | None:
        placeholder = self.rules.placeholder
        if placeholder is None or placeholder.looks_like(original):
            return None
        return f"the original has {_size_text(original)}, the placeholder {placeholder.size} bytes"

    def _not_copy(self, s3: ObjectInfo) -> Callable[[Flavor], Awaitable[str | None]]:
        async def check(original: Flavor) -> str | None:
            if problem := self._size_problem(original, s3):
                return problem
            return await self._content_problem(original, s3)

        return check

    # -- restore ------------------------------------------------------------------------------

    async def _restore(self, facts: Facts, apply: bool) -> _Verdict:
        tags = self.rules.tags
        state = self._state(facts)
        original = facts.original
        if state is EntryState.INITIAL:
            return _skip(f"not archived (no {tags.archived} tag)")
        if state is EntryState.ARCHIVED:
            if original is not None and original.ready:
                return _Verdict(Outcome.DONE_BEFORE, "the original is in place")
            return _skip(f"tagged {tags.archived} without a READY original: see repair")
        s3 = facts.s3
        if s3 is None:
            return _fail(f"tagged {tags.flavors_deleted} but there is no S3 copy")
        if original is not None and not self._is_placeholder(original):
            if original.status in FLAVOR_PENDING:
                return _Verdict(Outcome.WAIT, "the original is being imported or converted")
            if original.ready and self.rules.sizes.matches(original, s3.size):
                if not apply:
                    return _would(f"remove {tags.flavors_deleted} (the original is back)")
                await self._tag(facts, remove=self._deleted_tag_names())
                return _done(f"the original was back; {tags.flavors_deleted} removed")
            if original.ready and self.rules.placeholder is not None:
                return _skip(
                    "the original is neither the placeholder nor the S3 copy: check by hand"
                )
        return await self._put_back(facts, s3, apply)

    async def _put_back(self, facts: Facts, s3: ObjectInfo, apply: bool) -> _Verdict:
        """Give Kaltura the S3 copy as the original again (requesting it from Glacier first)."""
        rules = self.rules
        if not s3.readable:
            if s3.restore_state == "ongoing":
                where = self._where(facts.id)
                return _Verdict(Outcome.WAIT, f"restore of {where} from {s3.tier} runs")
            how = _restore_terms(s3, rules)
            if not apply:
                return _would(f"request a restore from {s3.tier} ({how})")
            await self.store.restore(s3, rules.restore_days, rules.restore_tier)
            return _Verdict(Outcome.WAIT_GLACIER, f"restore from {s3.tier} requested ({how})")
        if not apply:
            return _would(
                f"put the original back from {self._where(facts.id)} ({s3.size} bytes, "
                f"by {rules.restore_mode})"
            )
        if rules.restore_mode == "stream":
            resource = await self._upload_from_s3(facts, s3)
        else:
            url = await self.store.presigned_get(rules.bucket, facts.id, rules.url_expiry)
            resource = url_resource(url)
        await self.kaltura.update_content(facts.id, resource)
        metrics.ARCHIVE_BYTES.labels(direction="to_kaltura").inc(s3.size)
        await self._await_content(facts.id, "the original", self._not_copy(s3))
        await self._tag(facts, remove=self._deleted_tag_names())
        return _done(f"the original is back (by {rules.restore_mode})", s3.size)

    async def _upload_from_s3(self, facts: Facts, s3: ObjectInfo) -> Mapping[str, Any]:
        """Stream the copy into an upload token, checking its SHA-256 where one is recorded."""
        try:
            part_size = int(s3.metadata.get(META_PART_SIZE, ""))
        except ValueError:
            part_size = self.rules.part_size
        check = bool(s3.checksum_sha256) and META_PART_SIZE in s3.metadata
        digests: list[bytes] = []

        async def pieces() -> AsyncIterator[bytes]:
            async for piece in self.store.read_chunks(s3, part_size):
                if check:
                    digests.append(await asyncio.to_thread(part_digest, piece))
                yield piece

        name = f"{facts.id}.mp4"
        token = await self.kaltura.add_upload_token(name, s3.size)
        await self.kaltura.upload(token.id, pieces())
        if (
            check
            and composite_checksum(digests).split("-")[0] != str(s3.checksum_sha256).split("-")[0]
        ):
            raise _Failed(_fail("the bytes read from S3 do not match its SHA-256", True))
        return token_resource(token.id)

    # -- repair -------------------------------------------------------------------------------

    async def _repair(self, facts: Facts, apply: bool) -> _Verdict:
        tags = self.rules.tags
        words = tag_words(facts.tag_string)
        state = self._state(facts)
        original = facts.original
        s3 = facts.s3
        if state is EntryState.PLACE_HOLDER:
            if s3 is None:
                return _fail(
                    f"tagged {tags.flavors_deleted} but there is no S3 copy: the original may "
                    "be lost; check by hand"
                )
            if not tags.is_archived(words):
                if not apply:
                    return _would(f"tag {tags.archived} (the S3 copy exists)")
                await self._tag(facts, add=tags.archived)
                facts = await self._refresh(facts)
            verdict = await self._replace_video(facts, apply)
            if verdict.outcome is Outcome.DONE_BEFORE and not tags.is_archived(words):
                return _done(f"tagged {tags.archived}")
            return verdict
        if state is EntryState.ARCHIVED:
            if original is None or not original.ready or self._is_placeholder(original):
                if original is not None and original.status in FLAVOR_PENDING:
                    return _Verdict(Outcome.WAIT, "the original is being imported or converted")
                if s3 is None:
                    return _fail(
                        f"tagged {tags.archived} without an original or an S3 copy: check by hand"
                    )
                return await self._put_back(facts, s3, apply)
            return await self._refresh_copy(facts, original, s3, apply)
        if s3 is None:
            return _Verdict(Outcome.DONE_BEFORE, "not archived, nothing to repair")
        if original is None or not original.ready or self._is_placeholder(original):
            return _skip("in S3 but without a READY original to compare: check by hand")
        return await self._refresh_copy(facts, original, s3, apply)

    async def _refresh_copy(
        self, facts: Facts, original: Flavor, s3: ObjectInfo | None, apply: bool
    ) -> _Verdict:
        """Make the S3 copy match the original in Kaltura, and tag the entry archived."""
        tags = self.rules.tags
        archived = tags.is_archived(tag_words(facts.tag_string))
        problem = "there is no S3 copy" if s3 is None else self._size_problem(original, s3)
        if problem is None and s3 is not None and apply:
            problem = await self._content_problem(original, s3)
        if problem is None:
            if archived:
                return _Verdict(Outcome.DONE_BEFORE, "the original and the S3 copy match")
            if not apply:
                return _would(f"tag {tags.archived} (the S3 copy matches)")
            await self._tag(facts, add=tags.archived)
            return _done(f"the S3 copy matches; tagged {tags.archived}")
        if self.rules.sizes.too_big(original):
            return _skip(f"{problem}, and the original is above the archive limit")
        if not apply:
            return _would(f"copy the original to S3 again ({problem})")
        copied = await self._copy(facts, original)
        await self._tag(facts, add=tags.archived)
        return _done(f"copied to S3 again ({problem})", copied.size)

    async def _refresh(self, facts: Facts) -> Facts:
        fresh = await self.look(facts.id)
        if fresh is None:
            raise _Failed(_skip("no such entry (deleted?)"))
        return fresh


def _status(entry: KalturaMediaEntry) -> int:
    """The entry's KalturaEntryStatus as a number; -1 when the answer has none."""
    return int(entry.status) if entry.status is not None else -1
