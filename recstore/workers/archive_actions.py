"""ArchiveActions: the pool that does the planned per-entry archive actions, on every replica.

Wiring only. The queue loop is :class:`~recstore.workers.queue_consumer.QueueConsumer` (the
same heartbeat, hand-back, retry and dead-letter rules as transfers), the message format is
:mod:`recstore.archive.plan`, the rules of each action are
:class:`~recstore.archive.actions.Archivist`. Per message:

* malformed → dead-letter queue at once;
* the action's outcome is written to the run's report (see :class:`ReportSink`) and logged;
* FAILED and transient (a remote down, a timeout) → handed back, tried again later (an entry
  held by another worker: after the entry lock's TTL), and after the queue's
  ``maxReceiveCount`` moved to the dead-letter queue by SQS; FAILED and permanent
  → dead-letter queue with the reason;
* DONE (or DONE_BEFORE) of an ``s3copy`` planned with ``then`` → the ``replace-video`` message
  for the same entry is enqueued before this one is deleted.

Every action checks the entry's state first, so a redelivered message is DONE_BEFORE, not a
second change; and an applied action holds the entry's lock
(:class:`~recstore.workers.leases.EntryLocks`), so a duplicate delivered while the first is
still running is not done beside it: it is handed back until the lock is let go or has run out
(the lock's TTL), and then found done. The lock may be a dead worker's (SIGKILL mid-action), so
the duplicate never simply stands back.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

from recstore.archive.actions import (
    DEFAULT_PLACEHOLDER,
    OUTCOME_COLUMNS,
    ActionResult,
    ArchiveRules,
    Archivist,
    Outcome,
    Placeholder,
)
from recstore.archive.plan import ArchiveJob, parse_job
from recstore.archive.report import RowWriter
from recstore.clients.s3 import S3Store
from recstore.clients.sqs import Message, SqsQueue
from recstore.common import events, metrics
from recstore.common.aio import sleep_unless
from recstore.common.errors import JobError, PermanentJobError, RemoteError
from recstore.settings import Settings
from recstore.workers.archive_context import (
    ArchiveContext,
    archive_bucket,
    archive_context,
    archive_queues,
    archive_requires,
    archive_tags,
    entry_locks,
    size_rule,
)
from recstore.workers.base import WorkerHealth, WorkerSpec
from recstore.workers.leases import holder_id
from recstore.workers.queue_consumer import ConsumerSettings, QueueConsumer
from recstore.workers.resources import Resources, opened

log = logging.getLogger(__name__)
NAME = "archive_actions"
#: Columns of the run reports the workers write: the CLI's, plus the run and the attempt.
REPORT_COLUMNS = ("run", *OUTCOME_COLUMNS, "attempt")


def rules_from(settings: Settings) -> ArchiveRules:
    """The archive rules of the configuration (``archive.*``), read once."""
    archive = settings.archive
    placeholder = Placeholder.of(archive.placeholder_video or DEFAULT_PLACEHOLDER)
    return ArchiveRules(
        bucket=archive.bucket or "",
        tags=archive_tags(archive),
        sizes=size_rule(archive),
        storage_class=archive.storage_class,
        part_size=archive.part_size,
        exempt_tag=archive.exempt_tag,
        placeholder=placeholder,
        thumbnail_offset=archive.thumbnail_offset,
        verify_before_replace=archive.verify_before_replace,
        ready_timeout=archive.ready_timeout,
        ready_poll=archive.ready_poll,
        restore_days=archive.restore_days,
        restore_tier=archive.restore_tier,
        restore_mode=archive.restore_mode,
        url_expiry=int(archive.url_expiry),
    )


def archivist_for(context: ArchiveContext) -> Archivist:
    """The rules of ``archive.*`` over the context's clients, taking per-entry locks."""
    assert context.s3 is not None, "archive actions need S3 (archive_context(need_s3=True))"
    settings = context.settings
    return Archivist(
        context.kaltura,
        context.s3,
        rules_from(settings),
        guard=entry_locks(settings, context.s3),
    )


def log_result(result: ActionResult, run: str | None = None) -> None:
    """One event per entry (15022, or 15023 for FAILED) and the outcome counter."""
    metrics.ARCHIVE_ACTIONS.labels(action=result.action, outcome=result.outcome.value).inc()
    failed = result.outcome is Outcome.FAILED
    events.emit(
        log,
        events.ARCHIVE_ERROR if failed else events.ARCHIVE_STATUS,
        "%s %s: %s %s",
        result.action,
        result.entry_id,
        result.outcome.value,
        result.reason,
        run=run or "cli",
        mode="apply" if result.applied else "dry-run",
        bytes=result.bytes,
        seconds=result.seconds,
    )


class ReportSink:
    """Collects outcome rows per run and writes them to S3 as TSV parts.

    Workers of every replica report into the same run, so each writes its own parts,
    ``<prefix><holder>-<n>.tsv`` (header included), every ``max_rows`` rows or ``max_age``
    seconds, and on stop. The run's report is all parts under its prefix.
    """

    def __init__(
        self,
        store: S3Store,
        bucket: str,
        holder: str | None = None,
        *,
        max_rows: int = 1000,
        max_age: float = 30.0,
    ) -> None:
        self._store = store
        self._bucket = bucket
        self._holder = (holder or holder_id()).replace(":", "-").replace("/", "-")
        self._max_rows = max_rows
        self._max_age = max_age
        self._rows: dict[str, list[Mapping[str, Any]]] = {}
        self._seq = 0
        self._lock = asyncio.Lock()
        self.written: list[str] = []

    def add(self, prefix: str, row: Mapping[str, Any]) -> None:
        self._rows.setdefault(prefix, []).append(row)

    @property
    def pending(self) -> int:
        return sum(len(rows) for rows in self._rows.values())

    async def flush(self) -> None:
        """Write every buffered row; rows that cannot be written stay for the next flush.

        Rows leave the buffer only once their part is written, so a flush that fails, or is
        cancelled mid-write (the worker stopping while a periodic flush runs), leaves them for
        the next one: a row written twice is better than a row lost.
        """
        async with self._lock:
            for prefix in list(self._rows):
                rows = list(self._rows[prefix])  # more may be added while the part is written
                self._seq += 1
                key = f"{prefix}{self._holder}-{self._seq:06d}.tsv"
                text = io.StringIO()
                writer = RowWriter(text, REPORT_COLUMNS)
                writer.header()
                for row in rows:
                    writer.row(row)
                try:
                    await self._store.put_small(self._bucket, key, text.getvalue().encode())
                except RemoteError as exc:
                    events.emit(log, events.ARCHIVE_ERROR, "report part not written: %s", exc)
                    return
                del self._rows[prefix][: len(rows)]
                if not self._rows[prefix]:
                    del self._rows[prefix]
                self.written.append(key)

    async def run(self, stop: asyncio.Event) -> None:
        """Flush every ``max_age`` seconds (or sooner when full) until ``stop``."""
        last = time.monotonic()
        while not stop.is_set():
            await sleep_unless(stop, 1.0)
            if self.pending >= self._max_rows or time.monotonic() - last >= self._max_age:
                await self.flush()
                last = time.monotonic()


class ArchiveActions:
    """The pool: ``workers.ArchiveActions.count`` entries at once from the archive queue."""

    name = NAME

    def __init__(
        self, settings: Settings, resources: Resources | None = None, *, report_age: float = 30.0
    ) -> None:
        self.settings = settings
        self.resources = resources
        self.health = WorkerHealth()
        self.consumer: QueueConsumer[ArchiveJob] | None = None
        self.sink: ReportSink | None = None
        #: Outcomes of this replica's pool since start, for the status page and tests.
        self.outcomes: Counter[str] = Counter()
        self._report_age = report_age

    def status(self) -> dict[str, Any]:
        jobs = sorted(getattr(self.consumer, "job_ids", {}).values())
        return {"in_flight": [{"job_id": job} for job in jobs], "outcomes": dict(self.outcomes)}

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.settings
        config = settings.workers.archive_actions
        archive = settings.archive
        async with (
            opened(self.resources, settings) as resources,
            archive_context(settings, need_s3=True, resources=resources) as context,
        ):
            sqs = await resources.sqs()
            assert context.s3 is not None
            assert context.bucket is not None
            archivist = archivist_for(context)
            work = SqsQueue(sqs, settings.queue_url(archive.queue))
            dead = SqsQueue(sqs, settings.queue_url(archive.dead_letter_queue))
            sink = self.sink = ReportSink(context.s3, context.bucket, max_age=self._report_age)

            async def handle(job: ArchiveJob, message: Message) -> None:
                result = await archivist.run(job.action, job.entry_id, apply=job.apply)
                self.outcomes[result.outcome.value] += 1
                log_result(result, job.run_id)
                sink.add(
                    job.report_prefix,
                    {**result.row(), "run": job.run_id, "attempt": message.receive_count},
                )
                if result.outcome is Outcome.FAILED:
                    if result.transient:
                        raise JobError(result.reason, retry_after=result.retry_after)
                    raise PermanentJobError(result.reason)
                follow = job.follow_up()
                if (
                    follow is not None
                    and job.apply
                    and result.outcome in (Outcome.DONE, Outcome.DONE_BEFORE)
                ):
                    await work.send(follow.to_json())

            self.consumer = QueueConsumer(
                self.name,
                work,
                dead,
                lambda message: parse_job(message.body),
                handle,
                ConsumerSettings.of(config),
                self.health,
                job_id=lambda job: job.job_id,
            )
            flusher = asyncio.create_task(sink.run(stop), name=f"{self.name}:report")
            try:
                await self.consumer.run(stop)
            finally:
                flusher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await flusher
                with contextlib.suppress(Exception):
                    await asyncio.shield(sink.flush())


SPEC = WorkerSpec(
    name="ArchiveActions",
    section="archive_actions",
    build=ArchiveActions,
    singleton=False,
    consumes=archive_queues,
    reaches=lambda settings: ["Kaltura"],
    requires=archive_requires,
    uses=archive_bucket,
)
