"""FileTransferer: SQS job messages → S3 recordings → DRACOON rooms (seed 004).

Wiring only: the queue loop is :class:`~recstore.workers.queue_consumer.QueueConsumer`, the
rules of a job are :class:`~recstore.transfer.transferer.Transferer`, the message format is
:mod:`recstore.transfer.job`. Each message: parse (malformed → dead-letter queue), resolve the
instance (YAML ``instances:``, then the configurator), choose targets, and run the transfer
with the instance's DRACOON account. The message is deleted only after the job completed.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from contextlib import AsyncExitStack
from typing import Any

from recstore.clients.aws import aws_client
from recstore.clients.configurator import REMOTE as CONFIGURATOR
from recstore.clients.configurator import ConfiguratorClient
from recstore.clients.dracoon import DracoonClient
from recstore.clients.dracoon_rooms import DracoonDestination, RoomPaths
from recstore.clients.dracoon_wire import REMOTE as DRACOON
from recstore.clients.http import http_session
from recstore.clients.s3 import REMOTE as S3
from recstore.clients.s3 import S3Store
from recstore.clients.sqs import Message, SqsQueue
from recstore.common import events
from recstore.common.errors import RemoteError
from recstore.common.progress import PROGRESS
from recstore.settings import Settings, protected_buckets
from recstore.transfer.channels import ChannelLog
from recstore.transfer.instances import InstanceConfigurationError, InstanceResolver, targets_for
from recstore.transfer.job import TransferJob, parse_job
from recstore.transfer.sources import SourcePolicy
from recstore.transfer.transferer import Transferer, TransferReport, TransferRequest
from recstore.workers.accounts import AccountPool, ServedInstances
from recstore.workers.base import WorkerHealth
from recstore.workers.queue_consumer import ConsumerSettings, QueueConsumer

log = logging.getLogger(__name__)


class TransferService:
    """Everything a transfer needs, opened once: used by the worker and by ``recstore transfer``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
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

    async def __aenter__(self) -> TransferService:
        try:
            return await self._open()
        except BaseException:  # what opened before the failure closes now, not at exit
            await self._stack.aclose()
            raise

    async def _open(self) -> TransferService:
        settings = self.settings
        stack = self._stack
        transferer = settings.workers.file_transferer
        pool = max(10, transferer.count * 3)
        s3_client = await stack.enter_async_context(
            aws_client(settings.aws, "s3", max_pool_connections=pool)
        )
        self.sqs = await stack.enter_async_context(aws_client(settings.aws, "sqs"))
        session = await stack.enter_async_context(
            http_session(settings.dracoon.timeout, ca_file=settings.dracoon.ca_file)
        )
        self.s3 = S3Store(s3_client)
        configurator = (
            ConfiguratorClient(settings.configurator, session)
            if settings.configurator.url
            else None
        )
        self.resolver = InstanceResolver(settings.instances, configurator)
        self.accounts = AccountPool(settings.dracoon, session)
        stack.push_async_callback(self.accounts.close)
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
        call). The configurator's answers are cached, and the S3 bucket is the job's, so
        those recover with the next job's success or the lapse."""
        if remote != DRACOON or self.resolver is None or self.accounts is None:
            return False
        instance = await self.resolver.resolve(domain)
        account = self.accounts.account_for(instance.recordings.dracoon)
        client = await self.accounts.client(account)
        await client.request("GET", "/v4/user/account")
        return True

    async def run_job(self, job: TransferJob) -> TransferReport:
        lock = self._running.setdefault(job.job_id, asyncio.Lock())
        async with lock:
            return await self._run_job(job)

    async def _run_job(self, job: TransferJob) -> TransferReport:
        assert self.resolver is not None
        assert self.accounts is not None
        assert self.transferer is not None
        domain = job.instance.domain
        # Before anything else, the configurator too: a refused source is final either way.
        self.sources.check(job.bucket, job.keys)
        instance = await self.resolver.resolve(domain)
        self.sources.check(job.bucket, job.keys, instance.recordings.source_buckets)
        if self.served is not None:  # its account gets the DracoonGlobalSharer's runs too
            await self.served.add(domain)
        dracoon = instance.recordings.dracoon
        meeting_type = job.meeting.type
        targets = targets_for(instance, domain, meeting_type.id, job.targets, meeting_type.name)
        keys = await self.accounts.keys(self.accounts.account_for(dracoon))
        client = keys.client
        channels = await self._cancel_left_open(job.job_id, client)
        request = TransferRequest(
            job_id=job.job_id,
            instance=domain,
            meeting_type=job.meeting.type.name,
            bucket=job.bucket,
            keys=job.keys,
            targets=targets,
            parent_room_id=dracoon.parent_room_id,
        )
        destination = DracoonDestination(client, keys.private_keys, channels, self.rooms)
        return await self.transferer.run(request, destination)

    async def _cancel_left_open(self, job_id: str, client: DracoonClient) -> ChannelLog | None:
        """Cancel the upload channels an earlier attempt of the job left open (it was killed
        mid-upload); this attempt owns the job now. None when leases are off (no bucket)."""
        leases = self.settings.leases
        if self.s3 is None or not leases.shared or leases.bucket is None:
            return None
        channels = ChannelLog(self.s3, leases.bucket, leases.prefix, job_id)
        left = await channels.left_open()
        for upload_id in left:
            await client.cancel_upload(upload_id)
        if left:
            await channels.forget()
            events.emit(
                log,
                events.TRANSFER_STATUS,
                "cancelled %d upload channel(s) an earlier attempt left open",
                len(left),
            )
        return channels


class FileTransferer:
    """The pool: ``workers.FileTransferer.count`` transfers at once from the work queue."""

    name = "file_transferer"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.health = WorkerHealth()
        self.consumer: QueueConsumer | None = None

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
        async with TransferService(settings) as service:
            work = SqsQueue(service.sqs, settings.queue_url(config.queue))
            dead = SqsQueue(service.sqs, settings.queue_url(config.dead_letter_queue))

            async def handle(message: Message) -> None:
                job = parse_job(message.body)
                token = events.job_var.set(job.job_id)
                try:
                    report = await service.run_job(job)
                finally:
                    events.job_var.reset(token)
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
                handle,
                ConsumerSettings(
                    concurrency=config.count,
                    visibility_timeout=config.visibility_timeout,
                    wait_seconds=config.wait_time_seconds,
                ),
                self.health,
                job_id=_job_id,
                scope=_instance,
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


def _instance(job_id: str) -> str:
    """The instance of a job id (``<instance>/<meeting id>``): each instance has its own
    account, whose failure is its own. Empty for a message that did not parse."""
    instance, slash, _ = job_id.partition("/")
    return instance if slash else ""


def _job_id(message: Message) -> str:
    """The job id for log lines, before the message is parsed (a malformed one has none)."""
    try:
        return parse_job(message.body).job_id
    except Exception:
        return f"message {message.message_id}"
