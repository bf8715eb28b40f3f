"""``/healthcheck`` and ``/metrics`` on an aiohttp server inside the daemon's own loop.

The health contract is seed 004's, byte for byte, because an existing monitor polls it:
200 ``{"status": "success"}`` while every worker is healthy, otherwise 500
``{"error": "worker_error_<worker_name>", "status": "error"}`` naming the first failing
worker. Nothing else (no detail, no secret) goes into the answer; details are in the logs.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from recstore import __version__, events
from recstore.config import HttpSettings

log = logging.getLogger(__name__)


class HealthSource(Protocol):
    def unhealthy_workers(self) -> list[str]: ...

    def status(self) -> list[dict[str, object]]: ...


class WebServer:
    """Serves the daemon's HTTP endpoints; ``start()`` binds, ``close()`` releases the port."""

    def __init__(self, health: HealthSource, settings: HttpSettings) -> None:
        self._health = health
        self._settings = settings
        self._runner: web.AppRunner | None = None
        self._last_failing: list[str] = []
        self._started = time.monotonic()
        self.port: int | None = None

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthcheck", self.healthcheck)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/status.json", self.status_json)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.make_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._settings.host, self._settings.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def healthcheck(self, request: web.Request) -> web.Response:
        failing = self._health.unhealthy_workers()
        if failing != self._last_failing:
            if failing:
                events.emit(
                    log, events.HEALTHCHECK_ERROR, "unhealthy workers: %s", ", ".join(failing)
                )
            else:
                events.emit(log, events.WORKER_STATUS, "all workers healthy again")
            self._last_failing = failing
        if failing:
            return web.json_response(
                {"error": f"worker_error_{failing[0]}", "status": "error"}, status=500
            )
        return web.json_response({"status": "success"})

    async def status_json(self, request: web.Request) -> web.Response:
        """Workers, their jobs and recent failures, for ``recstore status`` and the dashboard."""
        document = {
            "version": __version__,
            "pid": os.getpid(),
            "uptime_seconds": round(time.monotonic() - self._started, 1),
            "workers": self._health.status(),
            "recent_failures": list(events.RECENT_FAILURES.records),
        }
        text = events.redact(json.dumps(document, default=str))
        return web.Response(text=text, content_type="application/json")

    async def metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
