"""The streaming pipeline: ranged reads → (encryption) → the uploader, overlapped.

A producer task reads chunk n+1 (and encrypts it) while the consumer uploads chunk n; a bounded
queue of ``depth`` chunks sits between them. Buffers are allocated once per stream and reused,
so memory is about ``(depth + 1) x chunk_size`` whatever the object's size. The bytes the HTTP
client received are encrypted straight into the chunk that is uploaded: one pass over each byte
between the socket and the uploader, no plaintext copy.

The contract for the consumer: a yielded chunk (a ``memoryview``) is valid until the consumer
asks for the next one; whoever needs it longer must copy it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from recstore.clients.s3 import ObjectInfo

#: AES-GCM through ``update_into`` wants this much room beyond the input (block size - 1).
CIPHER_SLACK = 15


class RangeReader(Protocol):
    async def read_range(
        self, source: ObjectInfo, offset: int, length: int, sink: Callable[[bytes], None]
    ) -> int: ...


class ChunkCipher(Protocol):
    def update_into(self, data: bytes, out: memoryview) -> int: ...


async def stream_chunks(
    reader: RangeReader,
    source: ObjectInfo,
    chunk_size: int,
    cipher: ChunkCipher | None = None,
    depth: int = 2,
    progress: Callable[[int], None] | None = None,
) -> AsyncIterator[memoryview]:
    """Yield the object's bytes (encrypted when ``cipher`` is given) in ``chunk_size`` pieces.

    ``progress`` is called with the byte count of each chunk once it has been handed on.
    A read error ends the stream with that error; nothing is yielded twice.
    """
    if chunk_size <= 0 or depth < 1:
        raise ValueError("chunk_size and depth must be positive")
    slack = CIPHER_SLACK if cipher is not None else 0
    free: asyncio.Queue[bytearray] = asyncio.Queue()
    for _ in range(depth + 1):
        free.put_nowait(bytearray(chunk_size + slack))
    ready: asyncio.Queue[tuple[bytearray, int] | Exception | None] = asyncio.Queue(maxsize=depth)

    async def fill(out: bytearray, offset: int) -> int:
        view, filled = memoryview(out), 0

        def take(piece: bytes) -> None:
            nonlocal filled
            if cipher is None:
                view[filled : filled + len(piece)] = piece
            else:  # the reader hands each byte on once, so the cipher never sees one twice
                cipher.update_into(piece, view[filled:])
            filled += len(piece)

        return await reader.read_range(source, offset, chunk_size, take)

    async def produce() -> None:
        offset = 0
        try:
            while offset < source.size:
                out = await free.get()
                n = await fill(out, offset)
                if n == 0:
                    raise EOFError(f"{source.key}: object ended at {offset} of {source.size}")
                offset += n
                await ready.put((out, n))
            await ready.put(None)
        except Exception as exc:
            await ready.put(exc)

    producer = asyncio.create_task(produce(), name=f"read:{source.key}")
    try:
        while True:
            item = await ready.get()
            if item is None:
                break
            if isinstance(item, Exception):
                raise item
            buffer, n = item
            yield memoryview(buffer)[:n]
            if progress is not None:
                progress(n)
            free.put_nowait(buffer)
    finally:
        producer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await producer
