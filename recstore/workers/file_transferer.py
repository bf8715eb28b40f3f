"""FileTransferer: SQS job messages → S3 recordings → DRACOON rooms (seed 004).

Wiring only: the queue loop is :class:`~recstore.workers.queue_consumer.QueueConsumer`, the
rules of a job are :class:`~recstore.transfer.transferer.Transferer`, the message format is
:mod:`recstore.transfer.job`. Each message: decode it as it arrives (malformed → dead-letter
queue, before it takes a slot), resolve the instance (YAML ``instances:``, then the
configurator), plan its rooms (the message's own, else the instance's targets), and run the
transfer with the instance's DRACOON account. The message is deleted only after the job completed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from contextlib import AsyncExitStack
from typing import Any

from recstore.clients.configurator import REMOTE as CONFIGURATOR
from recstore.clients.configurator import ConfiguratorClient
from recstore.clients.dracoon import DracoonClient
from recstore.clients.dracoon_rooms import DracoonDestination, RoomPaths
from recstore.clients.dracoon_wire import REMOTE as DRACOON
from recstore.clients.s3 import REMOTE as S3
from recstore.clients.s3 import S3Store
from recstore.clients.sqs import Message, SqsQueue
from recstore.common import events
from recstore.common.errors import NotFound, RemoteError, Unauthorised
from recstore.common.progress import PROGRESS
from recstore.common.source_rules import SOURCE_BUCKETS_KEY, parse_rules
from recstore.settings import Settings, protected_buckets
from recstore.transfer.channels import ChannelLog
from recstore.transfer.instances import InstanceConfigurationError, InstanceResolver, targets_for
from recstore.transfer.job import TransferJob, parse_job
from recstore.transfer.rooms import plan_targets
from recstore.transfer.sources import SourcePolicy
from recstore.transfer.transferer import Transferer, TransferReport, TransferRequest
from recstore.workers.accounts import AccountPool, ServedInstances
from recstore.workers.base import Problem, WorkerHealth, WorkerSpec, unknown_queues
from recstore.workers.queue_consumer import ConsumerSettings, QueueConsumer
from recstore.workers.resources import Resources, opened

log = logging.getLogger(__name__)


class TransferService:
    """Everything a transfer needs, opened once: used by the worker and by ``recstore transfer``.

    ``resources``: the daemon's shared connections; without, it opens its own.
    """

    def __init__(self, settings: Settings, resources: Resources | None = None) -> None:
        self.settings = settings
        self._resources = resources
        self._stack = AsyncExitStack()
        self.s3: S3Store | None = None
        self.sqs: Any = None
        self.accounts: AccountPool | None = None
        #: Room paths resolved by earlier jobs, for every account (no lookup per job).
        self.rooms = RoomPaths()
        self.resolver: InstanceResolver | None = None
        self.transferer: Transferer | None = None
        self.served: ServedInstances | None = None
        self.sources = SourcePolicy(
            settings.workers.file_transferer.source_buckets, protected_buckets(settings)
        )
        # One job at a time per job id: a producer's re-send, or a redelivery while the first
        # copy still runs, would otherwise upload in parallel, both miss the other's file, and
        # leave two. The second waits, then finds the first's file "already there". (Two
        # daemons can still overlap: the copy that completes later then removes itself.)
        self._running: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        #: The source bucket of each instance's latest job that passed the source checks:
        #: what the S3 probe asks about.
        self._sources_of: dict[str, tuple[str, str]] = {}

    async def __aenter__(self) -> TransferService:
        try:
            return await self._open()
        except BaseException:  # what opened before the failure closes now, not at exit
            await self._stack.aclose()
            raise

    async def _open(self) -> TransferService:
        settings = self.settings
        resources = await self._stack.enter_async_context(opened(self._resources, settings))
        self.s3 = S3Store(await resources.s3())
        self.sqs = await resources.sqs()
        session = await resources.http(DRACOON)
        configurator = (
            ConfiguratorClient(settings.configurator, session)
            if settings.configurator.url
            else None
        )
        self.resolver = InstanceResolver(settings.instances, configurator)
        self.accounts = await resources.accounts()
        self.served = ServedInstances.of(settings, self.s3)
        self.transferer = Transferer(
            self.s3, settings.s3.chunk_size, settings.s3.remove_after_transferring
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def probe(self, domain: str, remote: str) -> bool:
        """Whether ``remote`` answers again for instance ``domain``; False when a probe cannot
        tell. DRACOON: the instance's account reads its own user record (a login and one
        call). S3: a HEAD of the instance's latest source object (one the configuration
        allows: it was checked before; no `s3:ListBucket` needed, and a 404 or 403 is an
        answer too). The configurator: a fresh fetch of the
        instance (not the cache). Raises while the remote does not answer."""
        if self.resolver is None or self.accounts is None:
            return False
        if remote == S3:
            source = self._sources_of.get(domain.lower())
            if source is None or self.s3 is None:
                return False  # no job of it since the start: nothing to ask about
            with contextlib.suppress(NotFound, Unauthorised):  # an answer: S3 is up
                await self.s3.head(*source)
            return True
        if remote == CONFIGURATOR:
            return await self.resolver.configurator_answers(domain)
        if remote != DRACOON:
            return False
        instance = await self.resolver.resolve(domain)
        account = self.accounts.account_for(instance.recordings.dracoon)
        client = await self.accounts.client(account)
        await client.request("GET", "/v4/user/account")
        return True

    async def run_job(self, job: TransferJob, first_delivery: bool = False) -> TransferReport:
        """Run ``job``; ``first_delivery``: its message comes for the first time (SQS's
        receive count), so no earlier attempt of it left upload channels to look for first."""
        lock = self._running.setdefault(job.job_id, asyncio.Lock())
        async with lock:
            return await self._run_job(job, first_delivery)

    async def _run_job(self, job: TransferJob, first_delivery: bool) -> TransferReport:
        assert self.resolver is not None
        assert self.accounts is not None
        assert self.transferer is not None
        domain = job.instance.domain
        # Before anything else, the configurator too: a refused source is final either way.
        self.sources.check(job.bucket, job.keys)
        instance = await self.resolver.resolve(domain)
        self.sources.check(job.bucket, job.keys, instance.recordings.source_buckets)
        self._sources_of[domain.lower()] = (job.bucket, job.keys[0])
        if self.served is not None:  # its account gets the DracoonGlobalSharer's runs too
            await self.served.add(domain)
        dracoon = instance.recordings.dracoon
        meeting_type = job.meeting.type
        rooms = job.rooms or plan_targets(
            targets_for(instance, domain, meeting_type.id, meeting_type.name),
            instance=domain,
            meeting_type=meeting_type.name,
        )
        keys = await self.accounts.keys(self.accounts.account_for(dracoon))
        client = keys.client
        channels = await self._channels(job.job_id, client, first_delivery)
        request = TransferRequest(
            job_id=job.job_id,
            bucket=job.bucket,
            keys=job.keys,
            rooms=rooms,
            parent_room_id=dracoon.parent_room_id,
            first_delivery=first_delivery,
        )
        destination = DracoonDestination(client, keys.private_keys, channels, self.rooms)
        return await self.transferer.run(request, destination)

    async def _channels(
        self, job_id: str, client: DracoonClient, first_delivery: bool
    ) -> ChannelLog | None:
        """The record of the job's upload channels, those an earlier attempt of it left open
        (it was killed mid-upload) cancelled: now, or on a first delivery only where the first
        write finds a record (:class:`ChannelLog`). None when leases are off (no bucket)."""
        leases = self.settings.leases
        if self.s3 is None or not leases.shared or leases.bucket is None:
            return None
        channels = ChannelLog(
            self.s3,
            leases.bucket,
            leases.prefix,
            job_id,
            client.uploads.cancel,
            unrecorded_up_to=self.settings.s3.chunk_size,
        )
        if first_delivery:
            channels.first_attempt()
        else:
            await channels.cancel_left_open()
        return channels


class FileTransferer:
    """The pool: ``workers.FileTransferer.count`` transfers at once from the work queue."""

    name = "file_transferer"

    def __init__(self, settings: Settings, resources: Resources | None = None) -> None:
        self.settings = settings
        self.resources = resources
        self.health = WorkerHealth()
        self.consumer: QueueConsumer[TransferJob] | None = None

    def status(self) -> dict[str, Any]:
        """Running jobs: uploads with their progress, then jobs not uploading right now."""
        uploading = PROGRESS.snapshot(worker=self.name)
        busy = {entry["job_id"] for entry in uploading}
        jobs = sorted(set(self.consumer.job_ids.values())) if self.consumer else []
        waiting = [{"job_id": job} for job in jobs if job not in busy]
        return {"in_flight": uploading + waiting}

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.settings
        config = settings.workers.file_transferer
        events.set_worker_level(self.name, config.report_level)
        async with TransferService(settings, self.resources) as service:
            work = SqsQueue(service.sqs, settings.queue_url(config.queue))
            dead = SqsQueue(service.sqs, settings.queue_url(config.dead_letter_queue))

            async def handle(job: TransferJob, message: Message) -> None:
                report = await service.run_job(job, first_delivery=message.receive_count == 1)
                events.emit(
                    log,
                    events.TRANSFER_STATUS,
                    "job complete: %d uploaded, %d already there, %d keys shared",
                    len(report.uploaded),
                    len(report.already_there),
                    report.keys_shared,
                    job_id=job.job_id,
                    bytes=report.bytes,
                    sources_removed=len(report.sources_removed),
                    twins_removed=len(report.twins_removed),
                )

            self.consumer = QueueConsumer(
                self.name,
                work,
                dead,
                decode_job,
                handle,
                ConsumerSettings.of(config),
                self.health,
                job_id=lambda job: job.job_id,
                scope=lambda job: job.instance.domain,
                failure_event=job_failure_event,
                probe=service.probe,
            )
            await self.consumer.run(stop)


def job_failure_event(exc: BaseException) -> events.Event:
    """The code of a failed job's line, as seed 004 logged the same failure.

    S3 refusing or failing the source: 15011 (Storage error). The instance's configuration
    missing, refused by the configurator or serving no target: 15013 (InstanceJobRunner
    error). Anything else (DRACOON, a malformed message): 15007 (Transferer error).
    """
    if isinstance(exc, RemoteError) and exc.remote == S3:
        return events.STORAGE_ERROR
    if isinstance(exc, InstanceConfigurationError) or (
        isinstance(exc, RemoteError) and exc.remote == CONFIGURATOR
    ):
        return events.INSTANCE_JOB_RUNNER_ERROR
    return events.TRANSFER_ERROR


def decode_job(message: Message) -> TransferJob:
    """The message's job, decoded once as it arrives (malformed: PermanentJobError, so the
    consumer dead-letters it before it takes a slot). Its scope of remote failures is its
    instance: each instance has its own account, whose failure is its own."""
    return parse_job(message.body)


def _requires(settings: Settings) -> list[Problem]:
    """A pool to run jobs in, its queues, and the sources job messages may name."""
    transferer = settings.workers.file_transferer
    problems: list[Problem] = []
    if transferer.count < 1:
        problems.append(("workers.FileTransferer.count", "must be at least 1 when enabled"))
    queues = {"queue": transferer.queue, "deadLetterQueue": transferer.dead_letter_queue}
    problems += unknown_queues(settings, "workers.FileTransferer", queues)
    return problems + _source_checks(settings)


def _source_checks(settings: Settings) -> list[Problem]:
    """The FileTransferer copies and then deletes whatever a message names: it starts only
    with its sources listed, none of them a bucket recstore writes itself."""
    entries = settings.workers.file_transferer.source_buckets
    if entries is None:
        return [
            (
                SOURCE_BUCKETS_KEY,
                "required while the FileTransferer runs: list the buckets (or bucket/prefix) "
                "that job messages may name as their source, e.g. [recordings]",
            )
        ]
    if not entries:
        return [(SOURCE_BUCKETS_KEY, "names no bucket: no job could run (turn the worker off)")]
    protected = protected_buckets(settings)
    return [
        (SOURCE_BUCKETS_KEY, f"{rule.bucket!r} is {protected[rule.bucket]}: never a source")
        for rule in parse_rules(entries)
        if rule.bucket in protected
    ]


def _unconfigured(settings: Settings) -> str:
    """On by default (seed 004), but a configuration with no work queue and no DRACOON
    destination (neither ``configurator.url``, ``instances`` nor ``dracoon.baseUrl``) is one
    for other work, such as the Kaltura archive: then it stays off. Any sign of transfers
    keeps it on, and checked."""
    queue = settings.workers.file_transferer.queue
    has_queue = queue.startswith(("http://", "https://")) or queue in settings.queues
    if has_queue or settings.configurator.url or settings.instances or settings.dracoon.base_url:
        return ""
    return f"no work queue: `queues.{queue}` is not configured"


def _consumes(settings: Settings) -> tuple[str, str]:
    transferer = settings.workers.file_transferer
    return transferer.queue, transferer.dead_letter_queue


def _reaches(settings: Settings) -> list[str]:
    url = settings.configurator.url
    return ["DRACOON", *([f"configurator {url}"] if url else [])]


def _uses(settings: Settings) -> list[str]:
    verbs = "reads and removes" if settings.s3.remove_after_transferring else "reads"
    sources = settings.workers.file_transferer.source_buckets or ()
    allowed = ", ".join(f"s3://{entry}" for entry in sources) or "none"
    return [
        f"{verbs}: the recordings' source objects named in each job, only under {allowed} "
        "(workers.FileTransferer.sourceBuckets)"
    ]


SPEC = WorkerSpec(
    name="FileTransferer",
    section="file_transferer",
    build=FileTransferer,
    singleton=False,
    consumes=_consumes,
    reaches=_reaches,
    requires=_requires,
    unconfigured=_unconfigured,
    uses=_uses,
)
