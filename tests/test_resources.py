"""The daemon's shared resources: workers run on the transport a test hands in, a worker the
supervisor restarts finds them working, and what is closed is not handed out again."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
import pytest
from yarl import URL

from recstore.clients.dracoon import REMOTE as DRACOON
from recstore.devstack.appconfig import app_config
from recstore.runtime.supervisor import Supervisor
from recstore.settings import DaemonSettings, Settings
from recstore.workers.base import WorkerHealth
from recstore.workers.global_sharer import DracoonGlobalSharer
from recstore.workers.resources import Resources
from tests.conftest import StackProcess


def sharer_settings(state: dict[str, Any]) -> Settings:
    doc = app_config(state, http_port=0)
    doc["workers"]["FileTransferer"]["enabled"] = False
    doc["leases"] = {"bucket": state["lease_bucket"], "prefix": f"res-{uuid.uuid4().hex[:6]}/"}
    return Settings.model_validate(doc)


def traced_session(seen: list[URL]) -> aiohttp.ClientSession:
    """The test's own transport: a session that notes every request it sends."""

    async def started(_: Any, __: Any, params: aiohttp.TraceRequestStartParams) -> None:
        seen.append(params.url)

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(started)
    return aiohttp.ClientSession(trace_configs=[trace])


async def one_run(worker: DracoonGlobalSharer) -> str:
    """Run the worker until its first periodic run ends; that run's outcome."""
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    async with asyncio.timeout(60):
        while worker.periodic is None or not worker.periodic.last_outcome:
            await asyncio.sleep(0.02)
    stop.set()
    await task
    assert worker.periodic is not None
    return worker.periodic.last_outcome


async def test_a_worker_runs_on_the_transport_a_test_hands_in(devstack: StackProcess) -> None:
    state = devstack.state
    settings = sharer_settings(state)
    seen: list[URL] = []
    async with traced_session(seen) as session, Resources(settings, http={DRACOON: session}) as rs:
        assert await one_run(DracoonGlobalSharer(settings, rs)) == "success"
        dracoon = URL(state["dracoon_url"])
        assert any(url.host == dracoon.host and url.port == dracoon.port for url in seen)
        assert not session.closed  # the worker leaves alone what it did not open
        assert any(url.path == "/oauth/token" for url in seen)
        # A second worker on the same resources (as after a restart; its own lease, which is
        # due at once) logs in no more: same session, same account clients.
        before = len(seen)
        assert await one_run(DracoonGlobalSharer(sharer_settings(state), rs)) == "success"
        assert len(seen) > before
        assert not any(url.path == "/oauth/token" for url in seen[before:])


class Careless:
    """A worker that closes the shared DRACOON session and crashes on its first run (a bug),
    and on the next asks the stand-in for its system info."""

    name = "careless"

    def __init__(self, resources: Resources, url: str) -> None:
        self.health = WorkerHealth()
        self.resources = resources
        self.url = url
        self.runs = 0
        self.answers: list[int] = []

    async def run(self, stop: asyncio.Event) -> None:
        self.runs += 1
        session = await self.resources.http(DRACOON)
        if self.runs == 1:
            await session.close()
            raise RuntimeError("boom")
        async with session.get(f"{self.url}/api/v4/public/system/info") as answer:
            self.answers.append(answer.status)
        await stop.wait()


async def test_a_restarted_worker_gets_a_working_session_after_a_crash(
    devstack: StackProcess,
) -> None:
    settings = sharer_settings(devstack.state)
    daemon = DaemonSettings.model_validate(
        {"gracePeriod": 1, "restartBackoffInitial": 0.01, "restartBackoffMax": 0.01}
    )
    async with Resources(settings) as resources:
        worker = Careless(resources, devstack.state["dracoon_url"])
        supervisor = Supervisor([worker], daemon)
        task = asyncio.create_task(supervisor.run())
        async with asyncio.timeout(30):
            while not worker.answers:
                await asyncio.sleep(0.01)
        supervisor.request_stop()
        assert await task is True
    assert worker.runs == 2
    assert worker.answers == [200]


async def test_closed_resources_refuse_reuse() -> None:
    resources = Resources(Settings())
    session = await resources.http(DRACOON)
    pool = await resources.accounts()
    assert await resources.http(DRACOON) is session
    assert await resources.accounts() is pool
    await resources.aclose()
    assert session.closed
    with pytest.raises(RuntimeError, match="closed"):
        await resources.http(DRACOON)
    with pytest.raises(RuntimeError, match="closed"):
        await resources.sqs()
