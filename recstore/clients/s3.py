"""S3: head, ranged reads into the caller's buffer, delete.

Reads are ranged GETs pinned to the ETag seen when the job started (``IfMatch``): a recording
overwritten mid-transfer fails with a permanent error instead of producing a file stitched from
two versions. A range's body is streamed into a caller-owned buffer, so memory is the buffers
the pipeline allocated once, whatever the object's size.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from recstore.clients.aws_errors import aws_errors
from recstore.errors import RemoteError
from recstore.retry import RetryPolicy, call_with_retry

REMOTE = "s3"
#: Bytes asked of the socket per read while filling a buffer.
READ_SIZE = 1024 * 1024


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
    #: User metadata (``x-amz-meta-*``), keys lower-case.
    metadata: Mapping[str, str] = field(default_factory=dict)


class S3Store:
    """The S3 operations recstore needs, over one aiobotocore client the caller owns."""

    def __init__(self, client: Any, policy: RetryPolicy | None = None) -> None:
        self._client = client
        self._policy = policy

    async def head(self, bucket: str, key: str) -> ObjectInfo:
        async def call() -> ObjectInfo:
            with aws_errors(REMOTE, f"head of s3://{bucket}/{key}"):
                answer = await self._client.head_object(Bucket=bucket, Key=key)
            return _object_info(bucket, key, answer)

        return await call_with_retry(call, remote=REMOTE, policy=self._policy)

    async def find(self, bucket: str, key: str) -> ObjectInfo | None:
        """Like :meth:`head`, but None when the object does not exist."""
        try:
            return await self.head(bucket, key)
        except RemoteError as exc:
            if exc.status == 404:
                return None
            raise

    async def read_into(self, source: ObjectInfo, offset: int, buffer: memoryview) -> int:
        """Fill ``buffer`` from ``offset`` (or up to the end of the object); bytes read.

        A connection that breaks mid-body is retried from the start of the range.
        """
        want = min(len(buffer), source.size - offset)
        if want <= 0:
            return 0
        what = f"read of s3://{source.bucket}/{source.key} at {offset}"

        async def call() -> int:
            filled = 0
            with aws_errors(REMOTE, what):
                answer = await self._client.get_object(
                    Bucket=source.bucket,
                    Key=source.key,
                    Range=f"bytes={offset}-{offset + want - 1}",
                    IfMatch=source.etag,
                )
                async with answer["Body"] as body:
                    while filled < want:
                        n = await body.readinto(buffer[filled : min(want, filled + READ_SIZE)])
                        if n == 0:
                            break
                        filled += n
            if filled != want:
                raise RemoteError(
                    f"s3 {what}: {filled} of {want} bytes", remote=REMOTE, transient=True
                )
            return filled

        return await call_with_retry(call, remote=REMOTE, policy=self._policy)

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
            except RemoteError as exc:
                # 412: the condition failed; 409: a concurrent conditional write won; 404: the
                # object to match is gone. Each means "not yours" to the caller.
                if conditions and exc.status in (404, 409, 412):
                    return None
                raise
            return str(answer["ETag"])

        return await call_with_retry(call, remote=REMOTE, policy=self._policy)

    async def delete(self, bucket: str, key: str) -> None:
        async def call() -> None:
            with aws_errors(REMOTE, f"delete of s3://{bucket}/{key}"):
                await self._client.delete_object(Bucket=bucket, Key=key)

        await call_with_retry(call, remote=REMOTE, policy=self._policy)


def _object_info(bucket: str, key: str, answer: Mapping[str, Any]) -> ObjectInfo:
    return ObjectInfo(
        bucket,
        key,
        int(answer["ContentLength"]),
        str(answer["ETag"]),
        storage_class=str(answer.get("StorageClass") or "STANDARD"),
        restore=answer.get("Restore"),
        metadata={str(k).lower(): str(v) for k, v in (answer.get("Metadata") or {}).items()},
    )
