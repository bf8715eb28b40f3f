"""A worker that runs one job every ``interval`` seconds, optionally under a singleton lease.

The DracoonGlobalSharer, VidyoSync, Archiver and Restorer are this worker around their own
``run_once``. Without a lease the schedule is kept in memory; with one it lives in the lease,
so that across replicas the job runs once per period and only where the lease is held. A holder
that loses its lease mid-run cancels the run at once: another replica now owns the job.

A run counts for its period from its start, so a holder killed mid-run is not followed by a
second run in the same period (the sharer's job must not be done twice). A job that is safe to
do again asks for ``redo_unfinished``: its run counts once it ended, so the replica that takes
over from a killed holder does the period's run at once (the Archiver's plan: otherwise the
entries the killed run had not enqueued yet would wait for the next period, a day).

A run that fails with a :class:`~recstore.common.errors.RecstoreError` (a remote down, a bad answer)
marks the worker unhealthy until a later run succeeds; anything else is a bug and crashes the
worker, which the supervisor restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from recstore.clients.s3 import S3Store
from recstore.common import events, metrics
from recstore.common.aio import sleep_unless
from recstore.common.errors import RecstoreError
from recstore.settings import Settings
from recstore.workers.base import WorkerHealth
from recstore.workers.leases import Lease
from recstore.workers.resources import Resources

log = logging.getLogger(__name__)

Job = Callable[[], Coroutine[Any, Any, None]]
#: How a run ended: the ``outcome`` label of ``recstore_periodic_runs_total``.
OUTCOMES = ("success", "failed", "lease_lost", "crashed")


def seconds_until_due(last_run_at: float | None, interval: float, now: float) -> float:
    """0 when a run is due; missed periods are not made up (one run, then the normal pace)."""
    if last_run_at is None:
        return 0.0
    return max(0.0, last_run_at + interval - now)


class PeriodicWorker:
    def __init__(
        self,
        name: str,
        interval: float,
        job: Job,
        lease: Lease | None = None,
        clock: Callable[[], float] = time.time,
        retry_after_error: float = 30.0,
        *,
        redo_unfinished: bool = False,
    ) -> None:
        self.name = name
        #: A run whose holder died before it ended is done again by the next holder at once
        #: (the lease records the run only when it ended), instead of the next period: for a
        #: job that is safe to do twice (a planner), not for one that is not (the sharer).
        self._redo_unfinished = redo_unfinished
        self.health = WorkerHealth()
        self.interval = interval
        self._job = job
        self._lease = lease
        self._clock = clock
        self._retry_after_error = retry_after_error
        self._last_run_at: float | None = None
        self.runs = 0
        # What the status page shows: wall-clock times (Unix seconds) and counts by outcome.
        self.last_started: float | None = None
        self.last_finished: float | None = None
        self.last_outcome = ""
        self.next_run: float | None = None
        self.outcomes: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
        for outcome in OUTCOMES:
            metrics.PERIODIC_RUNS.labels(worker=name, outcome=outcome)

    def status(self) -> dict[str, object]:
        """Last and next run and the outcome counts, for ``/status.json`` (no secrets)."""
        lease = self._lease
        return {
            "periodic": {
                "interval_seconds": self.interval,
                "runs": self.runs,
                "last_started": self.last_started,
                "last_finished": self.last_finished,
                "last_outcome": self.last_outcome,
                "next_run": self.next_run,
                "outcomes": dict(self.outcomes),
                "lease": "none" if lease is None else ("held" if lease.held else "waiting"),
            }
        }

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                wait = await self._tick()
                await sleep_unless(stop, wait)
        finally:
            if self._lease is not None and self._lease.held:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._lease.release())

    async def _tick(self) -> float:
        """One scheduling step; how long to sleep before the next."""
        lease = self._lease
        if lease is not None:
            try:
                if not await lease.acquire():
                    self.health.ok()  # a replica that waits its turn is healthy
                    self.next_run = None  # another replica's turn: its schedule, not ours
                    return lease.ttl / 3
            except RecstoreError as exc:
                self.health.failing(f"lease store unreachable: {exc}")
                return self._retry_after_error
            last = lease.last_run_at
        else:
            last = self._last_run_at
        wait = seconds_until_due(last, self.interval, self._clock())
        self.next_run = self._clock() + wait
        if wait > 0:
            return min(wait, lease.ttl / 3) if lease is not None else wait
        await self._run_once()
        return 0.0

    async def _run_once(self) -> None:
        started = self._clock()
        lease = self._lease
        if lease is not None:
            if not self._redo_unfinished:
                lease.last_run_at = started
            if not await lease.renew():
                return
        else:
            self._last_run_at = started
        self.runs += 1
        self.last_started = started
        job = asyncio.create_task(self._job(), name=f"{self.name}:run")
        keeper = asyncio.create_task(lease.keep()) if lease is not None else None
        try:
            waiting = {job} if keeper is None else {job, keeper}
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (job, keeper):
                if task is not None and not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        if job.cancelled():
            self._finished("lease_lost")
            self.health.failing("lost the lease during a run; another replica took over")
            return
        if lease is not None and self._redo_unfinished:
            lease.last_run_at = started  # ended (well or not): the period's run is done
            with contextlib.suppress(RecstoreError):  # else the next acquire writes it
                await lease.renew()
        error = job.exception()
        if isinstance(error, RecstoreError):
            self._finished("failed")
            self.health.failing(f"last run failed: {error}")
            events.emit(log, events.WORKER_ERROR, "%s run failed: %s", self.name, error)
            return
        if error is not None:
            self._finished("crashed")
            raise error
        self._finished("success")
        self.health.ok()
        metrics.LAST_SUCCESS.labels(worker=self.name).set(time.time())

    def _finished(self, outcome: str) -> None:
        self.last_finished = self._clock()
        self.last_outcome = outcome
        self.outcomes[outcome] += 1
        metrics.PERIODIC_RUNS.labels(worker=self.name, outcome=outcome).inc()
        # Seed 004's "Worker profiling" (15008): what one run of the worker cost.
        events.emit(
            log,
            events.WORKER_PROFILING,
            "%s run ended (%s)",
            self.name,
            outcome,
            worker=self.name,
            seconds=round(self.last_finished - (self.last_started or self.last_finished), 3),
            runs=self.runs,
        )


async def job_lease(settings: Settings, name: str, resources: Resources) -> Lease | None:
    """The S3 lease that keeps singleton job ``name`` to one replica; None when leases are off.
    It is kept with the shared S3 client."""
    leases = settings.leases
    if not leases.shared or leases.bucket is None:
        return None
    store = S3Store(await resources.s3())
    return Lease(store, leases.bucket, f"{leases.prefix}{name}.json", name, leases.ttl)
