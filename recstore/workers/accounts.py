"""One DRACOON client per account, shared by every job of the daemon.

Unlocking a private key costs about a second, and every account needs one session; so clients
are made on first use, keyed by server and login, and closed together at shutdown. Instance
settings name the account; the global ``dracoon.*`` section supplies what instances leave out
(server URL, OAuth client).
"""

from __future__ import annotations

import asyncio

import aiohttp

from recstore.clients.dracoon import DracoonAccount, DracoonClient
from recstore.config import DracoonSettings, InstanceDracoon
from recstore.errors import PermanentJobError
from recstore.retry import RetryPolicy


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
        self._clients: dict[tuple[str, str], DracoonClient] = {}
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
        key = (account.base_url.rstrip("/"), account.login)
        async with self._lock:
            existing = self._clients.get(key)
            if existing is not None and existing.account != account:
                await existing.close()  # the configurator changed the credentials
                existing = None
            if existing is None:
                existing = DracoonClient(
                    account,
                    self._session,
                    self._policy,
                    upload_poll_timeout=self._defaults.finish_timeout,
                )
                self._clients[key] = existing
            return existing

    def clients(self) -> list[DracoonClient]:
        return list(self._clients.values())

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()
