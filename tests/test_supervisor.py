"""Supervisor rules in-process: backoff doubling, crash-loop health, a worker that returns."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest

from recstore.runtime.supervisor import Supervisor
from recstore.settings import DaemonSettings
from recstore.workers.base import WorkerHealth


class Flaky:
    def __init__(self, crashes: int, name: str = "flaky") -> None:
        self.name = name
        self.health = WorkerHealth()
        self.left = crashes
        self.runs = 0

    async def run(self, stop: asyncio.Event) -> None:
        self.runs += 1
        if self.left:
            self.left -= 1
            raise RuntimeError("boom")
        await stop.wait()


def settings(**values: object) -> DaemonSettings:
    base: dict[str, object] = {
        "gracePeriod": 1,
        "restartBackoffInitial": 0.01,
        "restartBackoffMax": 0.04,
        "unhealthyAfterRestarts": 3,
        "stableAfter": 60,
    }
    base.update(values)
    return DaemonSettings.model_validate(base)


async def run_until(supervisor: Supervisor, condition: object, patience: float = 5) -> None:
    task = asyncio.create_task(supervisor.run())
    async with asyncio.timeout(patience):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.005)
    supervisor.request_stop()
    assert await task is True


async def test_restart_delays_double_up_to_the_maximum(caplog: pytest.LogCaptureFixture) -> None:
    worker = Flaky(crashes=5)
    supervisor = Supervisor([worker], settings())
    with caplog.at_level(logging.INFO, logger="recstore.runtime.supervisor"):
        await run_until(supervisor, lambda: worker.runs == 6)
    delays = [float(m) for m in re.findall(r"restarting worker flaky in ([\d.]+) s", caplog.text)]
    assert delays == [0.01, 0.02, 0.04, 0.04, 0.04]
    assert supervisor.slots[0].restarts == 5


async def test_crash_loop_marks_unhealthy_until_stable() -> None:
    now = [0.0]
    worker = Flaky(crashes=3)
    supervisor = Supervisor([worker], settings(stableAfter=10), clock=lambda: now[0])
    task = asyncio.create_task(supervisor.run())
    async with asyncio.timeout(5):
        while worker.runs < 4:
            await asyncio.sleep(0.005)
    assert supervisor.unhealthy_workers() == ["flaky"]
    now[0] += 10  # the fourth run has now lasted stableAfter
    assert supervisor.unhealthy_workers() == []
    assert supervisor.slots[0].consecutive_crashes == 0
    supervisor.request_stop()
    assert await task is True


async def test_a_worker_reporting_a_failing_dependency_is_unhealthy() -> None:
    worker = Flaky(crashes=0, name="file_transferer")
    supervisor = Supervisor([worker], settings())
    task = asyncio.create_task(supervisor.run())
    await asyncio.sleep(0.01)
    worker.health.failing("SQS unreachable")
    assert supervisor.unhealthy_workers() == ["file_transferer"]
    worker.health.ok()
    assert supervisor.unhealthy_workers() == []
    supervisor.request_stop()
    await task


async def test_a_worker_that_returns_by_itself_is_restarted() -> None:
    class Quitter:
        name = "quitter"
        health = WorkerHealth()
        runs = 0

        async def run(self, stop: asyncio.Event) -> None:
            Quitter.runs += 1
            if Quitter.runs > 2:
                await stop.wait()

    supervisor = Supervisor([Quitter()], settings())
    await run_until(supervisor, lambda: Quitter.runs == 3)
    assert supervisor.slots[0].restarts == 2
    assert "returned without being asked to stop" in supervisor.slots[0].last_error


def test_worker_names_must_be_unique() -> None:
    with pytest.raises(ValueError, match="unique"):
        Supervisor([Flaky(0), Flaky(0)], settings())


async def test_metrics_show_a_failing_worker_without_any_healthcheck() -> None:
    import aiohttp
    from prometheus_client.parser import text_string_to_metric_families

    from recstore.runtime.web import WebServer
    from recstore.settings import HttpSettings

    worker = Flaky(crashes=0, name="scraped_only")
    supervisor = Supervisor([worker], settings())
    web = WebServer(supervisor, HttpSettings(host="127.0.0.1", port=0))
    await web.start()
    task = asyncio.create_task(supervisor.run())

    async def healthy_gauge() -> float:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{web.port}/metrics") as answer,
        ):
            text = await answer.text()
        return next(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "recstore_worker_healthy"
            and sample.labels.get("worker") == "scraped_only"
        )

    try:
        await asyncio.sleep(0.01)
        assert await healthy_gauge() == 1
        worker.health.failing("SQS unreachable")
        assert await healthy_gauge() == 0  # nobody asked /healthcheck
        worker.health.ok()
        assert await healthy_gauge() == 1
    finally:
        supervisor.request_stop()
        await task
        await web.close()


def test_health_names_a_few_failing_concerns_and_counts_the_rest() -> None:
    health = WorkerHealth()
    for n in range(5):  # DRACOON down: every instance's jobs fail
        health.failing(f"jobs of i{n}.example.org fail on dracoon: 503", f"jobs:i{n}")
    health.failing("SQS unreachable: timeout", "poll")
    assert not health.healthy
    assert health.detail == (
        "jobs of i0.example.org fail on dracoon: 503; jobs of i1.example.org fail on dracoon: "
        "503; jobs of i2.example.org fail on dracoon: 503; and 3 more"
    )
    for n in range(5):
        health.ok(f"jobs:i{n}")
    assert (health.healthy, health.detail) == (False, "SQS unreachable: timeout")
    health.ok("poll")
    assert (health.healthy, health.detail) == (True, "")
