"""How many messages wait in the work queue and its dead-letter queue, sampled in the background.

SQS only approximates depths and charges per request, so the daemon reads them on its own
schedule (``daemon.queueDepthInterval``) rather than once per page view or scrape: ``/metrics``
and ``/status.json`` report the latest sample and when it was taken. A sample that fails is
logged once (15005) and kept as an error on the status page; the previous gauge values stay,
so an alert on the dead-letter queue does not flap while SQS has a bad minute.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from recstore.clients.sqs import SqsQueue
from recstore.common import events, metrics
from recstore.common.errors import RemoteError
from recstore.common.retry import RetryPolicy
from recstore.settings import Settings
from recstore.workers.queue_consumer import queue_name
from recstore.workers.registry import enabled
from recstore.workers.resources import Resources

log = logging.getLogger(__name__)

#: A sample is worth little once the next is due: retry briefly, then wait for the next one.
SAMPLE_POLICY = RetryPolicy(attempts=2, base_delay=0.5, max_delay=2.0, deadline=10.0)


@dataclass
class QueueDepth:
    """The latest sample of one queue."""

    name: str
    role: str  # "work" or "dead_letter"
    url: str
    visible: int | None = None
    not_visible: int | None = None
    sampled_at: float | None = None
    error: str = ""

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "role": self.role,
            "visible": self.visible,
            "not_visible": self.not_visible,
            "sampled_at": self.sampled_at,
            "error": self.error,
        }


def watched_queues(settings: Settings) -> list[QueueDepth]:
    """The work and dead-letter queues of the queue consumers that run in this daemon."""
    pairs = [spec.consumes(settings) for spec in enabled(settings) if spec.consumes is not None]
    return [
        QueueDepth(queue_name(url), role, url)
        for work, dead in pairs
        for role, url in (
            ("work", settings.queue_url(work)),
            ("dead_letter", settings.queue_url(dead)),
        )
    ]


class QueueDepthSampler:
    """One background task of the daemon; ``snapshot()`` is what ``/status.json`` shows."""

    def __init__(self, settings: Settings, resources: Resources) -> None:
        self._resources = resources
        self.interval = settings.daemon.queue_depth_interval
        self.queues = watched_queues(settings)

    def snapshot(self) -> list[dict[str, object]]:
        return [queue.as_json() for queue in self.queues]

    async def run(self) -> None:
        """Sample every ``interval`` until cancelled."""
        if not self.queues:
            return
        client = await self._resources.sqs()
        while True:
            for queue in self.queues:
                await self.sample(client, queue)
            await asyncio.sleep(self.interval)

    async def sample(self, client: Any, queue: QueueDepth) -> None:
        try:
            visible, not_visible = await SqsQueue(client, queue.url, SAMPLE_POLICY).depth()
        except Exception as exc:  # a measurement must never take the daemon down
            error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, RemoteError) else str(exc)
            if error != queue.error:
                events.emit(
                    log,
                    events.SQS_ERROR,
                    "depth of queue %s not read: %s",
                    queue.name,
                    error,
                    exc_info=not isinstance(exc, RemoteError),
                )
            queue.error = error
            return
        queue.visible, queue.not_visible = visible, not_visible
        queue.sampled_at, queue.error = time.time(), ""
        gauge = metrics.SQS_QUEUE_MESSAGES
        gauge.labels(queue=queue.name, role=queue.role, state="visible").set(visible)
        gauge.labels(queue=queue.name, role=queue.role, state="not_visible").set(not_visible)
