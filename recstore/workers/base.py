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
    DRACOON login failing), and healthy again on the next success. Independent concerns (the
    queue's poll, the jobs' remotes) are kept apart, so that one recovering does not hide the
    other: the worker is healthy when none is failing.
    """

    healthy: bool = True
    detail: str = ""
    since: float = field(default_factory=time.time)
    _failing: dict[str, str] = field(default_factory=dict, repr=False)

    def ok(self, concern: str = "") -> None:
        if self._failing.pop(concern, None) is not None:
            self._changed()

    def failing(self, detail: str, concern: str = "") -> None:
        if self._failing.get(concern) != detail:
            self._failing[concern] = detail
            self._changed()

    def is_failing(self, concern: str = "") -> bool:
        return concern in self._failing

    def _changed(self) -> None:
        healthy, detail = not self._failing, "; ".join(self._failing.values())
        if (healthy, detail) != (self.healthy, self.detail):
            self.healthy, self.detail, self.since = healthy, detail, time.time()


class Worker(Protocol):
    """What the supervisor needs of a worker."""

    #: snake_case; appears in ``worker_error_<name>`` and in metrics labels.
    name: str
    health: WorkerHealth

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set, then finish or hand back in-flight work and return."""
        ...
