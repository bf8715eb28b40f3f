"""Archiver: seed 002's archive job as a scheduled plan, under a singleton lease.

Every ``workers.Archiver.intervalMinutes`` one replica (the lease holder) lists the entries
not played for ``unplayedFor`` years and enqueues ``s3copy`` (then ``replace-video``) for
those not archived yet and ``replace-video`` for those archived but still holding their
video; the ArchiveActions pools of all replicas do the work. Dry run unless
``workers.Archiver.apply``: the messages then only report what would be done.

Each run writes ``plan.tsv`` (how many entries per action) under
``<archive.reportPrefix>YYYY/MM/<run>/``, where the workers add their outcome rows.
:class:`ArchivePlanner` is shared with the Restorer.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime

from recstore.archive import inventory
from recstore.archive.filters import Selection
from recstore.archive.plan import (
    PLAN_COLUMNS,
    PlanStep,
    PlanSummary,
    archive_steps,
    plan,
    report_prefix,
    run_id,
)
from recstore.archive.report import RowWriter
from recstore.archive.states import ArchiveTags
from recstore.clients.kaltura_types import KalturaMediaEntry
from recstore.clients.sqs import SqsQueue
from recstore.common import events
from recstore.settings import ArchiveWorkerSettings, Settings
from recstore.workers.archive_context import (
    archive_bucket,
    archive_context,
    archive_requires,
    archive_tags,
)
from recstore.workers.base import WorkerHealth, WorkerSpec
from recstore.workers.periodic import PeriodicWorker, job_lease
from recstore.workers.resources import Resources, opened

log = logging.getLogger(__name__)

Steps = Callable[[ArchiveTags], Sequence[PlanStep]]


class ArchivePlanner:
    """A periodic planner: list the steps' entries, enqueue one message each, write plan.tsv."""

    def __init__(
        self,
        settings: Settings,
        resources: Resources | None = None,
        *,
        name: str,
        kind: str,
        config: ArchiveWorkerSettings,
        steps: Steps,
        interval: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.resources = resources
        self.name = name
        self.kind = kind
        self.config = config
        self.steps = steps
        #: Seconds between runs; ``intervalMinutes`` unless a test asks for less.
        self.interval = interval if interval is not None else config.interval_minutes * 60.0
        #: What the schedule reads the time from (a test moves its own to end a period).
        self.clock = clock
        self.health = WorkerHealth()
        self.periodic: PeriodicWorker | None = None
        self.summaries: list[PlanSummary] = []

    def status(self) -> dict[str, object]:
        extra: dict[str, object] = {"apply": self.config.apply}
        if self.summaries:
            last = self.summaries[-1]
            extra["last_plan"] = {"run": last.run_id, "planned": dict(last.planned)}
        periodic_status = getattr(self.periodic, "status", None)
        if callable(periodic_status):
            extra.update(periodic_status())
        return extra

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.settings
        async with (
            opened(self.resources, settings) as resources,
            archive_context(settings, need_s3=True, resources=resources) as context,
        ):
            assert context.s3 is not None
            assert context.bucket is not None
            store, bucket = context.s3, context.bucket
            queue = SqsQueue(await resources.sqs(), settings.queue_url(settings.archive.queue))
            lease = await job_lease(settings, self.name, resources)

            def select(selection: Selection, now: datetime) -> AsyncIterator[KalturaMediaEntry]:
                return inventory.select(context.kaltura, selection, now)

            async def run_once() -> None:
                now = datetime.fromtimestamp(self.clock(), UTC)
                run = run_id(self.kind, now)
                prefix = report_prefix(settings.archive.report_prefix, run, now)
                summary = await plan(
                    self.steps(archive_tags(settings.archive)),
                    lambda selection: select(selection, now),
                    queue,
                    run=run,
                    apply=self.config.apply,
                    report=prefix,
                )
                text = io.StringIO()
                writer = RowWriter(text, PLAN_COLUMNS)
                writer.header()
                for row in summary.rows():
                    writer.row(row)
                await store.put_small(bucket, f"{prefix}plan.tsv", text.getvalue().encode())
                self.summaries = [*self.summaries[-9:], summary]
                events.emit(
                    log,
                    events.ARCHIVE_PLAN,
                    "%s run %s planned %d action(s)%s",
                    self.kind,
                    run,
                    summary.total,
                    "" if self.config.apply else " (dry run)",
                    report=f"s3://{bucket}/{prefix}",
                    planned=",".join(f"{k}:{v}" for k, v in summary.planned.items()),
                )

            # Planning again is harmless (each action checks the entry first), and a run
            # killed mid-way would otherwise leave its remaining entries to the next period.
            self.periodic = PeriodicWorker(
                self.name, self.interval, run_once, lease, self.clock, redo_unfinished=True
            )
            self.periodic.health = self.health
            await self.periodic.run(stop)


class Archiver(ArchivePlanner):
    """``workers.Archiver``: plans seed 002's archive job."""

    def __init__(
        self,
        settings: Settings,
        resources: Resources | None = None,
        interval: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        config = settings.workers.archiver

        def steps(tags: ArchiveTags) -> Sequence[PlanStep]:
            return archive_steps(tags, config.unplayed_for, config.max_entries)

        super().__init__(
            settings,
            resources,
            name="archiver",
            kind="archive",
            config=config,
            steps=steps,
            interval=interval,
            clock=clock,
        )


SPEC = WorkerSpec(
    name="Archiver",
    section="archiver",
    build=Archiver,
    singleton=True,
    sends_to=lambda settings: settings.archive.queue,
    reaches=lambda settings: ["Kaltura"],
    requires=archive_requires,
    uses=archive_bucket,
)
