"""Runs the workers, restarts a crashed one with backoff, drains on SIGTERM, owns health.

Shutdown follows one order: stop receiving (the shared ``stop`` event) → let running work
drain until the grace period ends → cancel what is left (a worker hands back its jobs when
cancelled) → return. A second SIGTERM/SIGINT skips the rest of the grace period.

Every long-lived task lives in :attr:`Supervisor.slots`; nothing is fire-and-forget.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from recstore.common import events, metrics
from recstore.common.aio import sleep_unless
from recstore.settings import DaemonSettings
from recstore.workers.base import Worker

log = logging.getLogger(__name__)

#: How long cancelled workers get to hand back their jobs after the grace period.
CANCEL_TIMEOUT = 10.0


@dataclass
class WorkerSlot:
    """The supervisor's record of one worker: its task and its crash history."""

    worker: Worker
    task: asyncio.Task[None] | None = None
    restarts: int = 0
    consecutive_crashes: int = 0
    running_since: float | None = None
    last_error: str = ""


class Supervisor:
    """Keeps every worker running until asked to stop; see the module docstring."""

    def __init__(
        self,
        workers: Sequence[Worker],
        settings: DaemonSettings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        names = [w.name for w in workers]
        if len(set(names)) != len(names):
            raise ValueError(f"worker names must be unique: {names}")
        self.slots = [WorkerSlot(w) for w in workers]
        self.settings = settings
        self.stop_event = asyncio.Event()
        #: Called once, synchronously, when the drain begins (e.g. to tell systemd STOPPING).
        self.on_stop: list[Callable[[], object]] = []
        self._force = asyncio.Event()
        self._clock = clock

    # -- health -------------------------------------------------------------------------------

    def crash_looping(self, slot: WorkerSlot) -> bool:
        """Unhealthy after N crashes in a row, until the worker has run ``stableAfter``."""
        if slot.consecutive_crashes < self.settings.unhealthy_after_restarts:
            return False
        since = slot.running_since
        if since is not None and self._clock() - since >= self.settings.stable_after:
            slot.consecutive_crashes = 0
            return False
        return True

    def unhealthy_workers(self) -> list[str]:
        """Names of the workers that are not healthy, in start order."""
        failing = []
        for slot in self.slots:
            healthy = slot.worker.health.healthy and not self.crash_looping(slot)
            metrics.WORKER_HEALTHY.labels(worker=slot.worker.name).set(1 if healthy else 0)
            if not healthy:
                failing.append(slot.worker.name)
        return failing

    def status(self) -> list[dict[str, object]]:
        """Each worker's state for ``/status.json`` and the dashboard (no secrets, no PII)."""
        failing = set(self.unhealthy_workers())
        result: list[dict[str, object]] = []
        for slot in self.slots:
            worker = slot.worker
            extra = getattr(worker, "status", None)
            result.append(
                {
                    "name": worker.name,
                    "healthy": worker.name not in failing,
                    "detail": worker.health.detail
                    or ("crash-looping" if self.crash_looping(slot) else ""),
                    "running": slot.running_since is not None,
                    "restarts": slot.restarts,
                    "last_error": slot.last_error,
                    **(extra() if callable(extra) else {}),
                }
            )
        return result

    # -- running ------------------------------------------------------------------------------

    def request_stop(self, force: bool = False) -> None:
        """Begin the drain; called again (or with ``force``), skip the rest of the grace."""
        if self.stop_event.is_set() or force:
            self._force.set()
        else:
            for callback in self.on_stop:
                callback()
        self.stop_event.set()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)

    def remove_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        again = self.stop_event.is_set()
        events.emit(
            log,
            events.STOP_APPLICATION,
            "%s received: %s",
            sig.name,
            "stopping now" if again else "draining",
            grace_seconds=self.settings.grace_period,
        )
        self.request_stop(force=again)

    async def run(self) -> bool:
        """Run until stopped; True when every worker drained within the grace period."""
        for slot in self.slots:
            slot.task = asyncio.create_task(self._keep_running(slot), name=slot.worker.name)
        tasks = [slot.task for slot in self.slots if slot.task is not None]
        await self.stop_event.wait()
        clean = await self._drain(tasks)
        events.emit(log, events.STOP_APPLICATION, "drain finished", clean=clean)
        return clean

    async def _drain(self, tasks: list[asyncio.Task[None]]) -> bool:
        if not tasks:
            return True
        force = asyncio.create_task(self._force.wait())
        all_done = asyncio.create_task(asyncio.wait(tasks))
        try:
            await asyncio.wait(
                [all_done, force],
                timeout=self.settings.grace_period,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            force.cancel()
            all_done.cancel()
        pending = {t for t in tasks if not t.done()}
        if pending:
            names = sorted(t.get_name() for t in pending)
            events.emit(
                log,
                events.STOP_APPLICATION,
                "grace period over: cancelling %s; their jobs are handed back",
                ", ".join(names),
            )
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=CANCEL_TIMEOUT)
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.error("worker task ended with an error", exc_info=task.exception())
        return not pending

    async def _keep_running(self, slot: WorkerSlot) -> None:
        worker = slot.worker
        events.worker_var.set(worker.name)
        delay = self.settings.restart_backoff_initial
        metrics.WORKER_HEALTHY.labels(worker=worker.name).set(1)
        metrics.WORKER_RESTARTS.labels(worker=worker.name)  # the series exists at 0 from start
        while not self.stop_event.is_set():
            slot.running_since = self._clock()
            metrics.WORKER_RUNNING.labels(worker=worker.name).set(1)
            events.emit(log, events.WORKER_STATUS, "worker %s started", worker.name)
            try:
                await worker.run(self.stop_event)
            except asyncio.CancelledError:
                metrics.WORKER_RUNNING.labels(worker=worker.name).set(0)
                raise
            except Exception as exc:
                slot.last_error = f"{type(exc).__name__}: {exc}"
                events.emit(
                    log, events.WORKER_ERROR, "worker %s crashed", worker.name, exc_info=exc
                )
            else:
                if self.stop_event.is_set():
                    break
                slot.last_error = "returned without being asked to stop"
                events.emit(log, events.WORKER_ERROR, "worker %s stopped by itself", worker.name)
            finally:
                ran = self._clock() - slot.running_since
                slot.running_since = None
            metrics.WORKER_RUNNING.labels(worker=worker.name).set(0)
            if ran >= self.settings.stable_after:
                slot.consecutive_crashes = 0
                delay = self.settings.restart_backoff_initial
            slot.consecutive_crashes += 1
            slot.restarts += 1
            metrics.WORKER_RESTARTS.labels(worker=worker.name).inc()
            if self.crash_looping(slot):
                metrics.WORKER_HEALTHY.labels(worker=worker.name).set(0)
            events.emit(
                log,
                events.WORKER_STATUS,
                "restarting worker %s in %.3g s",
                worker.name,
                delay,
                restarts=slot.restarts,
            )
            await sleep_unless(self.stop_event, delay)
            delay = min(delay * 2, self.settings.restart_backoff_max)
        metrics.WORKER_RUNNING.labels(worker=worker.name).set(0)
        events.emit(log, events.WORKER_STATUS, "worker %s stopped", worker.name)
