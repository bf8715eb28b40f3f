"""Small asyncio building blocks shared by the domain packages."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


async def sleep_unless(event: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds``, or less if ``event`` is set meanwhile; whether it was set.

    A worker waits between rounds (a backoff, the next tick, a heartbeat) without stopping
    late: ``stop`` ends the wait at once.
    """
    if event.is_set():
        return True
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True


async def ordered_map(
    items: AsyncIterable[T], work: Callable[[T], Awaitable[R]], concurrency: int
) -> AsyncIterator[R]:
    """``work(item)`` for each item, up to ``concurrency`` at once, results in input order.

    Reports must come out in listing order (operators diff them), while the per-entry calls
    (flavors, S3 HEAD) are latency-bound and gain from running side by side. At most
    ``concurrency`` items are read ahead, so memory stays bounded on 800,000 entries. If
    ``work`` raises, the error surfaces in order and the other running calls are cancelled.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    pending: deque[asyncio.Task[R]] = deque()
    try:
        async for item in items:
            pending.append(asyncio.ensure_future(work(item)))
            if len(pending) >= concurrency:
                yield await pending.popleft()
        while pending:
            yield await pending.popleft()
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
