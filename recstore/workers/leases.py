"""Leases: exactly one replica at a time runs a singleton job.

Several replicas of the daemon (an ECS service, a Kubernetes deployment) share nothing but S3
and SQS, so the lease is an S3 object per job, written with S3's atomic conditional writes:
``If-None-Match: *`` takes a free lease, ``If-Match: <etag>`` renews ours or takes over an
expired one. Whoever loses a race gets 412 and backs off; there is no lock server to run.

The object holds JSON ``{"holder", "expires_at", "last_run_at"}``. A holder renews every third
of the TTL; a holder that dies simply stops renewing and the lease expires, so another replica
takes over after at most one TTL. ``last_run_at`` travels with the lease so the schedule
survives a takeover (a job runs once per period, not once per replica).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

from recstore.clients.s3 import S3Store
from recstore.common import events, metrics

log = logging.getLogger(__name__)


def holder_id() -> str:
    """Who we are in a lease: host, process and a random part (pids repeat in containers)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    """One job's lease. Not safe to share between tasks; one per periodic worker."""

    def __init__(
        self,
        store: S3Store,
        bucket: str,
        key: str,
        job: str,
        ttl: float,
        holder: str | None = None,
        clock: Callable[[], float] = time.time,
        *,
        quiet: bool = False,
    ) -> None:
        if ttl <= 0:
            raise ValueError("a lease TTL must be positive")
        self.store = store
        self.bucket = bucket
        self.key = key
        self.job = job
        self.ttl = ttl
        self.holder = holder or holder_id()
        self.last_run_at: float | None = None
        self._clock = clock
        self._etag: str | None = None
        #: The record of the other holder that kept us out, after a refused :meth:`acquire`.
        self.other: dict[str, Any] = {}
        #: No metric, no event: for the many short per-entry locks (see :class:`EntryLocks`).
        self._quiet = quiet

    @property
    def held(self) -> bool:
        return self._etag is not None

    def _record(self) -> bytes:
        return json.dumps(
            {
                "holder": self.holder,
                "job": self.job,
                "expires_at": self._clock() + self.ttl,
                "last_run_at": self.last_run_at,
            }
        ).encode()

    def _set_held(self, etag: str | None, released: bool = False) -> bool:
        """Record whether we hold the lease; ``released`` when we gave it up ourselves (a
        clean stop), which is not the failure that losing it to another replica is."""
        was = self.held
        self._etag = etag
        if self._quiet:
            return etag is not None
        metrics.LEASE_HELD.labels(job=self.job).set(1 if etag else 0)
        if was and not etag:
            what = "released" if released else "lost"
            events.emit(log, events.WORKER_STATUS, "lease for %s %s", self.job, what)
        elif etag and not was:
            events.emit(log, events.WORKER_STATUS, "lease for %s taken", self.job)
        return etag is not None

    async def acquire(self) -> bool:
        """Take the lease if it is free or expired, or renew it if ours; True while held."""
        if self.held:
            return await self.renew()
        etag = await self.store.put_small(self.bucket, self.key, self._record(), if_none_match=True)
        if etag is not None:
            return self._set_held(etag)
        current = await self.store.get_small(self.bucket, self.key)
        if current is None:  # released between our two calls: try again next time
            return False
        record = _parse(current[0])
        self.last_run_at = record.get("last_run_at")
        if (
            float(record.get("expires_at", 0)) > self._clock()
            and record.get("holder") != self.holder
        ):
            self.other = record
            return False
        etag = await self.store.put_small(
            self.bucket, self.key, self._record(), if_match=current[1]
        )
        return self._set_held(etag)

    async def renew(self) -> bool:
        """Extend our lease (and record ``last_run_at``); False when it is no longer ours."""
        if self._etag is None:
            return False
        etag = await self.store.put_small(
            self.bucket, self.key, self._record(), if_match=self._etag
        )
        return self._set_held(etag)

    async def keep(self) -> None:
        """Renew every third of the TTL; returns only when the lease is lost."""
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                if not await self.renew():
                    return
            except Exception as exc:  # a failed renewal is retried until the TTL runs out
                events.emit(log, events.WORKER_ERROR, "lease renewal failed: %s", exc)

    async def release(self) -> None:
        """Hand the lease over at once (expired now), keeping ``last_run_at`` for the next."""
        if self._etag is None:
            return
        record = json.loads(self._record())
        record["expires_at"] = 0
        await self.store.put_small(
            self.bucket, self.key, json.dumps(record).encode(), if_match=self._etag
        )
        self._set_held(None, released=True)

    async def remove(self) -> None:
        """Give the lease up by deleting its object (for locks that should not linger)."""
        if self._etag is None:
            return
        await self.store.delete(self.bucket, self.key)
        self._set_held(None, released=True)


class EntryLocks:
    """One worker at a time, of any replica, changes a given Kaltura entry.

    Archive actions are idempotent one after another, not side by side: two workers doing
    ``replace-video`` on one entry at once would both upload a placeholder. That can happen,
    since SQS delivers a message at least once and a planner run can enqueue an entry whose
    message from the previous run still waits. So an applied action holds a quiet
    :class:`Lease` on ``<prefix>entries/<entry id>.json`` (renewed while it runs, deleted
    after); a second worker sees who holds it and which action they do. Within one process,
    a set answers first and saves the round trip. ``store=None`` (leases off: one replica)
    keeps only that set.
    """

    def __init__(self, store: S3Store | None, bucket: str | None, prefix: str, ttl: float) -> None:
        self._store = store
        self._bucket = bucket
        self._prefix = prefix
        #: A lock of a worker that died holding it runs out after this many seconds.
        self.ttl = ttl
        self._local: dict[str, str] = {}

    @asynccontextmanager
    async def hold(self, entry_id: str, action: str) -> AsyncIterator[str | None]:
        """Hold ``entry_id`` for the block: yields None, or the action another holder does."""
        if entry_id in self._local:
            yield self._local[entry_id]
            return
        self._local[entry_id] = action
        try:
            if self._store is None or self._bucket is None:
                yield None
                return
            lease = Lease(
                self._store,
                self._bucket,
                f"{self._prefix}entries/{entry_id}.json",
                action,
                self.ttl,
                quiet=True,
            )
            if not await lease.acquire():
                yield str(lease.other.get("job") or "an action")
                return
            keeper = asyncio.create_task(lease.keep(), name=f"lock:{entry_id}")
            try:
                yield None
            finally:
                keeper.cancel()
                with suppress(asyncio.CancelledError):
                    await keeper
                with suppress(Exception):  # an undeleted lock expires after its TTL
                    await asyncio.shield(lease.remove())
        finally:
            del self._local[entry_id]


def _parse(data: bytes) -> dict[str, Any]:
    try:
        record = json.loads(data)
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}
