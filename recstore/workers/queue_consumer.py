"""The SQS job loop shared by every queue-driven worker (transfers now, archive actions later).

Rules, in the order a message meets them:

* Receive no more messages than there are free slots, by long poll, so a message is never held
  hidden while it waits for a slot.
* Decode each message into the worker's typed job as it arrives, once. One that does not
  decode (:class:`~recstore.common.errors.PermanentJobError`) goes to the dead-letter queue
  with the reason at once and never takes a slot: the handler only ever sees decoded jobs.
* While a job runs, a heartbeat extends the message's visibility: first before the poll's
  short claim ends (at half of it), then every third of the window. A job done within half
  the claim (a short recording's) never needs an extension: a request per job saved.
* Success: delete the message (shielded from cancellation, so a finished job is never redone
  because shutdown raced the delete).
* :class:`~recstore.common.errors.PermanentJobError`: send the body to the dead-letter queue
  with the reason as message attributes, then delete it from the work queue. Nothing else is
  disturbed.
* Any other failure: hand the message back with a visibility delay that grows with its receive
  count (or, for a :class:`~recstore.common.errors.JobError` that says when, its ``retry_after``);
  the queue's redrive policy moves a message that keeps failing to the dead-letter queue.
* Cancellation (the grace period ended): hand the message back at once (visibility 0).

Stopping cancels an open long poll at once, so an idle worker returns in milliseconds. SQS
keeps serving a poll whose caller went away and may hand it a message nobody will process, so
every poll claims what it takes for ``claim_seconds`` only (a few seconds) and the consumer
extends each message it really got to the full window before that claim ends (the job's
heartbeat): what an abandoned poll took is visible again after the claim, a message handed
back at stop is never hidden for a window. An extension that fails is logged; the heartbeat
tries again at its next beat, and should the claim lapse meanwhile, another consumer may
run the job too: jobs are safe to run twice (a transfer finds its marked copy, and of two
copies made at once the later removes itself).

While SQS itself cannot be reached, the worker reports unhealthy and polls again with backoff.
It also reports unhealthy while its jobs fail on a remote (S3, DRACOON, the configurator: a
:class:`~recstore.common.errors.RemoteError` after the client's own retries, that says the remote is
down or refuses the account, see :func:`says_remote_down`), as the monitor's contract asks,
and healthy again once a job of the same scope succeeds (the scope is the worker's to say,
e.g. the instance, whose account may be the failing part: a success of another instance says
nothing about it), or once the remote answers the worker's probe (asked every
``probe_interval`` while no job retries it). While a message that failed so is tried again, the
report stands. With no such message left, because the queue's redrive policy moved it to the
dead-letter queue, the report lapses after the longest retry delay plus a visibility window,
in which a failed message would have come back. A job that fails for good, or fails on an
answer about its own objects (NoSuchKey), clears the report its earlier attempts set: one
user deleting one recording does not make the daemon unhealthy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from recstore.clients.sqs import Message, SqsQueue
from recstore.common import events, metrics
from recstore.common.aio import sleep_unless
from recstore.common.errors import (
    ArchivedObject,
    JobError,
    NotFound,
    PermanentJobError,
    RemoteError,
)
from recstore.settings.workers import ArchiveActionsSettings, FileTransfererSettings
from recstore.workers.base import WorkerHealth

log = logging.getLogger(__name__)

J = TypeVar("J")
#: Runs one decoded job; its message is there for its receive count and attributes.
Handler = Callable[[J, Message], Awaitable[None]]
#: Asks ``remote`` whether it answers again for ``scope`` (e.g. a DRACOON login of the
#: instance's account): True when it does, False when the probe cannot tell.
Probe = Callable[[str, str], Awaitable[bool]]
T = TypeVar("T")
#: The ``outcome`` label values of ``recstore_jobs_total``.
#: ``done_undeleted``: the job is done but its message's delete failed (SQS down); the message
#: comes back after its window and the job is found done then.
OUTCOMES = ("done", "done_undeleted", "retried", "dead_lettered", "handed_back")
#: The health concerns of a consumer: its poll of SQS, and the remotes its jobs need.
POLL, JOBS = "poll", "jobs"


def queue_name(url: str) -> str:
    """The queue's name from its URL (``.../123456789012/recordings`` → ``recordings``)."""
    return url.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class ConsumerSettings:
    concurrency: int
    visibility_timeout: int = 120
    wait_seconds: int = 20
    retry_delay_base: int = 30
    retry_delay_max: int = 900
    #: How long a poll hides what it takes before the job's heartbeat extends it to the window
    #: (at half of it): all a message loses when the poll that took it was abandoned at stop.
    claim_seconds: int = 5
    poll_backoff_initial: float = 1.0
    #: Short, so the first poll after an SQS outage comes seconds after SQS is back.
    poll_backoff_max: float = 5.0
    #: How often a remote that jobs failed on is probed while no job retries it.
    probe_interval: float = 30.0

    @classmethod
    def of(cls, section: FileTransfererSettings | ArchiveActionsSettings) -> ConsumerSettings:
        """The consumer's part of a queue worker's configuration section."""
        return cls(
            concurrency=section.count,
            visibility_timeout=section.visibility_timeout,
            wait_seconds=section.wait_time_seconds,
            retry_delay_base=section.retry_delay,
            retry_delay_max=section.retry_delay_max,
        )


def retry_delay(receive_count: int, settings: ConsumerSettings) -> int:
    """Seconds before a failed message is seen again: base x 2^(n-1), capped."""
    exponent = min(max(receive_count - 1, 0), 16)
    return int(min(settings.retry_delay_base * 2**exponent, settings.retry_delay_max))


class QueueConsumer(Generic[J]):
    """Decodes each message of ``queue`` and runs ``handler`` on it, with bounded concurrency."""

    def __init__(
        self,
        name: str,
        queue: SqsQueue,
        dead_letter: SqsQueue,
        decode: Callable[[Message], J],
        handler: Handler[J],
        settings: ConsumerSettings,
        health: WorkerHealth,
        job_id: Callable[[J], str] | None = None,
        scope: Callable[[J], str] | None = None,
        failure_event: Callable[[BaseException], events.Event] | None = None,
        probe: Probe | None = None,
    ) -> None:
        self.name = name
        self._queue = queue
        self._dead_letter = dead_letter
        #: The message's body → the worker's job; PermanentJobError for one that never will.
        self._decode = decode
        self._handler = handler
        self._settings = settings
        self._health = health
        #: The job's id for log lines and the status page (the message id when not given).
        self._job_id = job_id
        #: Job → the scope of its jobs' remote failures (one for all when not given).
        self._scope = scope or (lambda job: "")
        #: The event code of a failed job's line: the worker's to say which part failed (seed
        #: 004 logs an S3 refusal as 15011, an instance's configuration as 15013).
        self._failure_event = failure_event or (lambda exc: events.TRANSFER_ERROR)
        #: Messages whose last attempt failed on a remote → the health concern it set.
        self._failed_on_remote: dict[str, str] = {}
        self._probe = probe
        #: A failing concern → the remote its last failure named, and when it was probed.
        self._remote_of: dict[str, str] = {}
        self._probed_at: dict[str, float] = {}
        self._probes: dict[str, asyncio.Task[None]] = {}
        self.in_flight: dict[str, asyncio.Task[None]] = {}
        #: Messages that did not decode, on their way to the dead-letter queue (no slot).
        self._refusing: set[asyncio.Task[None]] = set()
        #: message id → job id of the running jobs, for the status page.
        self.job_ids: dict[str, str] = {}
        #: Metrics name the SQS queue itself (the last segment of its URL), as the console does.
        self._queue_label = queue_name(queue.url)
        # Every series exists from the start at 0, so rates and alerts work before the first job.
        for outcome in OUTCOMES:
            metrics.JOBS.labels(worker=name, outcome=outcome)
        for counter in (metrics.SQS_RECEIVED, metrics.SQS_DELETED, metrics.SQS_DEAD_LETTERED):
            counter.labels(queue=self._queue_label)
        metrics.JOBS_IN_FLIGHT.labels(worker=name).set(0)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop``; then wait for running jobs (the supervisor bounds the wait).

        A long poll still open when ``stop`` comes is cancelled: what SQS gives it after we
        left is hidden for ``claim_seconds`` only (see the module docstring). A poll that had
        already answered has its messages handed back.
        """
        backoff = self._settings.poll_backoff_initial
        poll: asyncio.Task[list[Message]] | None = None
        try:
            while not stop.is_set():
                free = self._settings.concurrency - len(self.in_flight)
                if free <= 0:
                    await _first_of(self._slot_freed(), stop.wait())
                    continue
                poll = asyncio.create_task(self._receive(free))
                stopper = asyncio.ensure_future(stop.wait())
                try:
                    await asyncio.wait([poll, stopper], return_when=asyncio.FIRST_COMPLETED)
                finally:
                    stopper.cancel()
                if not poll.done():
                    break  # stopping: the open poll is cancelled below, before any hand-back
                finished, poll = poll, None
                try:
                    messages = finished.result()
                except RemoteError as exc:
                    self._health.failing(f"SQS unreachable: {exc}", POLL)
                    events.emit(log, events.SQS_ERROR, "receive failed: %s", exc)
                    await sleep_unless(stop, backoff)
                    backoff = min(backoff * 2, self._settings.poll_backoff_max)
                    continue
                backoff = self._settings.poll_backoff_initial
                self._health.ok(POLL)
                self._lapse_job_failures()
                self._start_probes()
                for message in messages:
                    self._admit(message)
            if poll is not None:
                await self._abandon_poll(poll)
                poll = None
            waiting: list[asyncio.Future[Any]] = [*self.in_flight.values(), *self._refusing]
            if waiting:
                await asyncio.wait(waiting)
        finally:
            if poll is not None and not poll.done():
                poll.cancel()
            probes = list(self._probes.values())
            for probe in probes:
                probe.cancel()
            if probes:
                await asyncio.wait(probes)
            await self._cancel_all()

    async def _abandon_poll(self, poll: asyncio.Task[list[Message]]) -> None:
        """Cancel a poll open at stop; hand back what it brought if it had answered."""
        if not poll.done():
            poll.cancel()
        await asyncio.wait([poll])  # raises only when this task itself is cancelled
        if poll.cancelled() or poll.exception() is not None:
            return
        messages = poll.result()
        for message in messages:
            await _shielded(self._queue.change_visibility(message, 0))
        if messages:
            events.emit(
                log,
                events.WORKER_STATUS,
                "%d message(s) received while stopping, handed back",
                len(messages),
            )

    async def _receive(self, free: int) -> list[Message]:
        """Poll with a short claim; each job's heartbeat extends its message before the claim
        ends (:meth:`_heartbeat`), so a job done sooner costs no extension."""
        messages = await self._queue.receive(
            free, self._settings.wait_seconds, self._settings.claim_seconds
        )
        metrics.SQS_RECEIVED.labels(queue=self._queue_label).inc(len(messages))
        return messages

    async def _slot_freed(self) -> None:
        await asyncio.wait(list(self.in_flight.values()), return_when=asyncio.FIRST_COMPLETED)

    def _admit(self, message: Message) -> None:
        """Decode the message: a job takes a slot, one that does not decode is dead-lettered
        beside the running jobs, without one."""
        try:
            job = self._decode(message)
        except Exception as exc:
            task = asyncio.create_task(
                self._refuse(message, exc), name=f"{self.name}:refuse:{message.message_id}"
            )
            self._refusing.add(task)
            task.add_done_callback(self._refusing.discard)
            return
        self._start(message, job)

    async def _refuse(self, message: Message, exc: Exception) -> None:
        """Dead-letter a message that does not decode, with the reason. A decoder that fails
        otherwise (a fault of ours, not of the message) hands it back, as a failed job."""
        token = events.job_var.set(f"message {message.message_id}")
        try:
            if isinstance(exc, PermanentJobError):
                await self._dead_letter_for_good(message, exc, lambda action: action)
                return
            delay = retry_delay(message.receive_count, self._settings)
            await _shielded(self._queue.change_visibility(message, delay))
            metrics.JOBS.labels(worker=self.name, outcome="retried").inc()
            events.emit(
                log,
                self._failure_event(exc),
                "message could not be decoded, retried in %d s (attempt %d): %s",
                delay,
                message.receive_count,
                exc,
                exc_info=exc,
            )
        finally:
            events.job_var.reset(token)

    def _start(self, message: Message, job: J) -> None:
        task = asyncio.create_task(
            self._process(message, job), name=f"{self.name}:{message.message_id}"
        )
        self.in_flight[message.message_id] = task
        metrics.JOBS_IN_FLIGHT.labels(worker=self.name).set(len(self.in_flight))
        task.add_done_callback(lambda t: self._reap(message.message_id, t))

    def _reap(self, message_id: str, task: asyncio.Task[None]) -> None:
        self.in_flight.pop(message_id, None)
        self.job_ids.pop(message_id, None)
        metrics.JOBS_IN_FLIGHT.labels(worker=self.name).set(len(self.in_flight))
        if not task.cancelled() and task.exception() is not None:
            log.error("job task failed unexpectedly", exc_info=task.exception())

    async def _cancel_all(self) -> None:
        tasks = [*self.in_flight.values(), *self._refusing]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    async def _process(self, message: Message, decoded: J) -> None:
        job = message.message_id if self._job_id is None else self._job_id(decoded)
        scope = self._scope(decoded)
        concern = f"{JOBS}:{scope}"
        self.job_ids[message.message_id] = job
        token = events.job_var.set(job)
        beating = asyncio.Event()
        heartbeat = asyncio.create_task(self._heartbeat(message, beating))

        async def acknowledge(action: Awaitable[None]) -> None:
            # The heartbeat finishes its in-flight extension first: SQS would apply one that
            # arrives after the hand-back and hide the message again for a whole window.
            beating.set()
            with contextlib.suppress(Exception):
                await heartbeat
            await action

        started = time.monotonic()
        try:
            await self._handler(decoded, message)
        except asyncio.CancelledError:
            await _shielded(acknowledge(self._queue.change_visibility(message, 0)))
            metrics.JOBS.labels(worker=self.name, outcome="handed_back").inc()
            events.emit(log, events.WORKER_STATUS, "job handed back to the queue", job_id=job)
            raise
        except PermanentJobError as exc:
            await self._dead_letter_for_good(message, exc, acknowledge)
        except Exception as exc:
            if isinstance(exc, RemoteError) and says_remote_down(exc):
                self._failed_on_remote[message.message_id] = concern
                self._remote_of[concern] = exc.remote
                jobs = f"jobs of {scope}" if scope else "jobs"
                self._health.failing(f"{jobs} fail on {exc.remote}: {exc}", concern)
            else:  # e.g. its source deleted mid-transfer: the remote answered, about this job
                self._forget_failure(message.message_id)
            delay = retry_delay(message.receive_count, self._settings)
            if isinstance(exc, JobError) and exc.retry_after is not None:
                delay = int(min(max(exc.retry_after, 1), self._settings.retry_delay_max))
            await _shielded(acknowledge(self._queue.change_visibility(message, delay)))
            metrics.JOBS.labels(worker=self.name, outcome="retried").inc()
            events.emit(
                log,
                self._failure_event(exc),
                "job failed, retried in %d s (attempt %d): %s",
                delay,
                message.receive_count,
                exc,
                # A traceback for a bug only: a RemoteError or a JobError says what went wrong.
                exc_info=not isinstance(exc, RemoteError | JobError),
            )
        else:
            self._failed_on_remote.pop(message.message_id, None)
            self._health.ok(concern)
            seconds = round(time.monotonic() - started, 3)
            if await _shielded(acknowledge(self._queue.delete(message))):
                metrics.SQS_DELETED.labels(queue=self._queue_label).inc()
                metrics.JOBS.labels(worker=self.name, outcome="done").inc()
                events.emit(log, events.TRANSFER_STATUS, "job done", seconds=seconds)
            else:
                metrics.JOBS.labels(worker=self.name, outcome="done_undeleted").inc()
                events.emit(
                    log,
                    events.SQS_ERROR,
                    "job done but its message could not be deleted; it comes back after "
                    "visibilityTimeout and is found done then",
                    seconds=seconds,
                )
        finally:
            heartbeat.cancel()
            events.job_var.reset(token)

    async def _dead_letter_for_good(
        self,
        message: Message,
        exc: PermanentJobError,
        acknowledge: Callable[[Awaitable[None]], Awaitable[None]],
    ) -> None:
        """Move a message that can never succeed to the dead-letter queue, with the reason."""
        self._forget_failure(message.message_id)  # one job's fault, not a remote's
        if await _shielded(acknowledge(self._dead_letter_and_delete(message, str(exc)))):
            metrics.JOBS.labels(worker=self.name, outcome="dead_lettered").inc()
            events.emit(
                log, self._failure_event(exc), "job moved to the dead-letter queue: %s", exc
            )
        else:  # still (or also) in the work queue: it comes back and fails the same way
            metrics.JOBS.labels(worker=self.name, outcome="retried").inc()
            events.emit(
                log,
                self._failure_event(exc),
                "job failed for good (%s) but was not moved to the dead-letter queue; "
                "it comes back after visibilityTimeout",
                exc,
            )

    def _forget_failure(self, message_id: str) -> None:
        """The message's last failure was not the remote's: drop the concern it set, unless
        another message's failure holds it too."""
        concern = self._failed_on_remote.pop(message_id, None)
        if concern is not None and concern not in self._failed_on_remote.values():
            self._health.ok(concern)

    def _start_probes(self) -> None:
        """Probe each remote jobs failed on, every ``probe_interval``, while no job retries it:
        a remote that answers again recovers then, not only with the next job's success."""
        if self._probe is None:
            return
        retried = {self._failed_on_remote.get(message_id) for message_id in self.in_flight}
        now = self._health.clock()
        failing = self._health.failing_concerns()
        for recovered in [c for c in self._probed_at if c not in failing]:
            del self._probed_at[recovered]  # a new failure waits a whole interval again
        for concern in failing:
            remote = self._remote_of.get(concern)
            if remote is None or concern in retried or concern in self._probes:
                continue
            if now - self._probed_at.setdefault(concern, now) < self._settings.probe_interval:
                continue
            self._probed_at[concern] = now
            self._probes[concern] = asyncio.create_task(self._probe_once(concern, remote))

    async def _probe_once(self, concern: str, remote: str) -> None:
        assert self._probe is not None
        scope = concern.removeprefix(f"{JOBS}:")
        try:
            answers = await self._probe(scope, remote)
        except Exception as exc:  # still down: the report stands
            log.debug("probe of %s for %r failed: %s", remote, scope, exc)
            return
        finally:
            self._probes.pop(concern, None)
        if answers and concern in self._health.failing_concerns():
            self._health.ok(concern)
            self._probed_at.pop(concern, None)
            for message_id, set_by in list(self._failed_on_remote.items()):
                if set_by == concern:
                    del self._failed_on_remote[message_id]
            jobs = f"jobs of {scope}" if scope else "jobs"
            events.emit(log, events.WORKER_STATUS, "%s: %s answers again", jobs, remote)

    def _lapse_job_failures(self) -> None:
        """Drop a remote's failure that no job has repeated for as long as a retry can take."""
        longest = self._settings.retry_delay_max + self._settings.visibility_timeout
        retried = {self._failed_on_remote.get(message_id) for message_id in self.in_flight}
        for concern in self._health.failing_concerns():
            if not concern.startswith(f"{JOBS}:"):
                continue
            if concern in retried:  # one that failed so is being tried again: not quiet
                self._health.renew(concern)
            elif (self._health.quiet_for(concern) or 0.0) > longest:
                self._health.ok(concern)
                for message_id, set_by in list(self._failed_on_remote.items()):
                    if set_by == concern:
                        del self._failed_on_remote[message_id]

    async def _dead_letter_and_delete(self, message: Message, reason: str) -> None:
        attributes = {
            "reason": reason,
            "source_message_id": message.message_id,
            "receive_count": str(message.receive_count),
            "worker": self.name,
        }
        await self._dead_letter.send(message.body, attributes)
        metrics.SQS_DEAD_LETTERED.labels(queue=self._queue_label).inc()
        await self._queue.delete(message)
        metrics.SQS_DELETED.labels(queue=self._queue_label).inc()

    async def _heartbeat(self, message: Message, done: asyncio.Event) -> None:
        """Extend visibility until ``done``: first at half the poll's claim, then every third
        of the window; never cut mid-request."""
        window = self._settings.visibility_timeout
        beat = min(self._settings.claim_seconds / 2, window / 3)
        while not await sleep_unless(done, beat):
            beat = window / 3
            try:
                await self._queue.change_visibility(message, window)
            except RemoteError as exc:
                events.emit(log, events.SQS_ERROR, "visibility extension failed: %s", exc)


#: Statuses that say the remote is there and refuses the job's own request (a missing object,
#: a conflict, a bad request): the job's fault, not the remote's. 401/403 (the account),
#: 408/429 and 5xx say the remote is unusable for every job of the scope.
_JOB_STATUSES = frozenset(range(400, 500)) - {401, 403, 408, 429}
#: Kinds of a failure about the job's objects when no status says so.
_JOB_KINDS = (NotFound, ArchivedObject)


def says_remote_down(exc: RemoteError) -> bool:
    """Whether a job's failure says its remote is down (health red) or only that the job
    cannot succeed there (e.g. NoSuchKey: its recording was deleted mid-transfer)."""
    if exc.transient:
        return True
    if exc.status is not None:
        return exc.status not in _JOB_STATUSES
    return not isinstance(exc, _JOB_KINDS)


async def _first_of(work: Awaitable[T], stop: Awaitable[object]) -> T | None:
    """Await ``work`` unless ``stop`` completes first (then ``work`` is cancelled, None)."""
    work_task = asyncio.ensure_future(work)
    stop_task = asyncio.ensure_future(stop)
    try:
        await asyncio.wait([work_task, stop_task], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop_task.cancel()
    if work_task.done():
        return work_task.result()
    work_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await work_task
    return None


async def _shielded(work: Awaitable[None]) -> bool:
    """Finish ``work`` even if the caller is being cancelled; whether it succeeded.

    A failure is logged, not raised: SQS gives the message back after its visibility window
    either way, so the caller only decides what to report.
    """
    task = asyncio.ensure_future(work)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await task
        raise
    except RemoteError as exc:
        events.emit(log, events.SQS_ERROR, "queue acknowledgement failed: %s", exc)
        return False
    return True
