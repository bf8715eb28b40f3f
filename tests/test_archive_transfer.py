"""The byte movers of the archive: S3 multipart streaming and restores (moto), Kaltura downloads.

Streamed uploads with per-part SHA-256, abort on failure (no multipart upload left behind),
restore requests and their progression, presigned URLs, ranged reads, and a flavor download
that resumes after the connection breaks mid-file.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from botocore.exceptions import ClientError

from recstore.clients.aws import aws_client
from recstore.clients.kaltura import KalturaClient
from recstore.clients.s3 import S3Store, composite_checksum, same_checksum
from recstore.common.errors import RemoteError
from recstore.devstack.seed import aws_settings_from_state
from tests.archive_helpers import ARCHIVE_BUCKET, FAST, MiB, moto_restore_transition, video
from tests.conftest import StackProcess, set_faults


@pytest.fixture
async def s3(devstack: StackProcess) -> AsyncIterator[tuple[S3Store, Any]]:
    async with aws_client(aws_settings_from_state(devstack.state), "s3") as client:
        yield S3Store(client, FAST), client


async def parts_of(data: bytes, size: int, fail_at: int | None = None) -> AsyncIterator[bytes]:
    for n, start in enumerate(range(0, len(data), size)):
        if n == fail_at:
            raise ConnectionResetError("the source broke")
        await asyncio.sleep(0)
        yield data[start : start + size]


async def test_streamed_upload_records_sizes_checksums_and_class(
    s3: tuple[S3Store, Any],
) -> None:
    store, _ = s3
    data = video(12 * MiB + 1)
    result = await store.upload_stream(
        ARCHIVE_BUCKET,
        "t/stream",
        parts_of(data, 5 * MiB),
        storage_class="DEEP_ARCHIVE",
        metadata={"kaltura-entry-id": "0_x"},
    )
    assert (result.size, result.parts) == (len(data), 3)
    expected = composite_checksum(
        [hashlib.sha256(data[i : i + 5 * MiB]).digest() for i in range(0, len(data), 5 * MiB)]
    )
    assert result.checksum_sha256 == expected
    info = await store.head(ARCHIVE_BUCKET, "t/stream")
    assert info.size == len(data)
    assert info.storage_class == "DEEP_ARCHIVE"
    assert info.archived
    assert not info.readable
    # S3 offers no Expedited retrieval from Deep Archive: the fastest it offers is asked for
    assert [info.retrieval_tier(t) for t in ("Expedited", "Standard", "Bulk")] == [
        "Standard",
        "Standard",
        "Bulk",
    ]
    assert info.metadata["kaltura-entry-id"] == "0_x"
    assert same_checksum(info.checksum_sha256, expected)


async def test_a_failing_source_aborts_the_upload(s3: tuple[S3Store, Any]) -> None:
    store, client = s3
    with pytest.raises(ConnectionResetError):
        await store.upload_stream(
            ARCHIVE_BUCKET, "t/broken", parts_of(video(11 * MiB), 5 * MiB, fail_at=2)
        )
    assert await store.find(ARCHIVE_BUCKET, "t/broken") is None
    uploads = await client.list_multipart_uploads(Bucket=ARCHIVE_BUCKET, Prefix="t/broken")
    assert uploads.get("Uploads", []) == []


async def test_an_upload_that_cannot_be_aborted_is_logged_and_its_failure_raised(
    devstack: StackProcess, caplog: pytest.LogCaptureFixture
) -> None:
    """Its parts stay stored (and billed) until removed, so the operator needs its id; the
    error to raise is still the upload's own."""
    proxy = devstack.state["s3_proxy_url"]
    refuse_abort = {"error_rate": 1, "error_status": 403, "methods": ["DELETE"]}
    async with aws_client(aws_settings_from_state(devstack.through_s3_proxy()), "s3") as client:
        await set_faults(proxy, refuse_abort)
        try:
            with pytest.raises(ConnectionResetError):
                await S3Store(client, FAST).upload_stream(
                    ARCHIVE_BUCKET, "t/unabortable", parts_of(video(11 * MiB), 5 * MiB, fail_at=1)
                )
        finally:
            await set_faults(proxy, {})
        listing = await client.list_multipart_uploads(Bucket=ARCHIVE_BUCKET, Prefix="t/unab")
        (left,) = listing["Uploads"]
        await client.abort_multipart_upload(
            Bucket=ARCHIVE_BUCKET, Key="t/unabortable", UploadId=left["UploadId"]
        )
    (line,) = [r.getMessage() for r in caplog.records if "left open" in r.getMessage()]
    assert f"multipart upload {left['UploadId']} of s3://{ARCHIVE_BUCKET}/t/unabortable" in line
    # the abort's own failure, as S3 (the proxy's fault) answered it
    assert f"multipart abort of s3://{ARCHIVE_BUCKET}/t/unabortable failed: AccessDenied" in line


async def test_empty_and_small_objects(s3: tuple[S3Store, Any]) -> None:
    store, _ = s3
    empty = await store.upload_stream(ARCHIVE_BUCKET, "t/empty", parts_of(b"", MiB))
    assert (empty.size, empty.parts) == (0, 1)
    assert (await store.head(ARCHIVE_BUCKET, "t/empty")).size == 0
    small = await store.upload_stream(ARCHIVE_BUCKET, "t/small", parts_of(b"abc", MiB))
    info = await store.head(ARCHIVE_BUCKET, "t/small")
    assert info.size == 3
    assert b"".join([p async for p in store.read_chunks(info, 2)]) == b"abc"
    assert small.parts == 1


async def test_an_intelligent_tiering_object_comes_back_from_its_archive_tier(
    devstack: StackProcess,
) -> None:
    """S3 moves an ``INTELLIGENT_TIERING`` object nobody read into an archive tier: its class
    stays, a GET is refused, and a restore brings it back to the Frequent Access tier for good.
    S3 refuses such a restore when it names a number of days, so none is sent."""
    state = devstack.through_s3_proxy()
    data = video(2 * MiB + 1)
    key = "t/tiered %41 ü.bin"  # the proxy knows it by its path, decoded once
    async with aws_client(aws_settings_from_state(state), "s3") as client:
        store = S3Store(client, FAST)
        await store.upload_stream(
            ARCHIVE_BUCKET, key, parts_of(data, 5 * MiB), storage_class="INTELLIGENT_TIERING"
        )
        await devstack.move_to_archive_tier(
            ARCHIVE_BUCKET, key, "DEEP_ARCHIVE_ACCESS", restore_lookups=2
        )
        info = await store.head(ARCHIVE_BUCKET, key)
        assert info.tier == "INTELLIGENT_TIERING (DEEP_ARCHIVE_ACCESS)"
        assert (info.archived, info.readable, info.restore_state) == (True, False, None)
        with pytest.raises(RemoteError) as refused:
            await store.read_range(info, 0, MiB, lambda piece: None)
        assert refused.value.code == "InvalidObjectState"
        with pytest.raises(ClientError) as not_offered:  # S3 has no Expedited from this tier
            await client.restore_object(
                Bucket=ARCHIVE_BUCKET,
                Key=key,
                RestoreRequest={"GlacierJobParameters": {"Tier": "Expedited"}},
            )
        assert not_offered.value.response["Error"]["Code"] == "InvalidArgument"
        assert info.retrieval_tier("Expedited") == "Standard"

        # the store sends neither Days nor a tier S3 would refuse
        assert await store.restore(info, 30, "Expedited") is False
        assert await store.restore(info, 30, "Bulk") is False  # asked before: still running
        ongoing = [await store.head(ARCHIVE_BUCKET, key) for _ in range(2)]
        assert [(i.restore_state, i.readable) for i in ongoing] == [("ongoing", False)] * 2
        info = await store.head(ARCHIVE_BUCKET, key)
        assert (info.storage_class, info.archived, info.readable) == (
            "INTELLIGENT_TIERING",
            False,
            True,
        )
        assert b"".join([piece async for piece in store.read_chunks(info, MiB)]) == data


async def test_restore_progression_and_presigned_reads(
    s3: tuple[S3Store, Any], devstack: StackProcess
) -> None:
    store, _ = s3
    data = video(3 * MiB + 5)
    await store.upload_stream(
        ARCHIVE_BUCKET, "t/glacier", parts_of(data, 5 * MiB), storage_class="GLACIER"
    )
    await moto_restore_transition(devstack.state["s3_endpoint"], 2)
    try:
        info = await store.head(ARCHIVE_BUCKET, "t/glacier")
        assert info.restore_state is None
        assert info.retrieval_tier("Expedited") == "Expedited"  # offered for Glacier
        assert await store.restore(info, 1, "Bulk") is False
        states = []
        for _ in range(8):
            info = await store.head(ARCHIVE_BUCKET, "t/glacier")
            states.append(info.restore_state)
            if info.readable:
                break
        assert states[0] == "ongoing"
        assert states[-1] == "done"
    finally:
        await moto_restore_transition(devstack.state["s3_endpoint"], None)
    assert await store.restore(info, 1, "Bulk") is True
    pieces = [p async for p in store.read_chunks(info, MiB)]
    assert [len(p) for p in pieces] == [MiB, MiB, MiB, 5]
    assert b"".join(pieces) == data
    url = await store.presigned_get(ARCHIVE_BUCKET, "t/glacier", 60)
    async with aiohttp.ClientSession() as http, http.get(url) as answer:
        assert answer.status == 200
        assert await answer.read() == data


async def test_a_download_resumes_where_the_connection_broke() -> None:
    """The server cuts the body twice; each retry asks for the rest with a Range header."""
    data = video(3 * MiB + 11)
    ranges: list[str | None] = []

    async def serve(request: web.Request) -> web.StreamResponse:
        ranges.append(request.headers.get("Range"))
        start = int(request.headers.get("Range", "bytes=0-")[6:].rstrip("-"))
        response = web.StreamResponse(status=206 if start else 200)
        response.content_length = len(data) - start
        await response.prepare(request)
        end = len(data) if len(ranges) > 2 else start + MiB + 17  # cut the first two short
        await response.write(data[start:end])
        if end < len(data):
            request.transport.close()  # type: ignore[union-attr]
            return response
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/flavor", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/flavor"
    try:
        from pydantic import SecretStr

        from recstore.settings import KalturaSettings

        settings = KalturaSettings(
            service_url="http://127.0.0.1:9", partner_id=1, admin_secret=SecretStr("x" * 8)
        )
        async with aiohttp.ClientSession() as http:
            client = KalturaClient(settings, http, FAST)
            pieces = [p async for p in client.download(url, 2 * MiB)]
    finally:
        await runner.cleanup()
    assert [len(p) for p in pieces] == [2 * MiB, MiB + 11]
    assert base64.b64encode(hashlib.sha256(b"".join(pieces)).digest()) == base64.b64encode(
        hashlib.sha256(data).digest()
    )
    assert ranges[0] is None
    assert ranges[1] == f"bytes={MiB + 17}-"
    assert len(ranges) == 3


class FakeS3:
    """The multipart calls of an S3 server, as ``rclone serve s3`` answers them (``checksums``
    False: no checksum stated, ETags the MD5s of what arrived) or as S3 does (each part's and
    the completion's SHA-256 stated, computed from what arrived). ``damage`` flips a byte of
    that many part uploads on their way in."""

    def __init__(self, checksums: bool, damage: int = 0, answer: dict[str, str] | None = None):
        self.checksums = checksums
        self.damage = damage
        self.answer = answer or {}
        self.parts: dict[int, bytes] = {}
        self.stored = b""
        self.calls: list[str] = []

    async def create_multipart_upload(self, **_: Any) -> dict[str, Any]:
        self.calls.append("create")
        return {"UploadId": "u1"}

    async def upload_part(self, *, PartNumber: int, Body: bytes, **_: Any) -> dict[str, Any]:
        self.calls.append(f"part {PartNumber}")
        if self.damage and Body:
            self.damage -= 1
            Body = bytes([Body[0] ^ 0xFF]) + Body[1:]
        self.parts[PartNumber] = Body
        md5 = hashlib.md5(Body, usedforsecurity=False).hexdigest()
        answer: dict[str, Any] = {"ETag": f'"{md5}"', **self.answer}
        if self.checksums:
            answer["ChecksumSHA256"] = base64.b64encode(hashlib.sha256(Body).digest()).decode()
        return answer

    async def complete_multipart_upload(self, **_: Any) -> dict[str, Any]:
        self.calls.append("complete")
        bodies = [self.parts[n] for n in sorted(self.parts)]
        self.stored = b"".join(bodies)
        md5s = b"".join(hashlib.md5(b, usedforsecurity=False).digest() for b in bodies)
        whole = hashlib.md5(md5s, usedforsecurity=False).hexdigest()
        answer: dict[str, Any] = {"ETag": f'"{whole}-{len(bodies)}"'}
        if self.checksums:
            answer["ChecksumSHA256"] = composite_checksum(
                [hashlib.sha256(b).digest() for b in bodies]
            )
        return answer

    async def abort_multipart_upload(self, **_: Any) -> None:
        self.calls.append("abort")


@pytest.mark.parametrize("checksums", [True, False], ids=["s3", "rclone"])
async def test_an_upload_the_servers_answers_vouch_for_is_confirmed(checksums: bool) -> None:
    data = video(11 * MiB + 7)
    server = FakeS3(checksums)
    result = await S3Store(server, FAST).upload_stream("b", "k", parts_of(data, 5 * MiB))
    assert result.confirmed
    assert (result.size, result.parts, server.stored) == (len(data), 3, data)


@pytest.mark.parametrize("checksums", [True, False], ids=["s3", "rclone"])
async def test_a_part_damaged_on_its_way_is_sent_again(checksums: bool) -> None:
    data = video(11 * MiB + 7)
    server = FakeS3(checksums, damage=1)
    result = await S3Store(server, FAST).upload_stream("b", "k", parts_of(data, 5 * MiB))
    assert server.calls == ["create", "part 1", "part 1", "part 2", "part 3", "complete"]
    assert result.confirmed
    assert server.stored == data


async def test_a_part_damaged_every_time_fails_the_upload_and_aborts_it() -> None:
    server = FakeS3(checksums=False, damage=99)
    with pytest.raises(RemoteError) as caught:
        await S3Store(server, FAST).upload_stream("b", "k", parts_of(video(6 * MiB), 5 * MiB))
    assert caught.value.code == "BadDigest"
    assert "other bytes than were sent" in str(caught.value)
    assert server.calls[-1] == "abort"


@pytest.mark.parametrize(
    "answer", [{"ServerSideEncryption": "aws:kms"}, {"SSECustomerAlgorithm": "AES256"}]
)
async def test_etags_of_encrypted_parts_vouch_for_nothing(answer: dict[str, str]) -> None:
    """Under SSE-KMS or SSE-C an ETag is no MD5 of the data: neither an error nor a proof, so
    the copy is left to the HEAD."""
    server = FakeS3(checksums=False, answer=answer)
    result = await S3Store(server, FAST).upload_stream("b", "k", parts_of(video(MiB), MiB))
    assert not result.confirmed


async def test_a_server_that_states_checksums_costs_no_md5s(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only the parts hashed before the first answer told that the server states checksums
    are MD5-hashed (read-ahead: the first two)."""
    import recstore.clients.s3 as s3_module

    hashed: list[int] = []
    real = s3_module.part_md5

    def counting(data: Any) -> bytes:
        hashed.append(len(data))
        return real(data)

    monkeypatch.setattr(s3_module, "part_md5", counting)
    server = FakeS3(checksums=True)
    data = video(30 * MiB)
    result = await S3Store(server, FAST).upload_stream("b", "k", parts_of(data, 5 * MiB))
    assert result.confirmed
    assert len(hashed) <= 2


async def test_moto_confirms_an_upload_only_by_its_etag(s3: tuple[S3Store, Any]) -> None:
    """moto states each part's SHA-256 (echoing the one sent) but none at completion. Its
    multipart ETag is computed from the bytes stored, so it vouches for them where the parts'
    MD5s are known: the two hashed before the first answer told that the server states
    checksums. A longer upload is left to the HEAD."""
    store, _ = s3
    short = await store.upload_stream(ARCHIVE_BUCKET, "t/moto2", parts_of(video(6 * MiB), 5 * MiB))
    assert short.confirmed
    long = await store.upload_stream(ARCHIVE_BUCKET, "t/moto4", parts_of(video(16 * MiB), 5 * MiB))
    assert not long.confirmed
