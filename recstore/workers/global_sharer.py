"""DracoonGlobalSharer: hands out missing file keys, every ``jobDelayMinutes`` (seed 004).

Users who join a room after a file was uploaded cannot open it until someone who holds the
file key encrypts it for them. Each run asks DRACOON, for every account the daemon knows (the
``dracoon.*`` account, each instance of ``instances:`` and each instance whose jobs it served,
:class:`~recstore.workers.accounts.ServedInstances`), which users lack which file keys,
and writes them with the same code the FileTransferer uses after an upload. One account that
fails is logged (15016) and does not stop the others; each run reports its counts (15017).
With several replicas, the run is held to one of them by a lease.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import aiohttp

from recstore.clients.dracoon import DracoonAccount
from recstore.clients.dracoon_rooms import DracoonDestination
from recstore.clients.dracoon_wire import REMOTE as DRACOON
from recstore.clients.s3 import S3Store
from recstore.common import events
from recstore.common.errors import RecstoreError
from recstore.settings import Settings
from recstore.transfer.keys import share_missing_keys
from recstore.workers.accounts import AccountPool, ServedInstances, served_accounts
from recstore.workers.base import Problem, WorkerHealth, WorkerSpec
from recstore.workers.periodic import PeriodicWorker, job_lease
from recstore.workers.resources import Resources, opened

log = logging.getLogger(__name__)
NAME = "dracoon_global_sharer"


def known_accounts(settings: Settings, pool: AccountPool) -> list[DracoonAccount]:
    """The global account and every instance's, each once."""
    accounts: dict[tuple[str, str], DracoonAccount] = {}
    default = pool.default_account()
    if default is not None:
        accounts[(default.base_url.rstrip("/"), default.login)] = default
    for instance in settings.instances.values():
        account = pool.account_for(instance.recordings.dracoon)
        accounts.setdefault((account.base_url.rstrip("/"), account.login), account)
    return list(accounts.values())


@dataclass
class SharerReport:
    accounts: int = 0
    failed_accounts: int = 0
    keys_written: int = 0
    skipped: int = 0
    files: set[int] = field(default_factory=set)
    users: set[int] = field(default_factory=set)
    seconds: float = 0.0


async def share_all(
    settings: Settings,
    pool: AccountPool,
    room_id: int | None = None,
    dry_run: bool = False,
    served: ServedInstances | None = None,
    session: aiohttp.ClientSession | None = None,
) -> SharerReport:
    """One run over every known account and every served instance's; raises only when every
    account failed."""
    started = time.monotonic()
    report = SharerReport()
    accounts = known_accounts(settings, pool)
    if served is not None:
        seen = {(a.base_url.rstrip("/"), a.login) for a in accounts}
        for account in await served_accounts(settings, pool, served, session):
            if (account.base_url.rstrip("/"), account.login) not in seen:
                seen.add((account.base_url.rstrip("/"), account.login))
                accounts.append(account)
    for account in accounts:
        report.accounts += 1
        try:
            keys = await pool.keys(account)
            shared = await share_missing_keys(
                DracoonDestination(keys.client, keys.private_keys), room_id=room_id, dry_run=dry_run
            )
        except RecstoreError as exc:
            report.failed_accounts += 1
            events.emit(log, events.GLOBAL_SHARER_ERROR, "account %s: %s", account.login, exc)
            continue
        report.keys_written += shared.written
        report.skipped += shared.skipped
        report.files |= shared.files
        report.users |= shared.users
    report.seconds = round(time.monotonic() - started, 3)
    events.emit(
        log,
        events.GLOBAL_SHARER_STATUS,
        "%s %d file key(s) for %d user(s) on %d file(s)",
        "would write" if dry_run else "wrote",
        report.keys_written,
        len(report.users),
        len(report.files),
        accounts=report.accounts,
        skipped=report.skipped,
        seconds=report.seconds,
    )
    if report.accounts and report.failed_accounts == report.accounts:
        raise RecstoreError(f"key sharing failed for all {report.accounts} account(s)")
    return report


class DracoonGlobalSharer:
    """The periodic worker, with its lease when leases are on."""

    name = NAME

    def __init__(self, settings: Settings, resources: Resources | None = None) -> None:
        self.settings = settings
        self.resources = resources
        self.health = WorkerHealth()
        self.periodic: PeriodicWorker | None = None

    def status(self) -> dict[str, object]:
        return {} if self.periodic is None else self.periodic.status()

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.settings
        async with opened(self.resources, settings) as resources:
            session = await resources.http(DRACOON)
            pool = await resources.accounts()
            store = S3Store(await resources.s3()) if settings.leases.shared else None
            lease = await job_lease(settings, NAME, resources)
            served = ServedInstances.of(settings, store)

            async def run_once() -> None:
                await share_all(settings, pool, served=served, session=session)

            interval = settings.workers.dracoon_global_sharer.job_delay_minutes * 60.0
            self.periodic = PeriodicWorker(NAME, interval, run_once, lease)
            self.periodic.health = self.health
            await self.periodic.run(stop)


def has_dracoon_account(settings: Settings) -> bool:
    """A DRACOON account to serve: the ``dracoon.*`` one, YAML instances', or those of the
    instances the configurator answers for (the ones whose jobs the daemon serves)."""
    dracoon = settings.dracoon
    return (
        bool(settings.instances)
        or bool(settings.configurator.url)
        or bool(dracoon.base_url and dracoon.login and dracoon.password)
    )


def _requires(settings: Settings) -> list[Problem]:
    if has_dracoon_account(settings):
        return []
    return [
        (
            "workers.DracoonGlobalSharer.count",
            "no DRACOON account to serve: configure dracoon.*, instances or configurator.url "
            "(or set 0)",
        )
    ]


def _unconfigured(settings: Settings) -> str:
    """On by default (seed 004); with no DRACOON account to serve, it stays off."""
    if has_dracoon_account(settings):
        return ""
    return "no DRACOON account: neither `dracoon.*` nor `instances`"


SPEC = WorkerSpec(
    name="DracoonGlobalSharer",
    section="dracoon_global_sharer",
    build=DracoonGlobalSharer,
    singleton=True,
    switch="count",
    reaches=lambda settings: ["DRACOON"],
    requires=_requires,
    unconfigured=_unconfigured,
)
