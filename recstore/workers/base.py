"""The interface every worker offers the supervisor, and the health state it reports.

A worker is any object with a ``name`` and an ``async run(stop)`` that returns once ``stop`` is
set and its in-flight work is finished or handed back. The supervisor cancels ``run`` when the
grace period is over, so a worker must treat cancellation as "hand back what you hold now".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

#: How many failing concerns the detail names; the rest are counted.
SHOWN_CONCERNS = 3


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
    #: What ``quiet_for`` measures with: a test moves its own clock instead of sleeping
    #: through the lapse windows.
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    #: concern → (its detail, ``clock()`` of the last report that it fails)
    _failing: dict[str, tuple[str, float]] = field(default_factory=dict, repr=False)

    def ok(self, concern: str = "") -> None:
        if self._failing.pop(concern, None) is not None:
            self._changed()

    def failing(self, detail: str, concern: str = "") -> None:
        previous = self._failing.get(concern)
        self._failing[concern] = (detail, self.clock())
        if previous is None or previous[0] != detail:
            self._changed()

    def renew(self, concern: str) -> None:
        """Report again that ``concern`` fails, as it did (nothing when it does not)."""
        if concern in self._failing:
            self._failing[concern] = (self._failing[concern][0], self.clock())

    def failing_concerns(self) -> list[str]:
        return list(self._failing)

    def quiet_for(self, concern: str) -> float | None:
        """Seconds since ``concern`` was last reported failing; None while it is not."""
        if concern not in self._failing:
            return None
        return self.clock() - self._failing[concern][1]

    def _changed(self) -> None:
        healthy = not self._failing
        details = [detail for detail, _ in self._failing.values()]
        if len(details) > SHOWN_CONCERNS:  # e.g. every instance's jobs while DRACOON is down
            more = len(details) - SHOWN_CONCERNS
            details = [*details[:SHOWN_CONCERNS], f"and {more} more"]
        detail = "; ".join(details)
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
