"""The streaming pipeline over moto: bytes, chunk boundaries, encryption, overlap, errors."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from recstore.clients.aws import aws_client
from recstore.clients.s3 import ObjectInfo, RangeCursor, RangeRequest, S3Store
from recstore.common.errors import PreconditionFailed, RemoteError
from recstore.common.retry import RetryPolicy
from recstore.crypto import FileEncryptor, PlainFileKey
from recstore.devstack.seed import aws_settings_from_state, seed_s3, synthetic_chunks
from recstore.transfer.pipeline import CIPHER_SLACK, EncryptedSource, RangeReader, stream_chunks
from tests.conftest import StackProcess

FAST = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02)
MiB = 1024 * 1024


@pytest.fixture
async def store(devstack: StackProcess) -> AsyncIterator[S3Store]:
    async with aws_client(aws_settings_from_state(devstack.state), "s3") as client:
        yield S3Store(client, FAST)


def encrypted_source(reader: RangeReader, key: bytes, iv: bytes) -> EncryptedSource:
    return EncryptedSource(reader, FileEncryptor(PlainFileKey(key, iv, None)))


async def object_of(
    devstack: StackProcess, store: S3Store, key: str, size: int
) -> tuple[ObjectInfo, bytes]:
    await seed_s3(devstack.state, {"objects": [{"key": key, "size": size, "seed": size}]})
    return await store.head("recordings", key), b"".join(synthetic_chunks(size, size))


@pytest.mark.parametrize("size", [0, 1, MiB, MiB + 1, 3 * MiB + MiB // 2])
async def test_chunks_rebuild_the_object(devstack: StackProcess, store: S3Store, size: int) -> None:
    info, expected = await object_of(devstack, store, f"p/plain-{size}", size)
    pieces = [bytes(chunk) async for chunk in stream_chunks(store, info, MiB)]
    assert b"".join(pieces) == expected
    assert all(len(p) == MiB for p in pieces[:-1])


async def test_encrypted_stream_equals_one_shot_aes_gcm(
    devstack: StackProcess, store: S3Store
) -> None:
    size = 2 * MiB + 17
    info, plain = await object_of(devstack, store, "p/enc", size)
    key, iv = bytes(range(32)), bytes(range(12))
    encrypted = encrypted_source(store, key, iv)
    ciphertext = b"".join([bytes(c) async for c in stream_chunks(encrypted, info, MiB)])
    expected = AESGCM(key).encrypt(iv, plain, None)
    assert ciphertext == expected[:-16]
    assert encrypted.file_key.tag == expected[-16:]
    assert (encrypted.file_key.key, encrypted.file_key.iv) == (key, iv)


async def test_the_file_key_is_offered_once_the_object_is_read_to_its_end(
    devstack: StackProcess, store: S3Store
) -> None:
    info, _ = await object_of(devstack, store, "p/key", 2 * MiB)
    encrypted = encrypted_source(store, bytes(32), bytes(12))
    with pytest.raises(RuntimeError, match="read to its end"):
        encrypted.file_key  # noqa: B018 (nothing read yet)
    async with contextlib.aclosing(stream_chunks(encrypted, info, MiB, depth=1)) as chunks:
        await anext(chunks)
        with pytest.raises(RuntimeError, match="read to its end"):
            encrypted.file_key  # noqa: B018 (the tag does not exist yet)
        async for _chunk in chunks:
            pass
    assert encrypted.file_key.tag is not None


async def test_a_body_cut_off_mid_chunk_is_resumed_without_a_byte_twice(
    devstack: StackProcess,
) -> None:
    """Reads go through the S3 proxy, which breaks off two answers 300 kB into their bodies.

    Received bytes are encrypted as they arrive, and a cipher cannot take a byte back: only a
    read that resumes at the first byte not yet encrypted gives the one-shot ciphertext.
    """
    proxy = devstack.state["s3_proxy_url"]
    settings = aws_settings_from_state(devstack.through_s3_proxy())
    size = 2 * MiB + 17
    async with aws_client(settings, "s3") as client:
        store = S3Store(client, RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.02))
        info, plain = await object_of(devstack, store, "p/cut", size)
        key, iv = bytes(range(32)), bytes(range(12))
        encrypted = encrypted_source(store, key, iv)
        async with aiohttp.ClientSession() as admin:
            cut = {"cut_after": 300_000, "count": 2, "methods": ["GET"]}
            await admin.post(f"{proxy}/_devstack/faults", json=cut)
            try:
                chunks = [bytes(c) async for c in stream_chunks(encrypted, info, MiB)]
                async with admin.get(f"{proxy}/_devstack/faults") as answer:
                    injected = (await answer.json())["injected"]
            finally:
                await admin.post(f"{proxy}/_devstack/faults", json={})
    assert injected == 2
    expected = AESGCM(key).encrypt(iv, plain, None)
    assert b"".join(chunks) == expected[:-16]
    assert encrypted.file_key.tag == expected[-16:]
    assert [len(c) for c in chunks] == [MiB, MiB, 17]


async def test_a_small_first_chunk_then_full_chunks(devstack: StackProcess, store: S3Store) -> None:
    info, data = await object_of(devstack, store, "p/first", 3 * MiB + 5)
    key, iv = bytes(range(32)), bytes(12)
    encrypted = encrypted_source(store, key, iv)
    chunks = [bytes(c) async for c in stream_chunks(encrypted, info, MiB, first_chunk=100_000)]
    tag = encrypted.file_key.tag
    assert tag is not None
    assert [len(c) for c in chunks] == [100_000, MiB, MiB, MiB + 5 - 100_000]
    assert b"".join(chunks) + tag == AESGCM(key).encrypt(iv, data, None)


class Asking:
    """The store, logging when each range's GET was sent and when its reading began and ended."""

    def __init__(self, store: S3Store) -> None:
        self.store = store
        self.events: list[tuple[str, int]] = []
        self.asked: list[RangeRequest] = []
        self.served_ahead: list[bool] = []

    def ranges(self, source: ObjectInfo) -> RangeCursor:
        return RangeCursor(self, source)  # the store's cursor, reading through this log

    def request_range(self, source: ObjectInfo, offset: int, length: int) -> RangeRequest:
        self.events.append(("asked", offset))
        self.asked.append(self.store.request_range(source, offset, length))
        return self.asked[-1]

    async def read_range(
        self,
        source: ObjectInfo,
        offset: int,
        length: int,
        sink: Callable[[bytes], None],
        ahead: RangeRequest | None = None,
    ) -> int:
        self.events.append(("reading", offset))
        self.served_ahead.append(ahead is not None and ahead.offset == offset)
        n = await self.store.read_range(source, offset, length, sink, ahead)
        self.events.append(("read", offset))
        return n


async def test_reading_overlaps_the_consumer(devstack: StackProcess, store: S3Store) -> None:
    info, _ = await object_of(devstack, store, "p/overlap", 4 * MiB)
    reader = Asking(store)
    consumed = 0
    async for _chunk in stream_chunks(reader, info, MiB, depth=2):
        consumed += 1
        await asyncio.sleep(0.2)  # a slow upload
        if consumed == 1:
            # While the first chunk was being "uploaded", the next ones were read ahead,
            # bounded by the queue depth (2 queued + 1 in the reader's hands).
            assert 2 <= sum(event == "reading" for event, _ in reader.events) <= 4


async def test_the_next_ranges_get_is_sent_while_a_range_is_read(
    devstack: StackProcess, store: S3Store
) -> None:
    # S3 takes tens of milliseconds to a range's first byte: sent only once the range before
    # it is read, that wait would stall the stream once per chunk.
    info, expected = await object_of(devstack, store, "p/ahead", 4 * MiB + 10)
    reader = Asking(store)
    encrypted = encrypted_source(reader, bytes(32), bytes(12))
    got = [bytes(c) async for c in stream_chunks(encrypted, info, MiB, first_chunk=MiB // 2)]
    tag = encrypted.file_key.tag
    assert tag is not None
    starts = [0, MiB // 2, MiB // 2 + MiB, MiB // 2 + 2 * MiB, MiB // 2 + 3 * MiB]
    for before, start in itertools.pairwise(starts):
        assert reader.events.index(("asked", start)) < reader.events.index(("read", before))
    assert reader.served_ahead == [False, True, True, True, True]  # one GET per range
    assert [e for e in reader.events if e[0] == "asked"] == [("asked", s) for s in starts[1:]]
    assert b"".join(got) + tag == AESGCM(bytes(32)).encrypt(bytes(12), expected, None)


async def test_a_range_asked_for_and_not_read_is_let_go(
    devstack: StackProcess, store: S3Store
) -> None:
    info, _ = await object_of(devstack, store, "p/abandoned", 4 * MiB)
    stuck = asyncio.Event()

    class Stalling(Asking):
        async def read_range(self, *args: Any, **kwargs: Any) -> int:
            n = await super().read_range(*args, **kwargs)
            if len(self.served_ahead) == 2:
                await stuck.wait()  # chunk 2 is read, chunk 3's GET is answered: stop here
            return n

    reader = Stalling(store)
    async with contextlib.aclosing(stream_chunks(reader, info, MiB)) as chunks:
        async for _chunk in chunks:
            async with asyncio.timeout(30):
                while len(reader.asked) < 2:
                    await asyncio.sleep(0.01)
                await reader.asked[1].answer  # chunk 3's answer came, and nobody will read it
            break  # the consumer gives up (a failed upload)
    assert [e for e in reader.events if e[0] == "asked"] == [("asked", MiB), ("asked", 2 * MiB)]
    assert reader.asked[1].answer.result()["Body"].raw_stream.closed  # its connection let go
    assert await store.read_range(info, 0, 10, lambda piece: None) == 10


async def test_memory_is_bounded_by_depth_not_size(devstack: StackProcess, store: S3Store) -> None:
    info, _ = await object_of(devstack, store, "p/buffers", 6 * MiB)
    seen: set[int] = set()
    async for chunk in stream_chunks(store, info, MiB, depth=2):
        seen.add(id(chunk.obj))
    assert len(seen) <= 3  # depth + 1 buffers, reused


async def test_a_small_object_gets_buffers_of_its_size(
    devstack: StackProcess, store: S3Store
) -> None:
    info, _ = await object_of(devstack, store, "p/small", 1000)
    encrypted = encrypted_source(store, bytes(32), bytes(12))
    sizes = [len(chunk.obj) async for chunk in stream_chunks(encrypted, info, 20 * MiB)]
    assert sizes
    assert max(sizes) <= 1000 + CIPHER_SLACK  # not three 20 MiB buffers


async def test_a_read_error_ends_the_stream_with_that_error(
    devstack: StackProcess, store: S3Store
) -> None:
    """The object is deleted while its first chunk is handed on. The reader may have read up
    to depth + 1 chunks by then (one per buffer), so the object has more than that: the read
    of a later chunk must fail, and that failure must reach the consumer."""
    info, _ = await object_of(devstack, store, "p/vanishing", 6 * MiB)
    received = 0

    async def consume() -> None:
        nonlocal received
        async for _chunk in stream_chunks(store, info, MiB, depth=2):
            received += 1
            if received == 1:
                await store.delete("recordings", "p/vanishing")

    with pytest.raises(RemoteError):
        await consume()
    assert received <= 3


async def test_progress_counts_every_byte(devstack: StackProcess, store: S3Store) -> None:
    info, _ = await object_of(devstack, store, "p/progress", MiB + 5)
    counted: list[int] = []
    async for _chunk in stream_chunks(store, info, MiB, progress=counted.append):
        pass
    assert sum(counted) == MiB + 5


def test_bad_arguments_are_refused() -> None:
    info = ObjectInfo("b", "k", 1, '"e"')
    reader: Any = None
    with pytest.raises(ValueError, match="positive"):
        asyncio.run(anext(stream_chunks(reader, info, 0)))


@pytest.mark.parametrize("size", [0, 1, MiB, MiB + 1, 3 * MiB + 5])
async def test_an_object_opened_by_its_first_range_reads_as_its_head_describes_it(
    devstack: StackProcess, store: S3Store, size: int
) -> None:
    """The first range's answer describes the object as its HEAD does (an empty one, which has
    no range to send, by its HEAD), and the stream through it rebuilds the object."""
    head, expected = await object_of(devstack, store, f"p/opened-{size}", size)
    opened = await store.open("recordings", f"p/opened-{size}", MiB)
    assert opened is not None
    assert (opened.info.size, opened.info.etag, opened.info.readable) == (
        head.size,
        head.etag,
        True,
    )
    pieces = [bytes(chunk) async for chunk in stream_chunks(opened, opened.info, MiB)]
    opened.close()
    assert b"".join(pieces) == expected
    assert await store.open("recordings", f"p/opened-{size}-never-written", MiB) is None


async def test_an_object_replaced_after_its_first_range_fails_the_read(
    devstack: StackProcess, store: S3Store
) -> None:
    """The first range's ETag pins the ranges after it: a recording written anew under the
    key once its first range was read is never stitched onto it."""
    await object_of(devstack, store, "p/rewritten", 3 * MiB)
    opened = await store.open("recordings", "p/rewritten", MiB)
    assert opened is not None
    await seed_s3(devstack.state, {"objects": [{"key": "p/rewritten", "size": 3 * MiB, "seed": 7}]})
    with pytest.raises(PreconditionFailed):
        async for _chunk in stream_chunks(opened, opened.info, MiB):
            pass
    opened.close()
