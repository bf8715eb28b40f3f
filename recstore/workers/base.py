"""The interface every worker offers the supervisor, and the health state it reports.

A worker is any object with a ``name`` and an ``async run(stop)`` that returns once ``stop`` is
set and its in-flight work is finished or handed back. The supervisor cancels ``run`` when the
grace period is over, so a worker must treat cancellation as "hand back what you hold now".
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class WorkerHealth:
    """What a worker knows about its own health: set by the worker, read by /healthcheck.

    A worker marks itself unhealthy while a dependency it needs does not answer (SQS down, the
    DRACOON login failing), and healthy again on the next success.
    """

    healthy: bool = True
    detail: str = ""
    since: float = field(default_factory=time.time)

    def ok(self) -> None:
        if not self.healthy:
            self.healthy, self.detail, self.since = True, "", time.time()

    def failing(self, detail: str) -> None:
        if self.healthy or self.detail != detail:
            self.healthy, self.detail, self.since = False, detail, time.time()


class Worker(Protocol):
    """What the supervisor needs of a worker."""

    #: snake_case; appears in ``worker_error_<name>`` and in metrics labels.
    name: str
    health: WorkerHealth

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set, then finish or hand back in-flight work and return."""
        ...
