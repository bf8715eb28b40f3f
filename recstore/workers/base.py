"""The interface every worker offers the supervisor, the health state it reports, and the
declaration (:class:`WorkerSpec`) by which each worker module tells the daemon about itself.

A worker is any object with a ``name`` and an ``async run(stop)`` that returns once ``stop`` is
set and its in-flight work is finished or handed back. The supervisor cancels ``run`` when the
grace period is over, so a worker must treat cancellation as "hand back what you hold now".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import BaseModel

from recstore.settings import Settings
from recstore.workers.resources import Resources

#: A configuration problem: the key, and what is wrong with it.
Problem = tuple[str, str]

#: The message of a :attr:`WorkerSpec.requires` problem for a key that must be set while the
#: worker runs; the registry says which running workers need it, each key once.
REQUIRED = "required"

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


def _none(settings: Settings) -> list[str]:
    return []


def _no_problems(settings: Settings) -> list[Problem]:
    return []


@dataclass(frozen=True)
class WorkerSpec:
    """One worker, declared once by its own module (as each rclone backend registers itself).

    :mod:`recstore.workers.registry` lists the declarations; the configuration's checks, the
    ``--workers`` selection, the daemon's start, queue depths and ``config check`` loop over it.
    """

    #: The worker's key under ``workers`` in the YAML, and its name in ``--workers``.
    name: str
    #: The attribute of :class:`~recstore.settings.WorkersSettings` holding its settings.
    section: str
    #: The worker the daemon runs, from the settings and the daemon's shared connections.
    build: Callable[[Settings, Resources], Worker]
    #: True: one replica at a time, under a lease; False: a pool, any number of replicas.
    singleton: bool
    #: The key of its section that turns it on: a bool, or a count that is on above 0.
    switch: str = "enabled"
    #: The (work, dead-letter) queues it consumes, each a key of ``queues`` or a URL.
    consumes: Callable[[Settings], tuple[str, str]] | None = None
    #: The queue it sends work to (a key of ``queues`` or a URL).
    sends_to: Callable[[Settings], str] | None = None
    #: The remotes it talks to besides S3 and SQS, as ``config check`` names them.
    reaches: Callable[[Settings], Sequence[str]] = _none
    #: What it needs to run: problems, :data:`REQUIRED` for a key that must be set.
    requires: Callable[[Settings], list[Problem]] = _no_problems
    #: For a worker that is on by default: why a configuration that sets none of its keys
    #: leaves it off (nothing for it to do), or "" to keep it on.
    unconfigured: Callable[[Settings], str] | None = None
    #: More ``config check`` lines: the buckets and objects it reads or writes.
    uses: Callable[[Settings], list[str]] = _none

    def settings_of(self, settings: Settings) -> BaseModel:
        section: BaseModel = getattr(settings.workers, self.section)
        return section

    def on(self, settings: Settings) -> bool:
        return bool(getattr(self.settings_of(settings), self.switch))

    def off(self, settings: Settings) -> BaseModel:
        """Its settings with the switch off (``False``, or a count of 0)."""
        section = self.settings_of(settings)
        value = False if isinstance(getattr(section, self.switch), bool) else 0
        return section.model_copy(update={self.switch: value})


def unknown_queues(settings: Settings, where: str, queues: Mapping[str, str]) -> list[Problem]:
    """A queue named by a key of ``queues`` that is not there (a URL is taken as it is)."""
    return [
        (f"{where}.{key}", f"{value!r} is not a key of `queues`")
        for key, value in queues.items()
        if not value.startswith(("http://", "https://")) and value not in settings.queues
    ]
