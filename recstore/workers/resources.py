"""The connections the workers of one daemon share, opened once and closed when it stops.

arq opens its Redis pool and whatever ``on_startup`` adds once, and hands them to every job as
``ctx``; recstore's daemon opens one :class:`Resources` and hands it to every worker it builds:
one aiohttp session per remote, one aiobotocore session with one S3 and one SQS client, and the
pool of DRACOON clients (one per account: unlocking an account's key costs about a second).
A worker the supervisor restarts after a crash finds them open, instead of building them all
again; a test hands in a transport of its own (``http=``, ``aws=``), as httpx's tests swap one.

Each one is opened on first use, so a daemon that runs only the archive workers never opens a
DRACOON session. A session closed under the resources (a worker must not close what it did not
open, but a bug might) is not handed out again: the next caller gets a fresh one. Closed
resources refuse reuse. A worker or command run without a daemon opens resources of its own
(:func:`opened`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import aiohttp

from recstore.clients.aws import Service, aws_client
from recstore.clients.dracoon_wire import REMOTE as DRACOON
from recstore.clients.http import http_session
from recstore.clients.kaltura import REMOTE as KALTURA
from recstore.settings import Settings
from recstore.workers.accounts import AccountPool


class Resources:
    """See the module docstring. ``http`` and ``aws``: sessions (by remote) and clients (by
    service) the caller opened and closes itself; the rest are opened here on first use."""

    def __init__(
        self,
        settings: Settings,
        *,
        http: Mapping[str, aiohttp.ClientSession] | None = None,
        aws: Mapping[Service, Any] | None = None,
    ) -> None:
        self._settings = settings
        self._given_http = dict(http or {})
        self._given_aws: dict[Service, Any] = dict(aws or {})
        self._stack = AsyncExitStack()
        self._http: dict[str, aiohttp.ClientSession] = {}
        self._aws: dict[Service, Any] = {}
        self._accounts: tuple[aiohttp.ClientSession, AccountPool] | None = None
        self._lock = asyncio.Lock()
        self._closed = False
        self._sessions: dict[str, Callable[[], aiohttp.ClientSession]] = {
            # the configurator's requests ride on DRACOON's session, as they always have
            DRACOON: lambda: http_session(
                settings.dracoon.timeout, ca_file=settings.dracoon.ca_file
            ),
            KALTURA: lambda: http_session(settings.kaltura.timeout),
        }

    async def __aenter__(self) -> Resources:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close what was opened here (not what was handed in); the resources refuse reuse."""
        self._closed = True
        await self._stack.aclose()

    async def http(self, remote: str) -> aiohttp.ClientSession:
        """The session to ``remote`` (:data:`DRACOON`, :data:`KALTURA`)."""
        given = self._given_http.get(remote)
        if given is not None:
            return given
        async with self._lock:
            self._check_open()
            session = self._http.get(remote)
            if session is None or session.closed:
                try:
                    opener = self._sessions[remote]
                except KeyError:
                    raise ValueError(f"no HTTP session for remote {remote!r}") from None
                session = await self._stack.enter_async_context(opener())
                self._http[remote] = session
            return session

    async def s3(self) -> Any:
        """The S3 client, for :class:`~recstore.clients.s3.S3Store` and the leases."""
        return await self._aws_client("s3")

    async def sqs(self) -> Any:
        """The SQS client, for :class:`~recstore.clients.sqs.SqsQueue`."""
        return await self._aws_client("sqs")

    async def accounts(self) -> AccountPool:
        """The DRACOON clients, one per account, on the DRACOON session."""
        session = await self.http(DRACOON)
        async with self._lock:
            self._check_open()
            if self._accounts is None or self._accounts[0] is not session:
                pool = AccountPool(self._settings.dracoon, session)
                self._stack.push_async_callback(pool.close)
                self._accounts = (session, pool)
            return self._accounts[1]

    async def _aws_client(self, service: Service) -> Any:
        given = self._given_aws.get(service)
        if given is not None:
            return given
        async with self._lock:
            self._check_open()
            client = self._aws.get(service)
            if client is None:
                connections = _connections(self._settings, service)
                client = await self._stack.enter_async_context(
                    aws_client(self._settings.aws, service, max_pool_connections=connections)
                )
                self._aws[service] = client
            return client

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("these resources are closed")


def _connections(settings: Settings, service: Service) -> int:
    """Connections of the shared client: the 10 each worker had of its own, and the pools'
    jobs in flight (a transfer streams ranged GETs beside its upload: three each)."""
    workers = settings.workers
    transfers = workers.file_transferer.count if workers.file_transferer.enabled else 0
    entries = workers.archive_actions.count if workers.archive_actions.enabled else 0
    per_job = 3 if service == "s3" else 1
    return 10 + per_job * (transfers + entries)


@asynccontextmanager
async def opened(resources: Resources | None, settings: Settings) -> AsyncIterator[Resources]:
    """``resources`` as they are (the daemon's, which it closes), or, without, resources of
    the caller's own for the block: a worker or command run without a daemon."""
    if resources is not None:
        yield resources
        return
    async with Resources(settings) as own:
        yield own
