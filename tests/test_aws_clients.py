"""S3 and SQS clients against moto's server (a real HTTP endpoint), through the dev stack."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from botocore.loaders import JSONFileLoader

from recstore.clients.aws import aws_client
from recstore.clients.aws_errors import NoSuchBucket, aws_errors
from recstore.clients.s3 import MAX_PARTS, MIN_PART_SIZE, S3Store, smallest_part
from recstore.clients.sqs import SqsQueue
from recstore.common.errors import (
    ArchivedObject,
    Conflict,
    NotFound,
    PreconditionFailed,
    RemoteError,
    Throttled,
    Unauthorised,
)
from recstore.common.retry import RetryPolicy
from recstore.devstack.seed import aws_settings_from_state, seed_s3, synthetic_chunks
from tests.conftest import StackProcess

FAST = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.05)


@pytest.fixture
async def s3(devstack: StackProcess) -> AsyncIterator[Any]:
    async with aws_client(aws_settings_from_state(devstack.state), "s3") as client:
        yield client


@pytest.fixture
async def sqs(devstack: StackProcess) -> AsyncIterator[Any]:
    async with aws_client(aws_settings_from_state(devstack.state), "sqs") as client:
        yield client


async def test_ranged_reads_rebuild_the_object(devstack: StackProcess, s3: Any) -> None:
    size = 5 * 1024 * 1024 + 3
    await seed_s3(devstack.state, {"objects": [{"key": "t/ranged.bin", "size": size, "seed": 3}]})
    store = S3Store(s3, FAST)
    info = await store.head("recordings", "t/ranged.bin")
    assert info.size == size
    digest, offset = hashlib.sha256(), 0
    while offset < info.size:
        offset += await store.read_range(info, offset, 1024 * 1024, digest.update)
    expected = hashlib.sha256(b"".join(synthetic_chunks(size, 3))).hexdigest()
    assert digest.hexdigest() == expected


async def test_a_plain_http_endpoint_needs_no_ca_bundle(
    devstack: StackProcess, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No TLS, nothing to verify: a CA bundle that cannot be read (or its ~20 ms load in the
    # first job) is none of a plain-http endpoint's business.
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tmp_path / "missing.pem"))
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    await seed_s3(devstack.state, {"objects": [{"key": "t/plain.txt", "text": "plain"}]})
    async with aws_client(aws_settings_from_state(devstack.state), "s3") as client:
        info = await S3Store(client, FAST).head("recordings", "t/plain.txt")
    assert info.size == len("plain")


def test_parts_grow_only_when_s3s_smallest_would_need_more_than_its_limit() -> None:
    assert smallest_part(None) == MIN_PART_SIZE  # no size, no plan
    assert smallest_part(MAX_PARTS * MIN_PART_SIZE) == MIN_PART_SIZE  # exactly 10,000 parts
    assert smallest_part(MAX_PARTS * MIN_PART_SIZE + 1) == MIN_PART_SIZE + 1
    size = 250 * 10**9  # a 250 GB recording: 25 MB parts, 10,000 of them
    assert smallest_part(size) == 25_000_000
    assert -(-size // smallest_part(size)) <= MAX_PARTS


async def test_a_changed_object_is_refused_not_mixed(devstack: StackProcess, s3: Any) -> None:
    await seed_s3(devstack.state, {"objects": [{"key": "t/changing.bin", "text": "version one"}]})
    store = S3Store(s3, FAST)
    info = await store.head("recordings", "t/changing.bin")
    await seed_s3(devstack.state, {"objects": [{"key": "t/changing.bin", "text": "version two!"}]})
    with pytest.raises(RemoteError) as caught:
        await store.read_range(info, 0, 64, lambda piece: None)
    assert caught.value.status == 412
    assert caught.value.transient is False


async def test_a_server_that_ignores_range_is_refused_not_misplaced() -> None:
    """Some S3-compatible servers answer a ranged GET with the whole object (200, no
    Content-Range). Its first bytes would land where the range's bytes belong; the read is
    refused as permanent instead."""
    from aiohttp import web
    from pydantic import SecretStr

    from recstore.clients.s3 import ObjectInfo
    from recstore.settings import AwsSettings

    data = os.urandom(3000)

    async def whole_object(request: web.Request) -> web.Response:
        return web.Response(body=data, headers={"ETag": '"e"'})

    app = web.Application()
    app.router.add_get("/{bucket}/{key}", whole_object)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    settings = AwsSettings(
        endpoint_url=f"http://127.0.0.1:{port}", access_key_id="x", secret_access_key=SecretStr("y")
    )
    try:
        async with aws_client(settings, "s3") as client:
            store = S3Store(client, FAST)
            received: list[bytes] = []
            with pytest.raises(RemoteError, match="asked for bytes 1000-1999") as caught:
                await store.read_range(
                    ObjectInfo("b", "k", 3000, '"e"'), 1000, 1000, received.append
                )
    finally:
        await runner.cleanup()
    assert caught.value.transient is False
    assert received == []  # nothing of the wrong bytes was handed on


async def test_missing_object_is_a_permanent_error(s3: Any) -> None:
    with pytest.raises(RemoteError) as caught:
        await S3Store(s3, FAST).head("recordings", "t/nothing-here")
    assert caught.value.status == 404
    assert caught.value.transient is False


async def test_each_answer_of_s3_and_sqs_is_raised_as_its_kind(devstack: StackProcess) -> None:
    """The boundary's translation, answer by answer, from moto and the dev stack's S3 proxy
    (which adds the archive tiers and S3's refusals that moto does not model)."""
    proxy = devstack.state["s3_proxy_url"]
    await seed_s3(devstack.state, {"objects": [{"key": "t/kinds.txt", "text": "here"}]})
    await seed_s3(devstack.state, {"objects": [{"key": "t/kinds-archived.txt", "text": "cold"}]})
    await devstack.move_to_archive_tier("recordings", "t/kinds-archived.txt", restore_lookups=5)

    async def kind_of(call: Any) -> tuple[type[RemoteError], str | int | None]:
        with pytest.raises(RemoteError) as caught, aws_errors("s3", "test call"):
            await call
        return type(caught.value), caught.value.code

    settings = aws_settings_from_state(devstack.through_s3_proxy())
    async with (
        aws_client(settings, "s3") as s3,
        aws_client(settings, "sqs") as sqs,
        aiohttp.ClientSession() as admin,
    ):
        bucket = "recordings"
        assert await kind_of(s3.get_object(Bucket=bucket, Key="t/none")) == (NotFound, "NoSuchKey")
        assert await kind_of(s3.head_object(Bucket=bucket, Key="t/none")) == (NotFound, "404")
        assert await kind_of(s3.get_object(Bucket="no-such-bucket", Key="k")) == (
            NoSuchBucket,
            "NoSuchBucket",
        )
        assert await kind_of(
            s3.put_object(Bucket=bucket, Key="t/kinds.txt", Body=b"x", IfNoneMatch="*")
        ) == (PreconditionFailed, "PreconditionFailed")
        assert await kind_of(s3.get_object(Bucket=bucket, Key="t/kinds-archived.txt")) == (
            ArchivedObject,
            "InvalidObjectState",
        )
        restore = {"GlacierJobParameters": {"Tier": "Standard"}}
        await s3.restore_object(Bucket=bucket, Key="t/kinds-archived.txt", RestoreRequest=restore)
        assert await kind_of(
            s3.restore_object(Bucket=bucket, Key="t/kinds-archived.txt", RestoreRequest=restore)
        ) == (Conflict, "RestoreAlreadyInProgress")
        assert await kind_of(sqs.get_queue_url(QueueName="no-such-queue")) == (
            NotFound,
            "AWS.SimpleQueueService.NonExistentQueue",
        )
        try:
            for status, kind, code in (
                (429, Throttled, "SlowDown"),
                (403, Unauthorised, "AccessDenied"),
            ):
                await admin.post(
                    f"{proxy}/_devstack/faults", json={"error_rate": 1, "error_status": status}
                )
                assert await kind_of(s3.get_object(Bucket=bucket, Key="t/kinds.txt")) == (
                    kind,
                    code,
                ), status
        finally:
            await admin.post(f"{proxy}/_devstack/faults", json={})


async def test_unreachable_endpoint_is_transient() -> None:
    from pydantic import SecretStr

    from recstore.settings import AwsSettings

    dead = AwsSettings(
        endpoint_url="http://127.0.0.1:9", access_key_id="x", secret_access_key=SecretStr("y")
    )
    async with aws_client(dead, "s3") as client:
        with pytest.raises(RemoteError) as caught:
            await S3Store(client, FAST).head("recordings", "k")
    assert caught.value.transient is True


async def test_delete_removes_the_object(devstack: StackProcess, s3: Any) -> None:
    await seed_s3(devstack.state, {"objects": [{"key": "t/gone.txt", "text": "bye"}]})
    store = S3Store(s3, FAST)
    await store.delete("recordings", "t/gone.txt")
    with pytest.raises(RemoteError):
        await store.head("recordings", "t/gone.txt")


async def test_queue_send_receive_hide_and_delete(devstack: StackProcess, sqs: Any) -> None:
    created = await sqs.create_queue(QueueName="t-roundtrip")
    queue = SqsQueue(sqs, created["QueueUrl"], FAST)
    await queue.send('{"hello": 1}', {"reason": "x" * 5000})
    [message] = await queue.receive(10, wait_seconds=1, visibility_timeout=30)
    assert message.body == '{"hello": 1}'
    assert message.receive_count == 1
    assert len(message.attributes["reason"]) == 1024
    assert await queue.receive(10, wait_seconds=0) == []  # hidden while in flight
    assert await queue.depth() == (0, 1)
    await queue.change_visibility(message, 0)  # handed back
    [again] = await queue.receive(10, wait_seconds=1)
    assert again.receive_count == 2
    await queue.delete(again)
    assert await queue.depth() == (0, 0)


async def test_s3_errors_through_the_fault_proxy_are_retried(devstack: StackProcess) -> None:
    """The same reads through the dev stack's S3 proxy, failing and dropping on purpose."""
    proxy = devstack.state["s3_proxy_url"]
    await seed_s3(
        devstack.state, {"objects": [{"key": "t/proxied.bin", "size": 3 * 1024 * 1024, "seed": 9}]}
    )
    settings = aws_settings_from_state(devstack.through_s3_proxy())
    async with aiohttp.ClientSession() as admin:
        await admin.post(
            f"{proxy}/_devstack/faults", json={"error_rate": 1, "error_status": 503, "count": 2}
        )
        try:
            async with aws_client(settings, "s3") as client:
                store = S3Store(client, RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.02))
                info = await store.head("recordings", "t/proxied.bin")
                await admin.post(
                    f"{proxy}/_devstack/faults",
                    json={"drop_rate": 1, "count": 1, "methods": ["GET"]},
                )
                received: list[bytes] = []
                assert await store.read_range(info, 0, info.size, received.append) == info.size
                expected = b"".join(synthetic_chunks(info.size, 9))
                assert b"".join(received) == expected
                await admin.post(
                    f"{proxy}/_devstack/faults", json={"error_rate": 1, "error_status": 503}
                )
                with pytest.raises(RemoteError) as caught:
                    await store.head("recordings", "t/proxied.bin")
                assert caught.value.transient
                assert caught.value.status == 503
        finally:
            await admin.post(f"{proxy}/_devstack/faults", json={})


@pytest.mark.skipif(not hasattr(socket, "TCP_USER_TIMEOUT"), reason="a Linux socket option")
async def test_an_upload_the_server_stops_reading_fails_the_attempt(
    devstack: StackProcess,
) -> None:
    """botocore's read timeout does not cover writing a body either; the connection's stall
    limit does. The body is larger than loopback's socket buffers, so its writer blocks."""
    import aiohttp

    proxy = devstack.state["s3_proxy_url"]
    settings = aws_settings_from_state(devstack.through_s3_proxy())
    async with aiohttp.ClientSession() as admin:
        # The proxy reads nothing of a PUT's body for 60 s, then would pass it on in full.
        await admin.post(
            f"{proxy}/_devstack/faults", json={"latency_ms": 60_000, "methods": ["PUT"]}
        )
        try:
            async with aws_client(settings, "s3", read_timeout=1) as client:
                store = S3Store(client, RetryPolicy(attempts=2, base_delay=0.01))
                with pytest.raises(RemoteError) as caught:
                    await store.put_small("recordings", "t/stalled.bin", bytes(48 * 1024 * 1024))
                assert caught.value.transient
        finally:
            await admin.post(f"{proxy}/_devstack/faults", json={})


async def test_uploads_over_http_send_checksums_instead_of_hashing_the_body_to_sign(
    s3: Any,
) -> None:
    """botocore would SHA-256 every body it signs over plain http, on the event loop; the
    part's own checksum still lets the server refuse damaged bytes."""
    sent: list[dict[str, str]] = []

    def capture(request: Any, **_: Any) -> None:
        sent.append(
            {
                k.lower(): v.decode() if isinstance(v, bytes) else v
                for k, v in request.headers.items()
            }
        )

    s3.meta.events.register("before-send.s3.UploadPart", capture)
    part = os.urandom(5 * 1024 * 1024)

    async def parts() -> AsyncIterator[bytes]:
        yield part
        yield b"tail"

    try:
        await S3Store(s3, FAST).upload_stream("recordings", "t/unsigned.bin", parts())
    finally:
        s3.meta.events.unregister("before-send.s3.UploadPart", capture)
    assert [h["x-amz-content-sha256"] for h in sent] == ["UNSIGNED-PAYLOAD"] * 2
    assert (
        sent[0]["x-amz-checksum-sha256"] == base64.b64encode(hashlib.sha256(part).digest()).decode()
    )
    stored = await (await s3.get_object(Bucket="recordings", Key="t/unsigned.bin"))["Body"].read()
    assert stored == part + b"tail"


async def test_a_range_asked_for_ahead_is_read_or_retried(devstack: StackProcess) -> None:
    """A GET sent ahead gives the range's bytes; one that failed is sent again; one for
    another range is dropped, and the range asked for is read."""
    import aiohttp

    proxy = devstack.state["s3_proxy_url"]
    size = 3 * 1024 * 1024
    await seed_s3(devstack.state, {"objects": [{"key": "t/ahead.bin", "size": size, "seed": 4}]})
    expected = b"".join(synthetic_chunks(size, 4))
    settings = aws_settings_from_state(devstack.through_s3_proxy())
    async with aiohttp.ClientSession() as admin, aws_client(settings, "s3") as client:
        store = S3Store(client, RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02))
        info = await store.head("recordings", "t/ahead.bin")
        try:
            received: list[bytes] = []
            ahead = store.request_range(info, 1000, 5000)
            assert await store.read_range(info, 1000, 5000, received.append, ahead) == 5000
            assert b"".join(received) == expected[1000:6000]

            await admin.post(
                f"{proxy}/_devstack/faults",
                json={"error_rate": 1, "error_status": 503, "count": 1, "methods": ["GET"]},
            )
            failing = store.request_range(info, 2 * 1024 * 1024, 2 * 1024 * 1024)
            await asyncio.wait([failing.answer])
            assert failing.answer.exception() is not None  # this GET was answered 503 ...
            received.clear()
            got = await store.read_range(info, 2 * 1024 * 1024, 2**30, received.append, failing)
            assert got == size - 2 * 1024 * 1024  # ... and the read sent it again
            assert b"".join(received) == expected[2 * 1024 * 1024 :]

            other = store.request_range(info, 0, 100)
            received.clear()
            assert await store.read_range(info, 100, 100, received.append, other) == 100
            assert b"".join(received) == expected[100:200]
            assert other.answer.cancelled() or other.answer.result()["Body"].raw_stream.closed
        finally:
            await admin.post(f"{proxy}/_devstack/faults", json={})


async def test_a_delete_pinned_to_an_etag_spares_a_newer_version(s3: Any) -> None:
    store = S3Store(s3)
    key = f"pinned-{os.urandom(4).hex()}.bin"
    await s3.put_object(Bucket="recordings", Key=key, Body=b"first")
    first = await store.head("recordings", key)
    await s3.put_object(Bucket="recordings", Key=key, Body=b"second, newer")
    with pytest.raises(RemoteError) as caught:
        await store.delete("recordings", key, etag=first.etag)
    assert caught.value.status == 412
    second = await store.head("recordings", key)
    assert second.size == len(b"second, newer")
    await store.delete("recordings", key, etag=second.etag)
    with pytest.raises(RemoteError):
        await store.head("recordings", key)
    # gone already (another run of the job, or a retry after a lost answer): done
    await store.delete("recordings", key, etag=second.etag)
    with pytest.raises(RemoteError) as no_bucket:  # but not a bucket that is not there
        await store.delete("no-such-bucket", key, etag=second.etag)
    assert no_bucket.value.code == "NoSuchBucket"


async def test_a_process_reads_botocores_models_once(
    devstack: StackProcess, sqs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """recstore opens a client per use (each queue-depth poll, each job's S3 and SQS): the
    clients after the first of a service read none of botocore's JSON models again (about
    0.05-0.2 CPU-s each), yet each has a session, and credentials, of its own."""
    settings = aws_settings_from_state(devstack.state)
    async with aws_client(settings, "s3"):  # both services' models read once
        pass
    read: list[str] = []
    load_file = JSONFileLoader.load_file

    def counted(loader: JSONFileLoader, file_path: str) -> Any:
        read.append(file_path)
        return load_file(loader, file_path)

    monkeypatch.setattr(JSONFileLoader, "load_file", counted)
    other = settings.model_copy(update={"access_key_id": "someone-else"})
    for service in ("s3", "sqs", "s3"):
        async with aws_client(other, service) as client:  # type: ignore[arg-type]
            credentials = client._request_signer._credentials
            assert credentials.access_key == "someone-else"
    assert read == []
    # and the clients still work
    queue = await sqs.get_queue_url(QueueName="recordings")
    assert queue["QueueUrl"]
