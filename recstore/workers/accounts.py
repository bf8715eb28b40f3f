"""One DRACOON client per account, shared by every job of the daemon.

Unlocking a private key costs about a second, and every account needs one session; so clients
and their unlocked keys (:class:`~recstore.transfer.keys.AccountKeys`) are made on first use,
keyed by server and login, and closed together at shutdown. Instance
settings name the account; the global ``dracoon.*`` section supplies what instances leave out
(server URL, OAuth client).
"""

from __future__ import annotations

import asyncio
import json
import logging

import aiohttp

from recstore.clients.configurator import ConfiguratorClient
from recstore.clients.dracoon import DracoonAccount, DracoonClient
from recstore.clients.s3 import S3Store
from recstore.common import events
from recstore.common.errors import PermanentJobError, RecstoreError
from recstore.common.retry import RetryPolicy
from recstore.settings import DracoonSettings, InstanceDracoon, Settings
from recstore.transfer.instances import InstanceResolver
from recstore.transfer.keys import AccountKeys

log = logging.getLogger(__name__)


class AccountPool:
    def __init__(
        self,
        defaults: DracoonSettings,
        session: aiohttp.ClientSession | None = None,
        policy: RetryPolicy | None = None,
    ) -> None:
        self._defaults = defaults
        self._session = session
        self._policy = policy
        #: By server and login: each account's client, and its keys once unlocked.
        self._accounts: dict[tuple[str, str], AccountKeys] = {}
        self._lock = asyncio.Lock()

    def account_for(self, instance: InstanceDracoon) -> DracoonAccount:
        base_url = instance.base_url or self._defaults.base_url
        if not base_url:
            raise PermanentJobError(
                "no DRACOON server: set dracoon.baseUrl or the instance's dracoon.base-url"
            )
        return DracoonAccount(
            base_url=base_url,
            login=instance.login,
            password=instance.password,
            encryption_password=instance.encryption_password,
            client_id=self._defaults.client_id,
            client_secret=self._defaults.client_secret,
            timeout=self._defaults.timeout,
        )

    def default_account(self) -> DracoonAccount | None:
        """The global ``dracoon.*`` account, when it is configured (seed 004's test account)."""
        d = self._defaults
        if not (d.base_url and d.login and d.password):
            return None
        return DracoonAccount(
            d.base_url,
            d.login,
            d.password,
            d.encryption_password,
            d.client_id,
            d.client_secret,
            d.timeout,
        )

    async def client(self, account: DracoonAccount) -> DracoonClient:
        return (await self.keys(account)).client

    async def keys(self, account: DracoonAccount) -> AccountKeys:
        """The account's client and its private keys, unlocked once for every job."""
        key = (account.base_url.rstrip("/"), account.login)
        async with self._lock:
            existing = self._accounts.get(key)
            if existing is not None and existing.client.account != account:
                await existing.client.close()  # the configurator changed the credentials
                existing = None
            if existing is None:
                client = DracoonClient(
                    account,
                    self._session,
                    self._policy,
                    upload_poll_timeout=self._defaults.finish_timeout,
                )
                existing = self._accounts[key] = AccountKeys(client)
            return existing

    def clients(self) -> list[DracoonClient]:
        return [keys.client for keys in self._accounts.values()]

    async def close(self) -> None:
        for keys in self._accounts.values():
            await keys.client.close()
        self._accounts.clear()


#: The served instances of this process, when no lease bucket is there to share them in.
_SERVED_HERE: set[str] = set()
SERVED_KEY = "served-instances.json"


class ServedInstances:
    """The domains whose jobs the daemon has served, so the DracoonGlobalSharer covers the
    accounts of instances known only to the configurator (seed 004's normal case), not only
    ``dracoon.*`` and the YAML's ``instances:``.

    The seed's configurator answers one instance at a time and offers no list of them, so the
    daemon remembers which it has asked about for a job. With a lease bucket the list is one
    small S3 object beside the leases (``<leases.prefix>served-instances.json``), written with
    S3's conditional writes: every replica's jobs count, whichever replica holds the sharer's
    lease, and a restart forgets nothing. It holds domains only; the sharer asks the
    configurator for each one's account when it runs. Without a lease bucket (one replica) the
    list lives in this process, shared by its workers.
    """

    def __init__(self, store: S3Store | None, bucket: str | None, key: str) -> None:
        self._store = store if bucket else None
        self._bucket = bucket or ""
        self._key = key
        self._written: set[str] = set()  # already in the shared list: no write per job
        # One domain recorded at a time: a pool's first jobs, which start together, would
        # each read the list (and race to write it) for the domain the first one records.
        self._adding = asyncio.Lock()

    @classmethod
    def of(cls, settings: Settings, store: S3Store | None) -> ServedInstances:
        leases = settings.leases
        bucket = leases.bucket if leases.shared else None
        return cls(store, bucket, leases.prefix + SERVED_KEY)

    async def add(self, domain: str) -> None:
        """Remember ``domain``; a failure to write is logged, never a job's failure."""
        domain = domain.lower()
        if self._store is None:
            _SERVED_HERE.add(domain)
            return
        if domain in self._written:
            return
        async with self._adding:
            if domain not in self._written:
                await self._record(domain)

    async def _record(self, domain: str) -> None:
        assert self._store is not None
        try:
            for _ in range(5):  # another replica may write between our read and our write
                current, etag = await self._read()
                if domain in current:
                    break
                data = json.dumps(sorted(current | {domain})).encode()
                if etag is None:
                    written = await self._store.put_small(
                        self._bucket, self._key, data, if_none_match=True
                    )
                else:
                    written = await self._store.put_small(
                        self._bucket, self._key, data, if_match=etag
                    )
                if written is not None:
                    break
            else:
                return
        except RecstoreError as exc:
            events.emit(
                log, events.STORAGE_ERROR, "cannot record instance %s as served: %s", domain, exc
            )
            return
        self._written.add(domain)

    async def domains(self) -> set[str]:
        """Every domain served so far (by any replica, with a lease bucket)."""
        if self._store is None:
            return set(_SERVED_HERE)
        return (await self._read())[0]

    async def _read(self) -> tuple[set[str], str | None]:
        assert self._store is not None
        found = await self._store.get_small(self._bucket, self._key)
        if found is None:
            return set(), None
        data, etag = found
        try:
            domains = json.loads(data)
        except ValueError:
            domains = []
        return {d for d in domains if isinstance(d, str)}, etag


async def served_accounts(
    settings: Settings,
    pool: AccountPool,
    served: ServedInstances,
    session: aiohttp.ClientSession | None,
) -> list[DracoonAccount]:
    """The DRACOON accounts of the served instances, as their configuration says now.

    An instance whose configuration cannot be had is logged (15016) and left out of this run;
    the next run asks again.
    """
    domains = await served.domains()
    if not domains:
        return []
    configurator = (
        ConfiguratorClient(settings.configurator, session)
        if settings.configurator.url and session is not None
        else None
    )
    resolver = InstanceResolver(settings.instances, configurator)
    accounts = []
    for domain in sorted(domains):
        try:
            instance = await resolver.resolve(domain)
            accounts.append(pool.account_for(instance.recordings.dracoon))
        except RecstoreError as exc:
            events.emit(log, events.GLOBAL_SHARER_ERROR, "instance %s: %s", domain, exc)
    return accounts
