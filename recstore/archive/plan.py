"""The scheduled archive and restore runs as plans: which entries get which action, as messages.

A run does not act on entries itself. It lists what seed 002's jobs select and enqueues one
message per entry and action on the archive queue; the ArchiveActions pools of every replica
take them from there (with SQS's visibility, retries and dead-letter queue), so 800,000
entries spread over all machines and no replica works on an entry another one holds.

The runs (seed 002):

* archive: ``s3copy --unplayed_for N --tag !archived_to_s3``, then ``replace-video
  --unplayed_for N --tag archived_to_s3``. An s3copy message carries ``then: replace-video``,
  so an entry copied in this run is also replaced in this run, as the seed's script did by
  running the second command after the first. The replace-video listing is made *before* the
  s3copy messages go out: listed after them, it would also catch entries the workers had just
  copied, and those would get a second replace-video beside their chained one. Entries
  already carrying ``flavors_deleted`` are not planned for replace-video again (they would
  only answer DONE_BEFORE).
* restore: ``restore --tag flavors_deleted --played_within N`` (and the same for each older
  name of the tag). An entry waiting for Glacier is simply planned again by the next run.

The message is JSON (:class:`ArchiveJob`); a malformed one is a permanent failure and goes to
the dead-letter queue.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from recstore.archive.actions import ACTIONS, REPLACE_VIDEO, RESTORE, S3COPY
from recstore.archive.filters import Selection
from recstore.archive.states import ArchiveTags
from recstore.clients.kaltura_types import KalturaMediaEntry
from recstore.common.errors import PermanentJobError

VERSION = 1
#: Messages sent per SQS batch call (the service's limit).
BATCH = 10


@dataclass(frozen=True)
class ArchiveJob:
    """One message of the archive queue: do ``action`` on ``entry_id`` as part of ``run_id``."""

    run_id: str
    action: str
    entry_id: str
    apply: bool
    #: Where the outcome rows of this run go (``log/YYYY/MM/<run>/``).
    report_prefix: str
    #: An action to enqueue for the same entry once this one is DONE (s3copy → replace-video).
    then: str | None = None

    @property
    def job_id(self) -> str:
        return f"{self.run_id}:{self.action}:{self.entry_id}"

    def to_json(self) -> str:
        body: dict[str, Any] = {
            "version": VERSION,
            "run": self.run_id,
            "action": self.action,
            "entryId": self.entry_id,
            "apply": self.apply,
            "report": self.report_prefix,
        }
        if self.then:
            body["then"] = self.then
        return json.dumps(body, separators=(",", ":"))

    def follow_up(self) -> ArchiveJob | None:
        if not self.then:
            return None
        return ArchiveJob(self.run_id, self.then, self.entry_id, self.apply, self.report_prefix)


def parse_job(body: str) -> ArchiveJob:
    """The message as an :class:`ArchiveJob`; :class:`PermanentJobError` when malformed."""
    try:
        data = json.loads(body)
    except ValueError:
        raise PermanentJobError("archive message is not JSON") from None
    except RecursionError:  # "[" * 200000: the message's fault, retrying never helps
        raise PermanentJobError("archive message is JSON nested too deeply to read") from None
    if not isinstance(data, dict):
        raise PermanentJobError("archive message is not a JSON object")
    if data.get("version") != VERSION:
        raise PermanentJobError(f"archive message version {data.get('version')!r} is unknown")
    problems = []
    for name in ("run", "action", "entryId", "report"):
        if not isinstance(data.get(name), str) or not data[name]:
            problems.append(f"{name} must be a non-empty string")
    if not isinstance(data.get("apply"), bool):
        problems.append("apply must be true or false")
    if data.get("action") not in ACTIONS:
        problems.append(f"action must be one of {', '.join(ACTIONS)}")
    then = data.get("then")
    if then is not None and then not in ACTIONS:
        problems.append(f"then must be one of {', '.join(ACTIONS)}")
    if problems:
        raise PermanentJobError("archive message: " + "; ".join(problems))
    return ArchiveJob(
        run_id=data["run"],
        action=data["action"],
        entry_id=data["entryId"],
        apply=data["apply"],
        report_prefix=data["report"],
        then=then,
    )


@dataclass(frozen=True)
class PlanStep:
    """One command of a scheduled run: an action over a selection."""

    action: str
    selection: Selection
    then: str | None = None


def archive_steps(
    tags: ArchiveTags, unplayed_for: float, max_entries: int | None = None
) -> list[PlanStep]:
    """Seed 002's archive job: copy what is not archived, replace what is archived."""
    not_replaced = tuple(
        f"!{name}" for name in (tags.flavors_deleted, *tags.flavors_deleted_aliases)
    )
    return [
        PlanStep(
            REPLACE_VIDEO,
            Selection(
                tags=(tags.archived, *not_replaced),
                unplayed_for=unplayed_for,
                max_entries=max_entries,
            ),
        ),
        PlanStep(
            S3COPY,
            Selection(
                tags=(f"!{tags.archived}",), unplayed_for=unplayed_for, max_entries=max_entries
            ),
            then=REPLACE_VIDEO,
        ),
    ]


def restore_steps(
    tags: ArchiveTags, played_within: float, max_entries: int | None = None
) -> list[PlanStep]:
    """Seed 002's restore job, once per name the flavors-deleted tag has had."""
    return [
        PlanStep(
            RESTORE,
            Selection(tags=(name,), played_within=played_within, max_entries=max_entries),
        )
        for name in (tags.flavors_deleted, *tags.flavors_deleted_aliases)
    ]


def run_id(kind: str, at: datetime) -> str:
    """``archive-20261122T203000Z``: sortable, and the same for the same scheduled moment."""
    return f"{kind}-{at.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}"


def report_prefix(prefix: str, run: str, at: datetime) -> str:
    """Where a run's report parts go: ``<prefix>YYYY/MM/<run>/``."""
    return f"{prefix}{at.astimezone(UTC).strftime('%Y/%m')}/{run}/"


class Sender(Protocol):
    """What planning needs of the queue: send bodies, many at a time."""

    async def send_batch(self, bodies: Sequence[str]) -> None: ...


@dataclass
class PlanSummary:
    run_id: str
    apply: bool
    report_prefix: str
    planned: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.planned.values())

    def rows(self) -> list[dict[str, Any]]:
        return [
            {"run": self.run_id, "action": action, "planned": n, "apply": self.apply}
            for action, n in self.planned.items()
        ]


PLAN_COLUMNS = ("run", "action", "planned", "apply")


async def plan(
    steps: Sequence[PlanStep],
    select: Callable[[Selection], AsyncIterator[KalturaMediaEntry]],
    sender: Sender,
    *,
    run: str,
    apply: bool,
    report: str,
    sends: int = 8,
) -> PlanSummary:
    """Enqueue one :class:`ArchiveJob` per selected entry and step; counts per action.

    A step's messages are sent in batches of ten, ``sends`` batches at a time (800,000
    entries are 80,000 calls), and all of them before the next step lists its entries. An
    entry that two steps of the same action select (both names of the flavors-deleted tag)
    is planned once.
    """
    summary = PlanSummary(run, apply, report)
    repeated = {s.action for s in steps if sum(t.action == s.action for t in steps) > 1}
    seen: dict[str, set[str]] = {action: set() for action in repeated}
    in_flight: set[asyncio.Task[None]] = set()

    async def settle(limit: int) -> None:
        while len(in_flight) > limit:
            done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                in_flight.discard(task)
                task.result()  # a failed send fails the run (its lease keeps it single)

    async def send(batch: list[str]) -> None:
        await settle(sends - 1)
        in_flight.add(asyncio.create_task(sender.send_batch(batch)))

    try:
        for step in steps:
            summary.planned.setdefault(step.action, 0)
            batch: list[str] = []
            async for entry in select(step.selection):
                entry_id = entry.id
                if step.action in seen:
                    if entry_id in seen[step.action]:
                        continue
                    seen[step.action].add(entry_id)
                job = ArchiveJob(run, step.action, entry_id, apply, report, step.then)
                batch.append(job.to_json())
                summary.planned[step.action] += 1
                if len(batch) == BATCH:
                    await send(batch)
                    batch = []
            if batch:
                await send(batch)
            await settle(0)
    finally:
        for task in in_flight:
            task.cancel()
        if in_flight:
            await asyncio.gather(*in_flight, return_exceptions=True)
    return summary
