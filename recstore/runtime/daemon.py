"""The daemon: settings → shared resources → workers → supervisor + web server on one loop.

``run()`` is the blocking entry point for ``recstore run``; ``async_run()`` is the same thing
for callers that own a loop (tests), and takes the workers (or the resources they are built
on) as an argument so a test can run the real supervisor, signal handling and web server with
workers or transports of its own.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from typing import Any

from recstore import __version__
from recstore.common import events
from recstore.runtime.queue_depth import QueueDepthSampler
from recstore.runtime.supervisor import Supervisor
from recstore.runtime.systemd import Notifier
from recstore.runtime.web import WebServer
from recstore.settings import Settings
from recstore.workers import Worker
from recstore.workers.registry import build_workers
from recstore.workers.resources import Resources, opened

log = logging.getLogger(__name__)


async def async_run(
    settings: Settings,
    workers: Sequence[Worker] | None = None,
    resources: Resources | None = None,
) -> int:
    """Serve until SIGTERM/SIGINT; 0 after a clean drain, 1 when work had to be cancelled.

    The workers share one :class:`Resources` (sessions, clients, DRACOON accounts), opened
    here and closed after the drain, as arq hands each job its ``ctx``; a test hands in its
    own (its transports), or workers of its own.
    """
    async with opened(resources, settings) as resources:
        return await _serve(settings, workers, resources)


async def _serve(settings: Settings, workers: Sequence[Worker] | None, resources: Resources) -> int:
    workers = list(build_workers(settings, resources) if workers is None else workers)
    supervisor = Supervisor(workers, settings.daemon)
    sampler = QueueDepthSampler(settings, resources)
    web = WebServer(supervisor, settings.http, queues=sampler)
    notifier = Notifier()
    await web.start()
    supervisor.install_signal_handlers()
    # Which workers run, and which default-on ones nothing configures (and so do not run).
    skipped: dict[str, Any] = {}
    if settings.not_started:
        skipped["not_started"] = _not_started(settings)
    events.emit(
        log,
        events.START_APPLICATION,
        "recstore %s started",
        __version__,
        pid=os.getpid(),
        http_port=web.port,
        workers=",".join(w.name for w in workers) or "none",
        **skipped,
    )
    supervisor.on_stop.append(notifier.stopping)
    running = asyncio.create_task(supervisor.run(), name="supervisor")
    helpers = [
        asyncio.create_task(_tell_systemd(notifier, supervisor, len(workers))),
        asyncio.create_task(sampler.run(), name="queue-depth"),
    ]
    try:
        clean = await running
    finally:
        for task in helpers:
            task.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
        supervisor.remove_signal_handlers()
        await web.close()
    return 0 if clean else 1


def _not_started(settings: Settings) -> str:
    return "; ".join(f"{name} ({why})" for name, why in settings.not_started.items())


async def _tell_systemd(notifier: Notifier, supervisor: Supervisor, workers: int) -> None:
    """READY once the workers run, then WATCHDOG while the loop is alive (drain included).

    STOPPING is sent by the supervisor's stop callback, the moment the drain begins.
    """
    if not notifier.enabled:
        return
    await asyncio.sleep(0)  # let the supervisor start the worker tasks first
    notifier.ready(f"{workers} worker(s) running")
    while notifier.watchdog_interval is not None:
        notifier.watchdog()
        await asyncio.sleep(notifier.watchdog_interval)


def run(settings: Settings, workers: Sequence[Worker] | None = None) -> int:
    """Run the daemon on uvloop when it is installed, else on the standard loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every supported OS
        return asyncio.run(async_run(settings, workers))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(async_run(settings, workers))
