"""The clients and rules an archive command or worker works with, built once from settings.

Every Kaltura archive command (``recstore kaltura ...``) and the Archiver/Restorer workers
need the same things: one Kaltura client on one HTTP session, one S3 client for the archive
bucket, and the tag and size rules of ``archive.*``. Building them in one place keeps one
session per remote and one reading of the settings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp

from recstore.archive.states import ArchiveTags, SizeRule
from recstore.clients.kaltura import REMOTE as KALTURA
from recstore.clients.kaltura import KalturaClient
from recstore.clients.s3 import S3Store
from recstore.common.errors import ConfigError
from recstore.settings import ArchiveSettings, Settings
from recstore.workers.base import REQUIRED, Problem, unknown_queues
from recstore.workers.leases import EntryLocks
from recstore.workers.resources import Resources, opened


def archive_tags(settings: ArchiveSettings) -> ArchiveTags:
    return ArchiveTags(
        archived=settings.archived_tag,
        flavors_deleted=settings.flavors_deleted_tag,
        flavors_deleted_aliases=tuple(settings.flavors_deleted_aliases),
    )


def size_rule(settings: ArchiveSettings) -> SizeRule:
    return SizeRule(tolerance=settings.size_tolerance, max_original_kb=settings.max_original_kb)


def entry_locks(settings: Settings, store: S3Store | None) -> EntryLocks:
    """Per-entry locks across replicas in ``leases.bucket``; in this process only without it."""
    leases = settings.leases
    shared = store if leases.shared else None
    return EntryLocks(shared, leases.bucket, leases.prefix, leases.ttl)


@dataclass(frozen=True)
class ArchiveContext:
    settings: Settings
    kaltura: KalturaClient
    #: None unless asked for (listing needs no S3).
    s3: S3Store | None
    bucket: str | None
    tags: ArchiveTags
    sizes: SizeRule
    http: aiohttp.ClientSession


@asynccontextmanager
async def archive_context(
    settings: Settings, *, need_s3: bool, resources: Resources | None = None
) -> AsyncIterator[ArchiveContext]:
    """Open the clients (on ``resources``, the daemon's, when given); :class:`ConfigError`
    names what is missing for the job at hand."""
    problems: list[tuple[str, str]] = []
    kaltura = settings.kaltura
    if not kaltura.service_url:
        problems.append(("kaltura.serviceUrl", "is required for the Kaltura commands"))
    if kaltura.partner_id is None:
        problems.append(("kaltura.partnerId", "is required for the Kaltura commands"))
    if kaltura.admin_secret is None:
        problems.append(("kaltura.adminSecret", "is required for the Kaltura commands"))
    if need_s3 and not settings.archive.bucket:
        problems.append(("archive.bucket", "is required to look at or change the S3 copies"))
    if problems:
        raise ConfigError(problems)
    async with opened(resources, settings) as resources:
        http = await resources.http(KALTURA)
        s3 = S3Store(await resources.s3()) if need_s3 else None
        yield ArchiveContext(
            settings=settings,
            kaltura=KalturaClient(kaltura, http),
            s3=s3,
            bucket=settings.archive.bucket,
            tags=archive_tags(settings.archive),
            sizes=size_rule(settings.archive),
            http=http,
        )


def archive_requires(settings: Settings) -> list[Problem]:
    """What the Archiver, Restorer and ArchiveActions workers need once one of them runs:
    Kaltura, the archive bucket and the archive queues."""
    kaltura, archive = settings.kaltura, settings.archive
    problems: list[Problem] = [
        (key, REQUIRED)
        for key, value in (
            ("kaltura.serviceUrl", kaltura.service_url),
            ("kaltura.partnerId", kaltura.partner_id),
            ("kaltura.adminSecret", kaltura.admin_secret),
            ("archive.bucket", archive.bucket),
        )
        if value is None or value == ""
    ]
    queues = {"queue": archive.queue, "deadLetterQueue": archive.dead_letter_queue}
    return problems + unknown_queues(settings, "archive", queues)


def archive_queues(settings: Settings) -> tuple[str, str]:
    """The archive queue and its dead-letter queue."""
    return settings.archive.queue, settings.archive.dead_letter_queue


def archive_bucket(settings: Settings) -> list[str]:
    bucket = settings.archive.bucket
    return [f"archive bucket: s3://{bucket}"] if bucket else []
