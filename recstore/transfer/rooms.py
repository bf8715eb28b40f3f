"""A job's rooms: each target's path rendered and its expiration parsed, once per job.

A target (the message's own, or the instance's configured ones) names a room path template and
an expiration phrase. Before anything is uploaded, each becomes a :class:`RoomPlan`: the room
names below the instance's parent room (``$instance`` and ``$meetingType`` filled in)
and how long the copy there is kept. The message's own targets are planned when the message is
decoded (a path that cannot be made sends it to the dead-letter queue before it takes a slot);
the configured ones when the job has resolved its instance. The transfer then only reads plans.

Two targets can name one room (a list that repeats a path, ``$instance/talks`` beside
``acme.example.com/talks``). The room holds one file, so it is kept as long as the longer-lived
of them asks, and for ever when one of them sets no expiration: no target loses its copy early.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from recstore.common.errors import PermanentJobError
from recstore.common.expiration import Expiration, parse_expiration
from recstore.common.paths import TargetPathError, render_target_path


@dataclass(frozen=True)
class Target:
    """One room path (a template) and its expiration text, as configured or sent."""

    path: str
    expiration: str | None = None


@dataclass(frozen=True)
class RoomPlan:
    """One room of a job: the template of the first target that names it, its room names,
    and the expirations of the targets that name it (none: the copy is kept for ever)."""

    path: str
    segments: tuple[str, ...]
    keep_for: tuple[Expiration, ...] = ()

    @classmethod
    def of(cls, path: str, segments: tuple[str, ...], expiration: Expiration | None) -> RoomPlan:
        """The plan of one target, whose path rendered to ``segments``."""
        return cls(path, segments, () if expiration is None else (expiration,))

    def expire_at(self, now: datetime) -> datetime | None:
        """When the room's copy expires, counted from ``now``; None for never."""
        if not self.keep_for:
            return None
        return max(expiration.expire_at(now) for expiration in self.keep_for)


def merged(plans: Iterable[RoomPlan]) -> tuple[RoomPlan, ...]:
    """Each room once, in the order first named, kept as long as any of its targets asks."""
    rooms: dict[tuple[str, ...], RoomPlan] = {}
    for plan in plans:
        first = rooms.get(plan.segments)
        if first is None:
            rooms[plan.segments] = plan
        elif first.keep_for and plan.keep_for:
            rooms[plan.segments] = RoomPlan(
                first.path, first.segments, first.keep_for + plan.keep_for
            )
        elif first.keep_for:  # this one keeps it for ever
            rooms[plan.segments] = RoomPlan(first.path, first.segments)
    return tuple(rooms.values())


def plan_targets(
    targets: Sequence[Target], *, instance: str, meeting_type: str
) -> tuple[RoomPlan, ...]:
    """The rooms of configured targets; a target that cannot be planned is permanent.

    Templates and the YAML's expirations are checked when they are read, but a value can still
    break a template (a meeting type named ``Sales / Support`` under ``$meetingType``), and a
    configurator's answer is checked only here; retrying would never help.
    """
    plans = []
    for target in targets:
        try:
            segments = render_target_path(target.path, instance=instance, meeting_type=meeting_type)
        except TargetPathError as exc:
            raise PermanentJobError(f"target path: {exc}") from None
        try:
            expiration = parse_expiration(target.expiration)
        except ValueError as exc:
            raise PermanentJobError(f"target {target.path!r}: expiration: {exc}") from None
        plans.append(RoomPlan.of(target.path, segments, expiration))
    return merged(plans)
