"""One transfer job, start to finish: every S3 key into every target room, then clean up.

The order is what makes it safe to kill at any point:

1. For each key x target: find or create the room path; if the room already holds a file that
   carries this job's marker (recorded in the file's notes at upload), it is done — a
   redelivered message never makes a second copy. Otherwise stream, encrypt and upload it;
   if another run of the same job stored it meanwhile, keep the copy that was stored first.
   (A message's first delivery skips the look-up while its source exists: see
   :meth:`Transferer._into_room`.)
2. Give the file key to every room member who lacks it (the same code the
   DracoonGlobalSharer runs, restricted to this file).
3. Only when every key is in every target: delete the S3 sources (when configured).

The caller deletes the SQS message last. A failure anywhere leaves the source in place.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

from recstore.clients.dracoon_rooms import Room, RoomGone, StoredFile, autorenamed
from recstore.clients.s3 import MIN_PART_SIZE, ObjectInfo, OpenedObject
from recstore.common import events, metrics
from recstore.common.errors import ArchivedObject, PermanentJobError, RemoteError
from recstore.common.progress import PROGRESS
from recstore.crypto import (
    FileEncryptor,
    PlainFileKey,
    encrypt_file_key,
    generate_file_key,
)
from recstore.transfer.job import file_name
from recstore.transfer.keys import KeyServer, share_missing_keys
from recstore.transfer.pipeline import EncryptedSource, RangeReader, stream_chunks
from recstore.transfer.rooms import RoomPlan

log = logging.getLogger(__name__)


class Source(Protocol):
    async def open(self, bucket: str, key: str, length: int) -> OpenedObject | None:
        """The object as the answer to a GET of its first ``length`` bytes describes it, that
        answer kept for the first read; None when it does not exist."""
        ...

    async def delete(self, bucket: str, key: str, etag: str | None = None) -> None: ...


class Destination(KeyServer, Protocol):
    """What a transfer needs of one DRACOON account (implemented over the DRACOON client)."""

    async def ensure_room_path(self, parent_id: int, names: Sequence[str]) -> Room: ...

    async def files_named_like(self, room_id: int, name: str) -> list[StoredFile]:
        """The room's files whose names contain ``name``'s stem (``name (1).ext`` too)."""
        ...

    async def remove_file(self, file_id: int) -> None: ...

    async def upload(
        self,
        room: Room,
        name: str,
        size: int,
        chunks: AsyncIterator[memoryview],
        *,
        expire_at: datetime | None,
        marker: str,
        file_key: Callable[[], Mapping[str, Any]] | None,
        part_size: int | None = None,
    ) -> StoredFile: ...

    async def own_public_key(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class TransferRequest:
    """What one job asks for, decoded and resolved: its sources, and its rooms (planned, each
    once) below the parent room of its instance's account."""

    job_id: str
    bucket: str
    keys: Sequence[str]
    rooms: Sequence[RoomPlan]
    parent_room_id: int
    #: The job's message comes for the first time (SQS's receive count): no earlier attempt
    #: of it can have stored a copy, so none is looked for before the upload.
    first_delivery: bool = False


@dataclass
class TransferReport:
    uploaded: list[tuple[str, str, int]] = field(default_factory=list)  # key, room path, file id
    already_there: list[tuple[str, str, int]] = field(default_factory=list)
    #: Copies this run uploaded and removed again: another run had stored the same first.
    twins_removed: list[tuple[str, str, int]] = field(default_factory=list)
    keys_shared: int = 0
    keys_skipped: int = 0
    sources_removed: list[str] = field(default_factory=list)
    bytes: int = 0


#: DRACOON keeps at most this many characters of a node's notes.
MAX_NOTES = 255
#: The longest ETag kept in a marker (S3's are 32 hex digits, "-<parts>" and quotes).
MAX_ETAG = 64


def marker_for(job_id: str, bucket: str, key: str) -> str:
    """Names the job and source in the uploaded file's notes: a redelivered job finds its file.

    Readable when it fits in DRACOON's notes with an ETag after it; a digest of the same
    when the key is too long for that.
    """
    marker = f"recstore job={job_id} source=s3://{bucket}/{key}"
    if len(marker) + len(" etag=") + MAX_ETAG > MAX_NOTES:
        digest = hashlib.sha256(f"{job_id}\n{bucket}\n{key}".encode()).hexdigest()[:40]
        marker = f"recstore source-sha256={digest}"
    return marker


def with_etag(marker: str, etag: str) -> str:
    """The marker as stored: the source's ETag tells this recording from a later one."""
    bare = etag.strip('"')[:MAX_ETAG]  # S3 quotes its ETags
    return f"{marker} etag={bare}"


def same_recording(stored: StoredFile, marker: str, info: ObjectInfo | None) -> bool:
    """Whether ``stored`` holds the recording ``marker`` names, as ``info`` describes it now.

    A job's id is its instance and meeting id, which a producer may reuse (a recurring
    meeting) with a new recording under the same key. Counting the old file as "already
    there" would then delete the new source untransferred. So while the source exists, its
    ETag must match (a marker without one, as written before ETags were recorded, never does:
    a duplicate is better than a lost recording); once it is gone, an earlier run of this job
    removed it after every target held it.
    """
    if stored.notes == marker:  # no ETag recorded: trusted only once the source is gone
        return info is None
    if not stored.notes.startswith(marker + " etag="):
        return False
    return info is None or stored.notes == with_etag(marker, info.etag)


class Transferer:
    """Runs :class:`TransferRequest`s against one source and an account's destination."""

    def __init__(
        self,
        source: Source,
        chunk_size: int,
        remove_after_transferring: bool,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._source = source
        self._chunk_size = chunk_size
        self._remove = remove_after_transferring
        self._clock = clock
        #: The first range read of each source: the smallest S3 part, so the upload starts
        #: soonest (or a whole chunk, if smaller); its GET describes the source.
        self._first_chunk = min(chunk_size, MIN_PART_SIZE)

    async def run(self, request: TransferRequest, destination: Destination) -> TransferReport:
        report = TransferReport()
        now = self._clock()
        plans = [(plan, plan.expire_at(now)) for plan in request.rooms]
        present: list[ObjectInfo] = []
        known_keys: dict[int, PlainFileKey] = {}  # plain keys of the files uploaded here
        for key in request.keys:
            name = file_name(key)
            marker = marker_for(request.job_id, request.bucket, key)
            # None: removed after an earlier, complete run; each target is checked for it.
            # Its first range is asked for now: the answer describes it (no HEAD first).
            opened = await self._source.open(request.bucket, key, self._first_chunk)
            if opened is not None:
                present.append(opened.info)
            recording = _Recording(key, name, marker, opened)
            try:
                for plan, expire_at in plans:
                    room = await destination.ensure_room_path(request.parent_room_id, plan.segments)
                    args = (destination, request, recording, plan, expire_at)
                    try:
                        stored = await self._into_room(*args, room, report, known_keys)
                    except RoomGone:  # once: gone again right after its creation fails the job
                        room = await destination.ensure_room_path(
                            request.parent_room_id, plan.segments
                        )
                        stored = await self._into_room(*args, room, report, known_keys)
                    if room.encrypted:
                        shared = await share_missing_keys(
                            destination,
                            file_id=stored.id,
                            known_keys=known_keys,
                            error_event=events.TRANSFER_ERROR,
                        )
                        report.keys_shared += shared.written
                        report.keys_skipped += shared.skipped
            finally:
                if opened is not None:
                    opened.close()  # the first range's answer, if no upload read it
        if self._remove:
            await self._remove_sources(present, report)
        return report

    async def _into_room(
        self,
        destination: Destination,
        request: TransferRequest,
        recording: _Recording,
        plan: RoomPlan,
        expire_at: datetime | None,
        room: Room,
        report: TransferReport,
        known_keys: dict[int, PlainFileKey],
    ) -> StoredFile:
        """The room's copy of the recording: the one an earlier run stored, or a new one.

        The room is listed for a marked copy first, except on the message's first delivery
        while the source exists: no attempt of this message came before, and what another
        message of the same job (a producer's re-send) stored shows after the upload, as a
        twin (:func:`_earlier_copy`). That saves a short recording's job one request in
        thirteen. A room deleted by a user then shows at the upload channel's creation
        (:class:`RoomGone`), not at the listing.
        """
        key, name, marker, opened = recording
        bucket = request.bucket
        info = recording.info
        path = "/".join(plan.segments)
        named_like: list[StoredFile] | None = None
        if not (request.first_delivery and info is not None):
            named_like = await destination.files_named_like(room.id, name)
            copies = _copies(named_like, marker, info)
            if copies:
                report.already_there.append((key, path, copies[0].id))
                return copies[0]
        if info is None:
            raise PermanentJobError(
                f"source s3://{bucket}/{key} does not exist and target "
                f"{plan.path!r} does not hold it"
            )
        if not info.readable:
            raise PermanentJobError(_not_readable(info))
        assert opened is not None  # info is opened's
        try:
            stored, plain_key = await self._upload(
                destination, opened, room, path, name, expire_at, with_etag(marker, info.etag)
            )
        except RoomGone:
            raise  # nothing was read or sent: the caller finds or creates the room again
        except Exception as exc:
            events.emit(
                log,
                events.AMAZON_TO_DRACOON_ERROR,
                "copy of s3://%s/%s into room %s failed: %s",
                bucket,
                key,
                room.id,
                exc,
                size=info.size,
            )
            if (archived := _archived_while_read(info, exc)) is not None:
                raise PermanentJobError(archived) from exc
            raise
        if plain_key is not None:
            known_keys[stored.id] = plain_key
        report.bytes += stored.size
        taken = set() if named_like is None else {f.name for f in named_like}
        if stored.name == autorenamed(name, taken):
            earlier = None  # the name the room's files left it: no twin came first (see below)
        else:
            earlier = await _earlier_copy(destination, room, name, marker, info, stored)
        if earlier is None:
            report.uploaded.append((key, path, stored.id))
            return stored
        # this run's copy is removed; the earlier one serves the job
        report.twins_removed.append((key, path, stored.id))
        report.already_there.append((key, path, earlier.id))
        return earlier

    async def _remove_sources(self, present: list[ObjectInfo], report: TransferReport) -> None:
        """Delete the sources this run found, once every target holds them. A source already
        gone was removed by an earlier run."""
        for info in present:
            # Only the version that was copied: a new recording written under the same key
            # while this job ran is no target's, and stays.
            try:
                await self._source.delete(info.bucket, info.key, etag=info.etag)
            except RemoteError as exc:
                if exc.status != 412:
                    raise
                events.emit(
                    log,
                    events.AMAZON_TO_DRACOON_ERROR,
                    "source s3://%s/%s changed while it was copied: the new version is kept",
                    info.bucket,
                    info.key,
                )
            else:
                report.sources_removed.append(info.key)
                events.emit(
                    log,
                    events.STORAGE_STATUS,
                    "source s3://%s/%s removed: every target holds it",
                    info.bucket,
                    info.key,
                    size=info.size,
                )

    async def _upload(
        self,
        destination: Destination,
        opened: OpenedObject,
        room: Room,
        path: str,
        name: str,
        expire_at: datetime | None,
        marker: str,
    ) -> tuple[StoredFile, PlainFileKey | None]:
        """Upload one object; the stored file, and its plain file key when it is encrypted."""
        started = time.monotonic()
        info = opened.info
        reader: RangeReader = opened
        encrypted: EncryptedSource | None = None
        completed_file_key: Callable[[], Mapping[str, Any]] | None = None
        if room.encrypted:
            reader = encrypted = EncryptedSource(opened, FileEncryptor(generate_file_key()))
            own_key = dict(await destination.own_public_key())

            def completed_file_key() -> Mapping[str, Any]:
                # Asked by the uploader after the last chunk: the source offers the key then.
                return encrypt_file_key(encrypted.file_key, own_key)

        source = f"s3://{info.bucket}/{info.key}"
        with PROGRESS.track(source, path or f"room {room.id}", info.size) as progress:
            # Closed here, not when collected: a failed upload frees the chunk buffers and
            # the GET sent ahead (an S3 connection) at once.
            chunks = stream_chunks(
                reader,
                info,
                self._chunk_size,
                progress=progress.advance,
                first_chunk=self._first_chunk,
            )
            async with contextlib.aclosing(chunks):
                stored = await destination.upload(
                    room,
                    name,
                    info.size,
                    chunks,
                    expire_at=expire_at,
                    marker=marker,
                    file_key=completed_file_key,
                    part_size=self._chunk_size,
                )
        seconds = time.monotonic() - started
        metrics.BYTES_TRANSFERRED.inc(info.size)
        metrics.TRANSFER_SECONDS.observe(seconds)
        events.emit(
            log,
            events.TRANSFER_STATUS,
            "uploaded %s into room %s",
            info.key,
            room.id,
            file_id=stored.id,
            size=info.size,
            seconds=round(seconds, 3),
            encrypted=room.encrypted,
        )
        return stored, (None if encrypted is None else encrypted.file_key)


def _copies(files: Sequence[StoredFile], marker: str, info: ObjectInfo | None) -> list[StoredFile]:
    """The copies among ``files`` of the recording ``marker`` and ``info`` name, the earliest
    first."""
    return sorted((f for f in files if same_recording(f, marker, info)), key=lambda f: f.id)


async def _earlier_copy(
    destination: Destination,
    room: Room,
    name: str,
    marker: str,
    info: ObjectInfo,
    stored: StoredFile,
) -> StoredFile | None:
    """The copy another run of this job stored before ours, once ours is removed; else None.

    A producer may send a job twice, and two daemons may then run it at once: both find
    nothing marked, and both upload. DRACOON numbers nodes as it creates them, so the run
    whose copy came later sees the other's lower id and removes its own, and the other
    sees no earlier one and keeps its own.

    The caller asks only when the room's files, as listed before the upload (or, on a first
    delivery, none), do not explain our copy's name. DRACOON names a file and numbers it in
    one step as it completes the upload, renaming it (``autorename``) when the name is taken:
    a twin completed before ours would hold the name ours was due, so ours got another.
    (Only a similarly named file removed in those seconds could hide a twin: both copies then
    stay, a duplicate, nothing lost.) A short recording's job so lists its room once on a
    redelivery, and not at all on a first delivery whose file kept its name.

    Only this run's own copy is ever removed, and
    only in favour of a complete one of the same source version. When DRACOON refuses the
    removal (no ``delete`` permission) or the room cannot be listed, both copies stay (a
    duplicate, nothing lost) and the job succeeds. When the removal's outcome is unknown
    (a transient error), the job fails and is tried again: the retry finds a copy by its
    marker and reports that one, so no report names a file that may be gone.
    """
    try:
        named_like = await destination.files_named_like(room.id, name)
        earlier = [c for c in _copies(named_like, marker, info) if c.id < stored.id]
    except RemoteError as exc:
        events.emit(
            log,
            events.TRANSFER_ERROR,
            "could not look for another copy of s3://%s/%s in room %s; file %s stays: %s",
            info.bucket,
            info.key,
            room.id,
            stored.id,
            exc,
        )
        return None
    if not earlier:
        return None
    first = earlier[0]
    try:
        await destination.remove_file(stored.id)
    except RemoteError as exc:
        if exc.transient:
            raise
        events.emit(
            log,
            events.TRANSFER_ERROR,
            "file %s in room %s is a second copy of s3://%s/%s (file %s is the first) "
            "and stays: %s",
            stored.id,
            room.id,
            info.bucket,
            info.key,
            first.id,
            exc,
        )
        return None
    events.emit(
        log,
        events.TRANSFER_STATUS,
        "another run of this job stored s3://%s/%s in room %s first (file %s): "
        "this run's copy (file %s) is removed",
        info.bucket,
        info.key,
        room.id,
        first.id,
        stored.id,
    )
    return first


RESTORE_AND_REDRIVE = "restore it (S3 restore-object), then redrive the job"
RESTORE_FOR_GOOD_AND_REDRIVE = (
    "restore it (S3 restore-object without Days: it returns to the Frequent Access tier), "
    "then redrive the job"
)


def _not_readable(info: ObjectInfo) -> str:
    """Why an archived source cannot be copied, and what the operator does about it.

    A restore takes hours, longer than the retries of a job last, so the job goes to the
    dead-letter queue with this reason instead of failing until the queue's redrive policy
    moves it there without one.
    """
    where = f"source s3://{info.bucket}/{info.key} is in {info.tier}"
    if info.restore_state == "ongoing":
        return f"{where} and its restore is still running: redrive the job once it is done"
    if info.restore_expires:
        return f"{where} and not restored: {RESTORE_AND_REDRIVE}"
    return f"{where} and not restored: {RESTORE_FOR_GOOD_AND_REDRIVE}"


def _archived_while_read(info: ObjectInfo, exc: Exception) -> str | None:
    """The reason for a read that S3 refused because the object went to an archive tier after
    the job's first read of it (a lifecycle transition in between); None for any other
    failure."""
    if not isinstance(exc, ArchivedObject):
        return None
    return (
        f"source s3://{info.bucket}/{info.key} went to an archive tier while it was copied "
        f"(S3 refused the read: InvalidObjectState): {RESTORE_AND_REDRIVE}"
    )


class _Recording(NamedTuple):
    """One key of a job: its file name, the marker of its copies, the source as opened
    (None: gone)."""

    key: str
    name: str
    marker: str
    opened: OpenedObject | None

    @property
    def info(self) -> ObjectInfo | None:
        return None if self.opened is None else self.opened.info
