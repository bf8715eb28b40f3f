"""S3: head, ranged reads handed to the caller as received, streamed multipart writes, restores,
delete.

Reads are ranged GETs pinned to the ETag seen when the job started (``IfMatch``): a recording
overwritten mid-transfer fails with a permanent error instead of producing a file stitched from
two versions. A range's body goes piece by piece to the caller's sink (the pipeline encrypts it
straight into its own reused buffers), so memory does not grow with the object's size.

Writes of unknown length (a Kaltura original streamed from its download URL) are multipart
uploads fed one part at a time (:meth:`S3Store.upload_stream`): memory is a few parts, never
the object. Each part carries its SHA-256 (S3's ``ChecksumAlgorithm=SHA256``), so S3 refuses
a part damaged on the way and records the composite checksum with the object, where a later
reader (a restore) can check the bytes it got. Servers that ignore checksums (``rclone serve
s3``) still work; the checksum is then simply not recorded. A failed upload is aborted, so no
half-written parts linger and bill.

An upload is *confirmed* when the server's own answers vouch for every byte: each part's
stated SHA-256 (or, from a server that states none, its ETag, the MD5 of the part as received)
is the one of the bytes sent, and the completion states the composite of them. A confirmed copy
needs no ``HEAD`` to check it (which makes ``rclone serve s3`` hash the whole object); an
unconfirmed one is checked by ``HEAD`` as before (:attr:`UploadResult.confirmed`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import re
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from recstore.clients.aws_errors import NoSuchBucket, aws_errors
from recstore.common import events
from recstore.common.errors import (
    ArchivedObject,
    Conflict,
    NotFound,
    PreconditionFailed,
    RemoteError,
)
from recstore.common.retry import RetryPolicy, call_with_retry

log = logging.getLogger(__name__)

T = TypeVar("T")
REMOTE = "s3"


@dataclass(frozen=True)
class ObjectInfo:
    """What a HEAD tells: enough to pin reads (ETag) and to judge an archived copy."""

    bucket: str
    key: str
    size: int
    etag: str
    #: ``STANDARD`` when S3 names none; ``GLACIER``, ``DEEP_ARCHIVE``, ... otherwise.
    storage_class: str = "STANDARD"
    #: The raw ``x-amz-restore`` header of an archived object, e.g. ``ongoing-request="true"``.
    restore: str | None = None
    #: ``ARCHIVE_ACCESS`` or ``DEEP_ARCHIVE_ACCESS`` (``x-amz-archive-status``) for an
    #: ``INTELLIGENT_TIERING`` object that S3 moved to an archive tier: its storage class does
    #: not change, but it must be restored before it can be read, as Glacier's.
    archive_status: str | None = None
    #: User metadata (``x-amz-meta-*``), keys lower-case.
    metadata: Mapping[str, str] = field(default_factory=dict)
    #: S3's SHA-256 checksum of the object (``<base64>`` or, for multipart, ``<base64>-<parts>``),
    #: where the object was written with one and the server records it.
    checksum_sha256: str | None = None

    @property
    def archived(self) -> bool:
        """In a storage class or tier whose bytes must be restored before they can be read."""
        return self.storage_class in ARCHIVE_CLASSES or bool(self.archive_status)

    @property
    def restore_expires(self) -> bool:
        """Whether a restore of it is a copy that expires after the days asked for (Glacier,
        Deep Archive), rather than bringing it back for good: S3 returns an Intelligent-Tiering
        object in an archive tier to its Frequent Access tier, and refuses a restore request
        for one that names days."""
        return not self.archive_status

    def retrieval_tier(self, wanted: str) -> str:
        """The restore tier to ask for, given the one configured: ``Expedited`` is not offered
        for Deep Archive (the storage class, or Intelligent-Tiering's tier), and S3 refuses
        such a request every time, so the fastest tier offered there, ``Standard``, is asked
        for instead."""
        deep = self.storage_class == "DEEP_ARCHIVE" or self.archive_status == "DEEP_ARCHIVE_ACCESS"
        return "Standard" if deep and wanted == "Expedited" else wanted

    @property
    def tier(self) -> str:
        """Where the bytes are, for messages: ``GLACIER``, ``INTELLIGENT_TIERING (ARCHIVE_ACCESS)``,
        ``STANDARD``."""
        if self.archive_status:
            return f"{self.storage_class} ({self.archive_status})"
        return self.storage_class

    @property
    def restore_state(self) -> str | None:
        """None (no restore asked), ``"ongoing"`` or ``"done"`` (readable until it expires)."""
        if not self.restore:
            return None
        return "ongoing" if 'ongoing-request="true"' in self.restore else "done"

    @property
    def readable(self) -> bool:
        """Whether a GET works now: not archived, or restored."""
        return not self.archived or self.restore_state == "done"


#: Storage classes whose objects are read only after a restore request.
ARCHIVE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})
#: S3's smallest part (all but the last) and most parts per upload.
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PARTS = 10_000


def smallest_part(size: int | None) -> int:
    """The smallest part, all but the last, that uploads ``size`` bytes in :data:`MAX_PARTS`.

    S3 refuses part 10,001, and only then: a 250 GB recording sent in 20 MB parts would fail
    after 200 GB. Parts of at least ``size / MAX_PARTS`` always fit, whatever pieces a caller
    gathers them from; below 10,000 x 5 MiB (52 GB) that is S3's own smallest part. Without a
    size, nothing can be planned.
    """
    if size is None:
        return MIN_PART_SIZE
    return max(MIN_PART_SIZE, -(-size // MAX_PARTS))


@dataclass(frozen=True)
class UploadResult:
    """What a streamed upload wrote."""

    bucket: str
    key: str
    size: int
    etag: str
    parts: int
    #: The composite checksum as S3 states it: base64 SHA-256 of the part digests, ``-<parts>``.
    checksum_sha256: str
    #: The server's answers vouch for every byte (see the module docstring): each part's
    #: checksum and the completed upload's, over parts whose sizes add up to :attr:`size`.
    #: False where any of them is missing; the caller then checks the object with a HEAD.
    confirmed: bool = False


@dataclass(frozen=True)
class RangeRequest:
    """A ranged GET sent ahead of reading it (:meth:`S3Store.request_range`)."""

    offset: int
    end: int
    answer: asyncio.Future[Any]

    def discard(self) -> None:
        """Drop a request that will not be read: cancel it, or close the answer it got."""
        if not self.answer.done():
            self.answer.cancel()
        elif not self.answer.cancelled() and self.answer.exception() is None:
            self.answer.result()["Body"].close()


class RangeCursor:
    """An object read from its start in consecutive ranges (:meth:`S3Store.ranges`).

    A read may send the GET for the range after it first (``next_length``), so S3's wait for
    that range's first byte passes while this one's bytes arrive; the next read takes that
    answer. Closing the cursor drops a GET sent for a range that is then never read.
    ``first`` is an answer already had for the first range (:meth:`S3Store.open`).
    """

    def __init__(
        self, store: S3Store, source: ObjectInfo, first: RangeRequest | None = None
    ) -> None:
        self._store = store
        self._source = source
        self._ahead: RangeRequest | None = first
        #: Where the next read starts.
        self.offset = 0

    async def read(
        self, length: int, sink: Callable[[bytes], None], next_length: int | None = None
    ) -> int:
        """Hand the next ``length`` bytes to ``sink`` (see :meth:`S3Store.read_range`); bytes
        read. With ``next_length``, the GET for that many bytes after them is sent first."""
        sent, self._ahead = self._ahead, None
        end = self.offset + length
        if next_length and end < self._source.size:
            self._ahead = self._store.request_range(self._source, end, next_length)
        n = await self._store.read_range(self._source, self.offset, length, sink, sent)
        self.offset += n
        return n

    def close(self) -> None:
        if self._ahead is not None:
            self._ahead.discard()
            self._ahead = None

    def __enter__(self) -> RangeCursor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class OpenedObject:
    """An object described by the answer to a GET of its first range, that answer kept for
    the first read (:meth:`S3Store.open`): a reader of the object
    (:class:`~recstore.transfer.pipeline.RangeReader`) whose first cursor starts with it.
    Closing it drops the answer if no read took it."""

    def __init__(self, store: S3Store, info: ObjectInfo, first: RangeRequest | None) -> None:
        self._store = store
        self.info = info
        self._first = first

    def ranges(self, source: ObjectInfo) -> RangeCursor:
        first, self._first = (self._first, None) if source == self.info else (None, self._first)
        return RangeCursor(self._store, source, first)

    def close(self) -> None:
        if self._first is not None:
            self._first.discard()
            self._first = None


def part_digest(data: bytes | bytearray | memoryview) -> bytes:
    return hashlib.sha256(data).digest()


def part_md5(data: bytes | bytearray | memoryview) -> bytes:
    """The part's MD5: its ETag on S3 (unencrypted or SSE-S3) and on ``rclone serve s3``.
    Not a security hash here, only a check of what the server stated."""
    return hashlib.md5(data, usedforsecurity=False).digest()


def multipart_etag(part_md5s: list[bytes]) -> str:
    """The ETag S3 (and ``rclone serve s3``) gives a completed multipart upload: the MD5 of
    the parts' MD5s, ``-<parts>``."""
    whole = hashlib.md5(b"".join(part_md5s), usedforsecurity=False).hexdigest()
    return f"{whole}-{len(part_md5s)}"


#: An ETag that is an MD5 (32 hex digits), as S3 gives unencrypted and SSE-S3 objects and parts.
_MD5_ETAG = re.compile(r"[0-9a-f]{32}")
#: Answer fields of server-side encryption whose ETags are no MD5 of the data (S3's user guide,
#: "Checking object integrity": SSE-C, SSE-KMS and DSSE-KMS).
_OPAQUE_ETAG_ENCRYPTION = frozenset({"aws:kms", "aws:kms:dsse"})


def composite_checksum(part_digests: list[bytes]) -> str:
    """S3's checksum of a multipart object: SHA-256 over the part digests, then ``-<parts>``."""
    whole = hashlib.sha256(b"".join(part_digests)).digest()
    return f"{base64.b64encode(whole).decode()}-{len(part_digests)}"


def same_checksum(a: str | None, b: str | None) -> bool:
    """Compare two S3 checksums, with or without the ``-<parts>`` suffix (moto leaves it off)."""
    if not a or not b:
        return False
    return a.split("-")[0] == b.split("-")[0]


class S3Store:
    """The S3 operations recstore needs, over one aiobotocore client the caller owns."""

    def __init__(self, client: Any, policy: RetryPolicy | None = None) -> None:
        self._client = client
        self._policy = policy
        #: Whether the server states each part's SHA-256 (learnt from its first answer): then
        #: no part's MD5 is needed to confirm it, and none is computed.
        self._states_checksums: bool | None = None

    async def head(self, bucket: str, key: str) -> ObjectInfo:
        async def call() -> ObjectInfo:
            with aws_errors(REMOTE, f"head of s3://{bucket}/{key}"):
                answer = await self._client.head_object(
                    Bucket=bucket, Key=key, ChecksumMode="ENABLED"
                )
            return _object_info(bucket, key, answer)

        return await call_with_retry(call, remote=REMOTE, policy=self._policy)

    async def find(self, bucket: str, key: str) -> ObjectInfo | None:
        """Like :meth:`head`, but None when the object does not exist."""
        try:
            return await self.head(bucket, key)
        except NotFound:
            return None

    async def open(self, bucket: str, key: str, length: int) -> OpenedObject | None:
        """The object, described by the answer to a GET of its first ``length`` bytes (its
        size from ``Content-Range``, its ETag, storage class and restore state from the
        headers); None when it does not exist. The answer's body waits for the first read.

        A job's HEAD cost a round trip before every copy; the first GET is sent anyway. It
        is the one read not pinned by ``If-Match``: its ETag is the one the later ranges are
        pinned to. A HEAD describes the object where the GET cannot: an empty one (S3 has
        no range of it to send: 416), an archived one (refused: ``InvalidObjectState``, and
        only the HEAD tells whether a restore runs), and one from a server that ignored the
        range (its reads then fail, as they would after a HEAD).
        """

        async def call() -> Any:
            with aws_errors(REMOTE, f"read of s3://{bucket}/{key}"):
                return await self._client.get_object(
                    Bucket=bucket, Key=key, Range=f"bytes=0-{max(length, 1) - 1}"
                )

        try:
            answer = await call_with_retry(call, remote=REMOTE, policy=self._policy)
        except NotFound:
            return None
        except ArchivedObject:
            return OpenedObject(self, await self.head(bucket, key), None)
        except RemoteError as exc:
            if exc.status != 416:
                raise
            return OpenedObject(self, await self.head(bucket, key), None)
        total = str(answer.get("ContentRange") or "").rpartition("/")[2]
        if not total.isdigit():
            answer["Body"].close()
            return OpenedObject(self, await self.head(bucket, key), None)
        info = replace(_object_info(bucket, key, answer), size=int(total))
        first = asyncio.get_running_loop().create_future()
        first.set_result(answer)
        end = min(max(length, 1), info.size)
        return OpenedObject(self, info, RangeRequest(0, end, first))

    def ranges(self, source: ObjectInfo) -> RangeCursor:
        """A cursor reading ``source`` in consecutive ranges from its start."""
        return RangeCursor(self, source)

    def request_range(self, source: ObjectInfo, offset: int, length: int) -> RangeRequest:
        """Send the GET for a range now, to be read later by :meth:`read_range` (``ahead=``).

        A GET waits for S3's first byte (tens of milliseconds on S3, a request's round trip
        and the server's work anywhere) before any byte flows; asked for while the range
        before it is read, that wait passes in parallel. Until it is read, the server's bytes
        wait in the kernel's receive buffer, so memory does not grow.
        """
        end = min(offset + length, source.size)
        return RangeRequest(offset, end, asyncio.ensure_future(self._get(source, offset, end)))

    async def _get(self, source: ObjectInfo, start: int, end: int) -> Any:
        return await self._client.get_object(
            Bucket=source.bucket,
            Key=source.key,
            Range=f"bytes={start}-{end - 1}",
            IfMatch=source.etag,
        )

    async def read_range(
        self,
        source: ObjectInfo,
        offset: int,
        length: int,
        sink: Callable[[bytes], None],
        ahead: RangeRequest | None = None,
    ) -> int:
        """Hand ``length`` bytes from ``offset`` (or up to the end) to ``sink``; bytes read.

        The pieces are the HTTP client's own receive buffers, passed on as they arrive: no copy
        between the socket and the sink, which may encrypt them straight into its output. Each
        byte reaches ``sink`` once and in order: a connection that breaks mid-body is resumed
        with a ranged GET from the first byte not yet handed on (still pinned to the ETag), so
        a sink that cannot rewind, such as a running cipher, stays right. ``ahead``, sent
        earlier by :meth:`request_range` for this range, is the first attempt's answer; it is
        discarded if it is for another range.
        """
        end = min(offset + length, source.size)
        position = offset
        sent = ahead

        async def call() -> int:
            nonlocal position, sent
            what = f"read of s3://{source.bucket}/{source.key} at {position}"
            request, sent = sent, None  # an answer sent ahead serves the first attempt only
            with aws_errors(REMOTE, what):
                if request is not None and (request.offset, request.end) == (position, end):
                    answer = await request.answer
                else:
                    if request is not None:
                        request.discard()
                    answer = await self._get(source, position, end)
                async with answer["Body"] as body:
                    _check_range(answer, position, end, what)
                    # aiohttp's own pieces as received: aiobotocore's read(n) would join them
                    # into a new bytes (a copy of every byte) and its readinto copy that again
                    # (together a tenth of recstore's CPU in the transfer benchmark).
                    async for piece, _ in body.raw_stream.content.iter_chunks():
                        sink(piece)
                        position += len(piece)
            if position != end:
                raise RemoteError(
                    f"s3 {what}: the answer ended {end - position} bytes short",
                    remote=REMOTE,
                    transient=True,
                )
            return end - offset

        try:
            if end <= offset:
                return 0
            return await call_with_retry(call, remote=REMOTE, policy=self._policy)
        finally:
            if sent is not None:
                sent.discard()

    async def get_small(self, bucket: str, key: str) -> tuple[bytes, str] | None:
        """A small object's bytes and ETag, or None when it does not exist."""

        async def call() -> tuple[bytes, str] | None:
            with aws_errors(REMOTE, f"read of s3://{bucket}/{key}"):
                try:
                    answer = await self._client.get_object(Bucket=bucket, Key=key)
                except self._client.exceptions.NoSuchKey:
                    return None
                async with answer["Body"] as body:
                    data = await body.read()
            return bytes(data), str(answer["ETag"])

        return await call_with_retry(call, remote=REMOTE, policy=self._policy)

    async def put_small(
        self,
        bucket: str,
        key: str,
        data: bytes,
        *,
        if_none_match: bool = False,
        if_match: str | None = None,
    ) -> str | None:
        """Write a small object; with a condition, None when the condition failed. New ETag.

        ``if_none_match`` writes only when no object exists; ``if_match`` only over the object
        with that ETag. These are S3's atomic conditional writes, which leases are built on.
        """
        conditions: dict[str, str] = {}
        if if_none_match:
            conditions["IfNoneMatch"] = "*"
        if if_match is not None:
            conditions["IfMatch"] = if_match

        async def call() -> str | None:
            try:
                with aws_errors(REMOTE, f"write of s3://{bucket}/{key}"):
                    answer = await self._client.put_object(
                        Bucket=bucket, Key=key, Body=data, **conditions
                    )
            except (PreconditionFailed, Conflict, NotFound):
                # 412: the condition failed; 409: a concurrent conditional write won; 404: the
                # object to match is gone. Each means "not yours" to the caller.
                if conditions:
                    return None
                raise
            return str(answer["ETag"])

        return await call_with_retry(call, remote=REMOTE, policy=self._policy)

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
    ) -> UploadResult:
        """Write ``parts`` (each at least :data:`MIN_PART_SIZE` but the last) as one object.

        The next part is read while the current one is sent (one part of read-ahead), so a
        download feeding ``parts`` and the upload overlap; memory is about three parts. Each
        part is sent with its SHA-256, and an answer that states a different one is a damaged
        part, sent again. Any failure (or cancellation) aborts the upload before it surfaces.
        """
        extra: dict[str, Any] = {"ContentType": content_type}
        if storage_class:
            extra["StorageClass"] = storage_class
        if metadata:
            extra["Metadata"] = dict(metadata)
        if checksums:
            extra["ChecksumAlgorithm"] = "SHA256"
        where = f"s3://{bucket}/{key}"

        async def create() -> str:
            with aws_errors(REMOTE, f"multipart start of {where}"):
                answer = await self._client.create_multipart_upload(Bucket=bucket, Key=key, **extra)
            return str(answer["UploadId"])

        upload_id = await call_with_retry(create, remote=REMOTE, policy=self._policy)
        try:
            return await self._send_parts(bucket, key, upload_id, parts, checksums)
        except BaseException:
            await asyncio.shield(self._abort(bucket, key, upload_id))
            raise

    async def _send_parts(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        parts: AsyncIterable[bytes],
        checksums: bool,
    ) -> UploadResult:
        where = f"s3://{bucket}/{key}"
        sent: list[dict[str, Any]] = []
        digests: list[bytes] = []
        md5s: list[bytes] = []
        vouched = True
        size = 0

        def md5_wanted() -> bool:
            return not (checksums and self._states_checksums)

        async def send(number: int, data: bytes, digest: bytes, md5: bytes | None) -> None:
            nonlocal vouched
            part, md5, confirmed = await self._upload_part(
                bucket, key, upload_id, number, data, digest if checksums else None, md5
            )
            sent.append(part)
            digests.append(digest)
            vouched = vouched and confirmed
            if md5 is not None:
                md5s.append(md5)

        pieces = _with_digests(parts, md5_wanted)
        async with contextlib.aclosing(_read_ahead(pieces)) as ahead:
            async for data, digest, md5 in ahead:
                number = len(sent) + 1
                if number > MAX_PARTS:
                    raise RemoteError(
                        f"s3 upload of {where} needs more than {MAX_PARTS} parts: "
                        "raise the part size",
                        remote=REMOTE,
                    )
                await send(number, data, digest, md5)
                size += len(data)
        if not sent:  # an empty object is one empty part
            await send(1, b"", part_digest(b""), part_md5(b""))

        async def complete() -> Mapping[str, Any]:
            with aws_errors(REMOTE, f"multipart completion of {where}"):
                answer: Mapping[str, Any] = await self._client.complete_multipart_upload(
                    Bucket=bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": sent},
                )
            return answer

        answer = await call_with_retry(complete, remote=REMOTE, policy=self._policy)
        checksum = composite_checksum(digests)
        confirmed = vouched and _completion_vouches(answer, checksum, md5s, len(sent))
        etag = str(answer.get("ETag", ""))
        return UploadResult(bucket, key, size, etag, len(sent), checksum, confirmed)

    async def _upload_part(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        number: int,
        data: bytes,
        digest: bytes | None,
        md5: bytes | None,
    ) -> tuple[dict[str, Any], bytes | None, bool]:
        """One part; with ``digest`` sent as its SHA-256, which the answer must confirm.

        Returns the part as the completion names it, its MD5 (when computed) and whether the
        answer vouches for its bytes: a stated SHA-256 equal to ``digest``, or, where none is
        stated, an ETag equal to ``md5``. An answer that states other bytes (either way) is a
        part damaged on its way, sent again.
        """
        what = f"upload of part {number} of s3://{bucket}/{key}"
        extra: dict[str, str] = {}
        if digest is not None:
            extra = {
                "ChecksumAlgorithm": "SHA256",
                "ChecksumSHA256": base64.b64encode(digest).decode(),
            }

        async def call() -> tuple[dict[str, Any], bool, Mapping[str, Any]]:
            with aws_errors(REMOTE, what):
                answer = await self._client.upload_part(
                    Bucket=bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=data,
                    **extra,
                )
            stated = answer.get("ChecksumSHA256")
            if extra and stated and stated != extra["ChecksumSHA256"]:
                raise _damaged(what)
            part: dict[str, Any] = {"PartNumber": number, "ETag": answer["ETag"]}
            if extra:
                part["ChecksumSHA256"] = extra["ChecksumSHA256"]
            return part, bool(extra and stated), answer

        async def checked() -> tuple[dict[str, Any], bytes | None, bool]:
            nonlocal md5
            part, confirmed, answer = await call()
            if extra:
                self._states_checksums = confirmed
            if confirmed:
                return part, md5, True
            if md5 is None:  # a server that stopped stating checksums: rare, so in line
                md5 = await asyncio.to_thread(part_md5, data)
            return part, md5, _etag_vouches(answer, md5, what)

        return await call_with_retry(checked, remote=REMOTE, policy=self._policy)

    async def _abort(self, bucket: str, key: str, upload_id: str) -> None:
        """Abort an upload that failed; one that cannot be aborted is logged, not raised (the
        upload's own failure is the one to report)."""

        async def call() -> None:
            with aws_errors(REMOTE, f"multipart abort of s3://{bucket}/{key}"):
                await self._client.abort_multipart_upload(
                    Bucket=bucket, Key=key, UploadId=upload_id
                )

        try:
            await call_with_retry(call, remote=REMOTE, policy=self._policy)
        except RemoteError as exc:  # its parts are stored (and billed) until removed
            events.emit(
                log,
                events.STORAGE_ERROR,
                "multipart upload %s of s3://%s/%s left open (a lifecycle rule with "
                "AbortIncompleteMultipartUpload removes it): %s",
                upload_id,
                bucket,
                key,
                exc,
            )

    async def read_chunks(self, source: ObjectInfo, chunk_size: int) -> AsyncIterator[bytes]:
        """The object's bytes in ``chunk_size`` pieces, the next range read while one is used.

        Each piece is a ranged GET pinned to the object's ETag (see :meth:`read_range`), the
        one after it sent while it is read (:class:`RangeCursor`); memory is two pieces
        whatever the object's size.
        """
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")

        async def pieces() -> AsyncIterator[bytes]:
            with self.ranges(source) as ranges:
                while ranges.offset < source.size:
                    received: list[bytes] = []
                    await ranges.read(chunk_size, received.append, next_length=chunk_size)
                    yield b"".join(received)  # the one copy (none when it came in one piece)

        async with contextlib.aclosing(_read_ahead(pieces())) as ahead:
            async for piece in ahead:
                yield piece

    async def restore(self, source: ObjectInfo, days: int, tier: str) -> bool:
        """Ask S3 to bring an archived object back for ``days``; True when it already was.

        S3 answers 202 for a new request and 200 when a restored copy exists already; a
        request for an object whose restore is still running is refused with
        ``RestoreAlreadyInProgress``, which here means "asked before" (False). What S3 would
        refuse for this object is not sent: ``days`` where the restore does not expire
        (:attr:`ObjectInfo.restore_expires`), a ``tier`` it does not offer
        (:meth:`ObjectInfo.retrieval_tier`).
        """
        bucket, key = source.bucket, source.key
        request: dict[str, Any] = {"GlacierJobParameters": {"Tier": source.retrieval_tier(tier)}}
        if source.restore_expires:
            request["Days"] = days

        async def call() -> bool:
            try:
                with aws_errors(REMOTE, f"restore request of s3://{bucket}/{key}"):
                    answer = await self._client.restore_object(
                        Bucket=bucket, Key=key, RestoreRequest=request
                    )
            except Conflict:  # RestoreAlreadyInProgress, S3's only 409 to a restore
                return False
            return int(answer.get("ResponseMetadata", {}).get("HTTPStatusCode", 202)) == 200

        return await call_with_retry(call, remote=REMOTE, policy=self._policy)

    async def presigned_get(self, bucket: str, key: str, expires: int) -> str:
        """A URL anyone holding it can GET the object with, for ``expires`` seconds."""
        with aws_errors(REMOTE, f"presigning of s3://{bucket}/{key}"):
            url = await self._client.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires
            )
        return str(url)

    async def delete(self, bucket: str, key: str, etag: str | None = None) -> None:
        """Delete the object; with ``etag``, only while it is still that version.

        When the object was replaced since it was read, S3 refuses with 412 (a RemoteError
        with that status) and the newer version stays. An object already gone counts as
        deleted: a plain delete says so itself, but a pinned one answers 404, as it does to
        a retry whose first attempt deleted the object and lost the answer, or to the second
        of two runs of one job. A bucket that does not exist is still an error.
        """
        conditions = {"IfMatch": etag} if etag is not None else {}

        async def call() -> None:
            try:
                with aws_errors(REMOTE, f"delete of s3://{bucket}/{key}"):
                    await self._client.delete_object(Bucket=bucket, Key=key, **conditions)
            except NoSuchBucket:
                raise
            except NotFound:
                pass

        await call_with_retry(call, remote=REMOTE, policy=self._policy)


def _object_info(bucket: str, key: str, answer: Mapping[str, Any]) -> ObjectInfo:
    return ObjectInfo(
        bucket,
        key,
        int(answer["ContentLength"]),
        str(answer["ETag"]),
        storage_class=str(answer.get("StorageClass") or "STANDARD"),
        restore=answer.get("Restore"),
        archive_status=answer.get("ArchiveStatus"),
        metadata={str(k).lower(): str(v) for k, v in (answer.get("Metadata") or {}).items()},
        checksum_sha256=answer.get("ChecksumSHA256"),
    )


def _damaged(what: str) -> RemoteError:
    return RemoteError(
        f"s3 {what}: the server holds other bytes than were sent",
        remote=REMOTE,
        code="BadDigest",
        transient=True,
    )


def _etag_vouches(answer: Mapping[str, Any], md5: bytes, what: str) -> bool:
    """Whether a part's ETag is the MD5 of the bytes sent; raises for a plain MD5 of others.

    S3 (unencrypted or SSE-S3) and ``rclone serve s3`` give a part the MD5 of the bytes they
    received as its ETag, so another MD5 means the part was damaged on its way. Under SSE-C,
    SSE-KMS or DSSE-KMS the ETag is no MD5 of the data, nor is any ETag not shaped as one:
    those vouch for nothing (the copy is then checked by HEAD).
    """
    if answer.get("SSECustomerAlgorithm") or (
        answer.get("ServerSideEncryption") in _OPAQUE_ETAG_ENCRYPTION
    ):
        return False
    etag = str(answer.get("ETag", "")).strip('"')
    if not _MD5_ETAG.fullmatch(etag):
        return False
    if etag != md5.hex():
        raise _damaged(what)
    return True


def _completion_vouches(
    answer: Mapping[str, Any], checksum: str, md5s: list[bytes], parts: int
) -> bool:
    """Whether a completed upload's answer states the object made of the parts sent: its
    composite SHA-256, or (from a server that states none) its multipart ETag over the parts'
    MD5s. A different statement vouches for nothing; the HEAD that follows then tells."""
    stated = answer.get("ChecksumSHA256")
    if stated:
        return same_checksum(str(stated), checksum)
    if len(md5s) != parts:
        return False
    return str(answer.get("ETag", "")).strip('"') == multipart_etag(md5s)


def _check_range(answer: Mapping[str, Any], start: int, end: int, what: str) -> None:
    """Refuse an answer that is not the range asked for.

    Some S3-compatible servers ignore ``Range`` and send the whole object from its first byte;
    taken as the range, those bytes would be stored at the wrong place in the file, silently.
    """
    got = str(answer.get("ContentRange") or "")
    if not got.startswith(f"bytes {start}-{end - 1}/"):
        raise RemoteError(
            f"s3 {what}: asked for bytes {start}-{end - 1}, the answer holds "
            f"{got or 'no Content-Range (the server ignores Range)'}",
            remote=REMOTE,
            transient=False,
        )


async def _with_digests(
    parts: AsyncIterable[bytes], md5_wanted: Callable[[], bool]
) -> AsyncGenerator[tuple[bytes, bytes, bytes | None], None]:
    """Each part with its SHA-256 and, while ``md5_wanted()``, its MD5, hashed in a thread:
    under :func:`_read_ahead` the next part is hashed while the current one is sent, so the
    checksums cost no time in line."""
    iterator = aiter(parts)
    try:
        async for data in iterator:
            yield await asyncio.to_thread(_digests, data, md5_wanted())
    finally:
        await _close(iterator)


def _digests(data: bytes, md5: bool) -> tuple[bytes, bytes, bytes | None]:
    return data, part_digest(data), part_md5(data) if md5 else None


async def _read_ahead(items: AsyncIterable[T]) -> AsyncGenerator[T, None]:
    """Yield ``items`` while the next one is already being produced (one item of read-ahead).

    The producer step runs as a task, so a download feeding an upload keeps receiving while
    the consumer sends; its error surfaces at the consumer's next step, and stopping early
    cancels it.
    """
    iterator = aiter(items)

    async def step() -> T | None:
        try:
            return await anext(iterator)
        except StopAsyncIteration:
            return None

    pending: asyncio.Task[T | None] | None = asyncio.create_task(step())
    try:
        while pending is not None:
            item = await pending
            if item is None:
                pending = None
                return
            pending = asyncio.create_task(step())
            yield item
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await pending  # its result or error is moot once the consumer stopped
        with contextlib.suppress(Exception):
            await _close(iterator)


async def _close(iterator: AsyncIterator[Any]) -> None:
    """Close an async generator (a download feeding parts) rather than leave it to the GC."""
    closer = getattr(iterator, "aclose", None)
    if closer is not None:
        await closer()
