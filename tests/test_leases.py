"""Leases on moto's S3 (real conditional writes) and the periodic worker built on them."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest

from recstore.clients.aws import aws_client
from recstore.clients.s3 import S3Store
from recstore.common.errors import RemoteError
from recstore.common.retry import RetryPolicy
from recstore.devstack.seed import aws_settings_from_state
from recstore.workers.leases import EntryLocks, Lease
from recstore.workers.periodic import PeriodicWorker, seconds_until_due
from tests.conftest import StackProcess, until

_keys = itertools.count()


@pytest.fixture
async def store(devstack: StackProcess) -> AsyncIterator[S3Store]:
    async with aws_client(aws_settings_from_state(devstack.state), "s3") as client:
        yield S3Store(client, RetryPolicy(attempts=2, base_delay=0.01))


@pytest.fixture
def key() -> str:
    return f"leases/test-{next(_keys)}.json"


def lease(store: S3Store, key: str, ttl: float = 5, holder: str | None = None) -> Lease:
    return Lease(store, "recordings", key, "test_job", ttl, holder=holder)


async def test_only_one_holder_at_a_time(store: S3Store, key: str) -> None:
    a, b = lease(store, key, holder="a"), lease(store, key, holder="b")
    assert await a.acquire()
    assert not await b.acquire()
    assert await a.renew()
    assert not await b.acquire()
    data, _ = await store.get_small("recordings", key) or (b"", "")
    assert json.loads(data)["holder"] == "a"


async def test_concurrent_acquirers_get_exactly_one_lease(store: S3Store, key: str) -> None:
    contenders = [lease(store, key, holder=f"h{i}") for i in range(8)]
    results = await asyncio.gather(*(c.acquire() for c in contenders))
    assert sum(results) == 1


async def test_an_expired_lease_is_taken_over(store: S3Store, key: str) -> None:
    a, b = lease(store, key, ttl=0.5, holder="a"), lease(store, key, ttl=0.5, holder="b")
    assert await a.acquire()
    a.last_run_at = 1234.5
    assert await a.renew()
    await asyncio.sleep(0.7)  # a died: it renews no more
    assert await b.acquire()
    assert b.last_run_at == 1234.5  # the schedule survives the takeover
    assert not await a.renew()  # a learns it lost the lease
    assert not a.held


async def test_release_hands_over_at_once(store: S3Store, key: str) -> None:
    a, b = lease(store, key, ttl=60, holder="a"), lease(store, key, ttl=60, holder="b")
    assert await a.acquire()
    await a.release()
    assert await b.acquire()


async def test_a_released_lease_is_logged_as_released_a_lost_one_as_lost(
    store: S3Store, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="recstore.workers.leases")
    a, b = lease(store, key, ttl=0.5, holder="a"), lease(store, key, ttl=0.5, holder="b")
    assert await a.acquire()
    await a.release()  # a clean stop: nothing failed
    assert "lease for test_job released" in caplog.text
    assert "lost" not in caplog.text
    assert await b.acquire()
    await asyncio.sleep(0.7)  # b stalls past its TTL
    assert await a.acquire()
    assert not await b.renew()
    assert "lease for test_job lost" in caplog.text


async def test_entry_locks_keep_one_worker_per_entry_across_replicas(store: S3Store) -> None:
    prefix = f"locks-{next(_keys)}/"
    one, two = (EntryLocks(store, "recordings", prefix, ttl=30) for _ in range(2))
    key = f"{prefix}entries/0_abc.json"
    async with one.hold("0_abc", "s3copy") as other:
        assert other is None
        assert await store.get_small("recordings", key) is not None
        async with two.hold("0_abc", "replace-video") as busy:
            assert busy == "s3copy"  # the other replica's action, to decide what to do
        async with one.hold("0_abc", "s3copy") as busy:  # same process: no round trip needed
            assert busy == "s3copy"
        async with two.hold("0_xyz", "s3copy") as other:  # other entries are free
            assert other is None
    assert await store.get_small("recordings", key) is None  # removed, not left to linger
    async with two.hold("0_abc", "replace-video") as other:
        assert other is None


async def test_an_entry_lock_of_a_dead_worker_expires(store: S3Store) -> None:
    prefix = f"locks-{next(_keys)}/"
    dead = Lease(store, "recordings", f"{prefix}entries/0_abc.json", "restore", 0.5, quiet=True)
    assert await dead.acquire()  # and then never renews, nor removes
    locks = EntryLocks(store, "recordings", prefix, ttl=30)
    async with locks.hold("0_abc", "restore") as busy:
        assert busy == "restore"
    await asyncio.sleep(0.7)
    async with locks.hold("0_abc", "restore") as other:
        assert other is None


async def test_two_workers_share_one_schedule(store: S3Store, key: str) -> None:
    running, overlaps, runs = 0, 0, 0

    async def job() -> None:
        nonlocal running, overlaps, runs
        running += 1
        overlaps += running > 1
        runs += 1
        await asyncio.sleep(0.05)
        running -= 1

    workers = [
        PeriodicWorker("sharer", 0.5, job, lease(store, key, ttl=1.5, holder=f"w{i}"))
        for i in range(2)
    ]
    stop = asyncio.Event()
    started = time.monotonic()
    tasks = [asyncio.create_task(w.run(stop)) for w in workers]

    async def four_runs() -> bool:
        return runs >= 4

    await until(four_runs)
    stop.set()
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - started
    assert overlaps == 0
    # once per 0.5 s period in all, not once per replica (which would be twice as many)
    assert runs <= elapsed / 0.5 + 1, (runs, elapsed)
    assert sorted(w.runs > 0 for w in workers) == [False, True]  # the holder kept it


async def test_the_survivor_takes_over_when_the_holder_dies(store: S3Store, key: str) -> None:
    ran_by: list[str] = []

    def job_of(name: str) -> Callable[[], Coroutine[Any, Any, None]]:
        async def job() -> None:
            ran_by.append(name)

        return job

    first = PeriodicWorker("sharer", 0.3, job_of("first"), lease(store, key, ttl=1.2, holder="1"))
    second = PeriodicWorker("sharer", 0.3, job_of("second"), lease(store, key, ttl=1.2, holder="2"))
    stop_first, stop_second = asyncio.Event(), asyncio.Event()
    t1 = asyncio.create_task(first.run(stop_first))

    async def first_ran_twice() -> bool:
        return ran_by.count("first") >= 2

    await until(first_ran_twice)  # it holds the lease
    t2 = asyncio.create_task(second.run(stop_second))
    await asyncio.sleep(0.5)
    assert set(ran_by) == {"first"}
    t1.cancel()  # killed: no release, its lease must expire
    with pytest.raises(asyncio.CancelledError):
        await t1

    async def second_ran() -> bool:
        return "second" in ran_by

    await until(second_ran)
    stop_second.set()
    await t2


async def test_a_holder_that_loses_its_lease_stops_the_run(store: S3Store, key: str) -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def long_job() -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    worker = PeriodicWorker("sharer", 60, long_job, lease(store, key, ttl=0.6, holder="me"))
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await asyncio.wait_for(started.wait(), 5)
    await store.put_small("recordings", key, b'{"holder": "usurper", "expires_at": 9e9}')
    await asyncio.wait_for(cancelled.wait(), 5)
    assert not worker.health.healthy
    assert "lost the lease" in worker.health.detail
    stop.set()
    await task


async def test_failed_runs_mark_the_worker_unhealthy_until_one_succeeds() -> None:
    outcomes = iter([RemoteError("DRACOON down", remote="dracoon", transient=True)])

    async def job() -> None:
        outcome = next(outcomes, None)  # then every run succeeds
        if outcome is not None:
            raise outcome

    worker = PeriodicWorker("sharer", 0.2, job)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))

    async def failing() -> bool:
        return not worker.health.healthy

    async def healthy() -> bool:
        return worker.health.healthy

    await until(failing)
    assert "DRACOON down" in worker.health.detail
    await until(healthy)
    stop.set()
    await task


def test_schedule_arithmetic() -> None:
    assert seconds_until_due(None, 60, 1000) == 0
    assert seconds_until_due(990, 60, 1000) == 50
    assert seconds_until_due(100, 60, 1000) == 0  # missed periods: one run now
