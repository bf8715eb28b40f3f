"""DRACOON's upload channels: a stream of encrypted chunks into a new file.

Two channels, chosen by the server's ``useS3Storage``: S3 direct upload (one presigned URL per
part, each asked for while the part before it uploads; parts of at least 5 MB but the last,
larger above S3's part count) and the legacy channel (chunks posted to its ``uploadUrl`` with
their ``Content-Range``). Each part or chunk is retried on its own; the completion is sent once
and, when its answer is lost, the upload's status decides what follows (:meth:`UploadChannels.
_complete`); a channel that failed before its completion is cancelled. Used through
:attr:`DracoonClient.uploads <recstore.clients.dracoon.DracoonClient.uploads>`.
"""

from __future__ import annotations

import asyncio
import functools
import io
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp

from recstore.clients.dracoon_wire import (
    CHANNEL_CLOSED,
    REMOTE,
    DracoonError,
    Node,
    PresignedUrlList,
    UploadChannel,
    UploadErrorDetails,
    UploadStatus,
    dracoon_error,
    error_of_answer,
    is_absolute,
    json_or_text,
    parse,
    unreachable,
)
from recstore.clients.s3 import MAX_PARTS, smallest_part  # direct uploads are S3 multipart
from recstore.common import events
from recstore.common.errors import NotFound, kind_of_status, transient_status
from recstore.common.retry import RetryPolicy, call_with_retry

if TYPE_CHECKING:
    from recstore.clients.dracoon import DracoonClient

log = logging.getLogger(__name__)


class ChannelRecord(Protocol):
    """Hears of an upload channel while it is open (see :meth:`UploadChannels.upload`)."""

    async def opened(self, upload_id: str, size: int | None = None) -> None: ...

    async def closed(self, upload_id: str) -> None: ...


class ParentNotFound(DracoonError, NotFound):
    """DRACOON refused to open the upload channel: its parent room or folder does not exist
    (404, -40000 "Container not found" or -41000 "Node not found"). Nothing was read or sent,
    so the caller may find or create the room and upload again."""

    def __init__(self, parent_id: int, refused: NotFound) -> None:
        super().__init__(
            f"{refused} (parent {parent_id})",
            remote=REMOTE,
            status=refused.status,
            code=refused.code,
        )


class UploadChannels:
    """The uploads of one account's client: its requests, its retry policy."""

    def __init__(
        self, client: DracoonClient, policy: RetryPolicy | None, poll_timeout: float
    ) -> None:
        self._client = client
        self._policy = policy
        self._poll_timeout = poll_timeout

    async def upload(
        self,
        parent_id: int,
        name: str,
        size: int | None,
        chunks: AsyncIterator[bytes | bytearray | memoryview],
        *,
        expire_at: datetime | None = None,
        notes: str | None = None,
        file_key: Callable[[], Mapping[str, Any]] | None = None,
        resolution: str = "autorename",
        channels: ChannelRecord | None = None,
        part_size: int | None = None,
    ) -> Node:
        """Upload ``chunks`` as file ``name``; the new node. The upload is cancelled on failure.

        ``file_key`` is called after the last chunk (the GCM tag exists only then) and gives
        the uploader's encrypted file key, needed in encrypted rooms. ``channels`` hears of the
        channel while it is open (opened, then closed once cancelled or handed over for
        completion), so that a later attempt can cancel one a killed process left open.
        ``part_size``, when the caller knows it (its chunk size), is the size of the chunks
        after the first: the next part's URL is asked for ahead at that size.
        """
        direct = (await self._client.system_info()).use_s3_storage
        body: dict[str, Any] = {"parentId": parent_id, "name": name, "directS3Upload": direct}
        if size is not None:
            body["size"] = size
        if notes:
            body["notes"] = notes
        if expire_at is not None:
            body["expiration"] = {
                "enableExpiration": True,
                "expireAt": expire_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            }
        path = "/v4/nodes/files/uploads"
        try:
            channel = await self._client.call(UploadChannel, "POST", path, json=body)
        except NotFound as exc:
            raise ParentNotFound(parent_id, exc) from exc
        upload_id = channel.upload_id
        try:
            if channels is not None:
                await channels.opened(upload_id, size)
            if direct:
                parts = await self._upload_s3(upload_id, size, chunks, part_size)
                url = f"/v4/nodes/files/uploads/{upload_id}/s3"
                completion = {"parts": parts, **self._completion(name, file_key, resolution)}
            else:
                await self._upload_legacy(channel, size, chunks)
                url = channel.upload_url
                completion = self._completion(name, file_key, resolution)
        except BaseException:
            await asyncio.shield(self.cancel(upload_id))
            if channels is not None:
                await asyncio.shield(channels.closed(upload_id))
            raise
        try:
            node = await self._complete(upload_id, url, completion)
        finally:  # handed over: DRACOON closes the channel with the completion
            if channels is not None:
                await asyncio.shield(channels.closed(upload_id))
        # DRACOON accepted the completion and assembles the file (S3), or has made it (legacy).
        # Cancelling from here on could throw away a file it is finishing; if the wait ends
        # first (a timeout, a shutdown), the next attempt of the job finds the finished file
        # by its marker.
        return node if node is not None else await self._wait_until_done(upload_id)

    async def _complete(
        self, upload_id: str, url: str, completion: Mapping[str, Any]
    ) -> Node | None:
        """Send the completion once; the legacy channel's node, or None (S3: wait for it).

        A completion closes the channel: DRACOON answers a second one with -20503 ("Upload
        channel is closed"), so one whose answer was lost or failed is not simply sent again.
        The upload's status decides: "transfer" (it never arrived) sends it again, within the
        retry policy; "finishing", "done" or "error" leave the rest to the wait. A completion
        DRACOON refused (a name conflict, a missing file key) leaves the channel open and is
        cancelled, as before; any other failure leaves it alone, since DRACOON may be
        finishing the file.
        """

        async def attempt() -> Node | None:
            try:
                answer = await self._client.request("PUT", url, json=completion, retry=False)
            except DracoonError as exc:
                if not exc.transient and exc.error_code != CHANNEL_CLOSED:
                    await asyncio.shield(self.cancel(upload_id))
                    raise
                if await self._upload_status(upload_id, exc) == "transfer":
                    raise  # it never arrived: the retry policy sends it again
                return None
            if not is_absolute(url):  # S3: DRACOON assembles the file now
                return None
            return parse(Node, answer, "upload completion")  # the legacy channel's new node

        return await call_with_retry(attempt, remote=REMOTE, policy=self._policy)

    async def _upload_status(self, upload_id: str, lost: DracoonError) -> str:
        """The upload's status after its completion's answer was lost or failed: one request,
        as a step of the completion's attempt (its retry policy is the one that applies)."""
        try:
            path = f"/v4/nodes/files/uploads/{upload_id}"
            upload = await self._client.call(UploadStatus, "GET", path, retry=False)
        except DracoonError as exc:
            raise DracoonError(
                f"DRACOON upload {upload_id} completion {lost}; its status is unknown ({exc}): "
                "left to DRACOON, which may be finishing it",
                remote=REMOTE,
                status=exc.status,
                transient=True,
            ) from lost
        return upload.status

    async def cancel(self, upload_id: str) -> None:
        """Cancel an upload channel (its stored parts go); a failure is logged, not raised."""
        try:
            await self._client.request(
                "DELETE", f"/v4/nodes/files/uploads/{upload_id}", retry=False
            )
        except DracoonError as exc:  # DRACOON expires abandoned uploads; say it was left open
            events.emit(
                log, events.REST_CLIENT_ERROR, "cancel of upload %s failed: %s", upload_id, exc
            )

    def _completion(
        self, name: str, file_key: Callable[[], Mapping[str, Any]] | None, resolution: str
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "resolutionStrategy": resolution,
            "fileName": name,
            "keepShareLinks": False,
        }
        if file_key is not None:
            body["fileKey"] = dict(file_key())
        return body

    async def _upload_s3(
        self,
        upload_id: str,
        size: int | None,
        chunks: AsyncIterator[bytes | bytearray | memoryview],
        part_size: int | None = None,
    ) -> list[dict[str, Any]]:
        """The parts, each through its presigned URL; what the completion lists of them."""
        parts: list[dict[str, Any]] = []
        pending = bytearray()
        smallest = smallest_part(size)  # above 52 GB, chunks are gathered (copied) into parts
        # Gathered parts have no size known ahead: the guess is then the part before.
        known = part_size if part_size is not None and part_size >= smallest else None
        fetch = functools.partial(self._part_url, upload_id)
        with _PartUrls(fetch, size, known) as urls:
            async for chunk in chunks:
                if not pending and len(chunk) >= smallest:
                    parts.append(await self._put_part(urls, len(parts) + 1, chunk))
                    continue
                pending += chunk  # smaller pieces are gathered into parts of `smallest`
                if len(pending) >= smallest:
                    parts.append(await self._put_part(urls, len(parts) + 1, pending))
                    pending = bytearray()
            if pending or not parts:
                parts.append(await self._put_part(urls, len(parts) + 1, pending))
        return parts

    async def _put_part(
        self, urls: _PartUrls, number: int, data: bytes | bytearray | memoryview
    ) -> dict[str, Any]:
        url = await urls.get(number, len(data))

        async def attempt() -> str:
            with unreachable(f"S3 part {number} upload failed"):
                async with self._client.http_request(
                    "PUT", url, data=_slices(data), headers={"Content-Length": str(len(data))}
                ) as response:
                    if response.status >= 400:
                        raise dracoon_error(
                            kind_of_status(response.status),
                            f"S3 part {number} upload answered {response.status}",
                            status=response.status,
                            transient=transient_status(response.status),
                        )
                    return response.headers.get("ETag", "").strip('"')

        etag = await call_with_retry(attempt, remote=REMOTE, policy=self._policy)
        return {"partNumber": number, "partEtag": etag}

    async def _part_url(self, upload_id: str, number: int, size: int) -> str:
        urls = await self._client.call(
            PresignedUrlList,
            "POST",
            f"/v4/nodes/files/uploads/{upload_id}/s3_urls",
            json={"size": size, "firstPartNumber": number, "lastPartNumber": number},
        )
        if not urls.urls:
            raise DracoonError(f"DRACOON gave no URL for part {number}", remote=REMOTE)
        return urls.urls[0].url

    async def _wait_until_done(self, upload_id: str) -> Node:
        delay, deadline = 0.05, time.monotonic() + self._poll_timeout
        path = f"/v4/nodes/files/uploads/{upload_id}"
        while True:
            upload = await self._client.call(UploadStatus, "GET", path)
            if upload.status == "done" and upload.node is not None:
                return upload.node
            if upload.status == "error":
                # The channel is closed either way. What DRACOON refused (a name taken under
                # "fail", a missing file key: 4xx) stays refused; what went wrong on its side
                # (S3 unreachable, -90027 504) is worth a new upload, so it is transient.
                details = upload.error_details or UploadErrorDetails()
                raise dracoon_error(
                    kind_of_status(details.code),
                    f"DRACOON could not finish the upload: {details.message or 'error'}",
                    status=details.code,
                    code=details.error_code,
                    transient=True if details.code is None else transient_status(details.code),
                )
            if time.monotonic() > deadline:
                raise DracoonError(
                    "DRACOON did not finish the upload in time", remote=REMOTE, transient=True
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _upload_legacy(
        self,
        channel: UploadChannel,
        size: int | None,
        chunks: AsyncIterator[bytes | bytearray | memoryview],
    ) -> None:
        """The chunks, through the channel's ``uploadUrl`` with their ``Content-Range``."""
        url, offset = channel.upload_url, 0
        total = "*" if size is None else str(size)
        async for chunk in chunks:
            data = bytes(chunk)
            span = f"bytes {offset}-{offset + len(data) - 1}/{total}"

            async def attempt(data: bytes = data, span: str = span) -> None:
                form = aiohttp.FormData()
                form.add_field(
                    "file",
                    io.BytesIO(data),
                    filename="chunk",
                    content_type="application/octet-stream",
                )
                with unreachable("chunk upload failed"):
                    async with self._client.http_request(
                        "POST", url, data=form, headers={"Content-Range": span}
                    ) as response:
                        if response.status >= 400:
                            raise error_of_answer(
                                response.status,
                                await json_or_text(response),
                                response.headers,
                                "chunk upload",
                            )

            await call_with_retry(attempt, remote=REMOTE, policy=self._policy)
            offset += len(data)


class _PartUrls:
    """Presigned part URLs, each asked for while the part before it uploads.

    The round trip for a URL would otherwise stall the upload stream once per part (measured:
    1-7 ms per 20 MB part on loopback, a tenth of the part's time). The guess for the next
    part is "``part_size``, or else as large as this one, or what is left of ``total``": right
    for a stream of equal chunks after a smaller first one (a transfer's first part is the
    smallest S3 takes, so that the upload starts soonest); a wrong guess costs one more
    request, never a wrong URL (each is signed for a size). With ``total`` known, nothing is
    asked for beyond the last part.
    """

    def __init__(
        self,
        fetch: Callable[[int, int], Awaitable[str]],
        total: int | None,
        part_size: int | None = None,
    ) -> None:
        self._fetch = fetch  # (part number, size) → URL
        self._left = total
        self._part_size = part_size
        self._ahead: tuple[int, int, asyncio.Future[str]] | None = None

    async def get(self, number: int, size: int) -> str:
        """The URL for part ``number`` of ``size`` bytes; the next one is asked for now."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[:2] == (number, size):
            task = ahead[2]
        else:
            _discard(ahead)
            task = asyncio.ensure_future(self._fetch(number, size))
        guess = self._part_size or size
        if self._left is not None:
            self._left -= size
            guess = min(guess, self._left)
        if guess > 0 and number < MAX_PARTS:
            self._ahead = (number + 1, guess, asyncio.ensure_future(self._fetch(number + 1, guess)))
        return await task

    def __enter__(self) -> _PartUrls:
        return self

    def __exit__(self, *exc_info: object) -> None:
        _discard(self._ahead)
        self._ahead = None


def _discard(ahead: tuple[int, int, asyncio.Future[str]] | None) -> None:
    """Drop a URL asked for ahead and not needed; its outcome, error or not, is of no use."""
    if ahead is not None:
        task = ahead[2]
        task.cancel()
        task.add_done_callback(lambda t: t.cancelled() or t.exception())


async def _slices(
    data: bytes | bytearray | memoryview, size: int = 1024 * 1024
) -> AsyncIterator[memoryview]:
    """A part as a stream of views: no copy, and aiohttp does not hold it as one body."""
    view = memoryview(data)
    for start in range(0, len(view), size):
        yield view[start : start + size]
