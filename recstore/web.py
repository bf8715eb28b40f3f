"""``/healthcheck``, ``/metrics`` and the ``/status`` dashboard, inside the daemon's own loop.

The health contract is seed 004's, byte for byte, because an existing monitor polls it:
200 ``{"status": "success"}`` while every worker is healthy, otherwise 500
``{"error": "worker_error_<worker_name>", "status": "error"}`` naming the first failing
worker. Nothing else (no detail, no secret) goes into the answer; details are in the logs.

``/status`` is a static page (``web_status.html``, no external assets, so it works on a
machine without internet access) whose inline script redraws from ``/status.json`` every two
seconds. Both show identifiers, sizes and reasons, never secrets or participants' data, and
may be put behind Basic auth (``http.statusUser``/``statusPassword``); the monitor's
``/healthcheck`` and Prometheus' ``/metrics`` stay open because their callers cannot log in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib.resources
import json
import logging
import os
import re
import time
from typing import Protocol

from aiohttp import BasicAuth, hdrs, web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from recstore import __version__, events
from recstore.config import HttpSettings

log = logging.getLogger(__name__)


class HealthSource(Protocol):
    def unhealthy_workers(self) -> list[str]: ...

    def status(self) -> list[dict[str, object]]: ...


class QueueSource(Protocol):
    def snapshot(self) -> list[dict[str, object]]: ...


#: What the browser may do with /status: run its own inline script and style, fetch status.json
#: from the same origin, nothing else (no frames, forms, plugins or third-party requests).
_POLICY = (
    "default-src 'none'; script-src {scripts}; style-src {styles}; connect-src 'self'; "
    "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def status_page() -> tuple[str, str]:
    """The dashboard's HTML and a Content-Security-Policy that allows exactly its inline code."""
    html = importlib.resources.files("recstore").joinpath("web_status.html").read_text("utf-8")

    def hashes(tag: str) -> str:
        blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.S)
        digests = (hashlib.sha256(block.encode()).digest() for block in blocks)
        return " ".join(f"'sha256-{base64.b64encode(d).decode()}'" for d in digests) or "'none'"

    return html, _POLICY.format(scripts=hashes("script"), styles=hashes("style"))


class WebServer:
    """Serves the daemon's HTTP endpoints; ``start()`` binds, ``close()`` releases the port."""

    def __init__(
        self, health: HealthSource, settings: HttpSettings, queues: QueueSource | None = None
    ) -> None:
        self._health = health
        self._settings = settings
        self._queues = queues
        self._page, self._policy = status_page()
        self._runner: web.AppRunner | None = None
        self._last_failing: list[str] = []
        self._started = time.monotonic()
        self.port: int | None = None

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthcheck", self.healthcheck)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/status.json", self.status_json)
        app.router.add_get("/status", self.status_html)
        return app

    def _require_login(self, request: web.Request) -> None:
        """Raise 401 unless Basic auth is off or the request carries the configured login."""
        user, password = self._settings.status_user, self._settings.status_password
        if user is None or password is None:
            return
        try:
            given = BasicAuth.decode(request.headers.get(hdrs.AUTHORIZATION, ""), "utf-8")
        except ValueError:
            given = None
        # Both comparisons always run, in constant time, so timing tells nothing about either.
        user_ok = hmac.compare_digest((given.login if given else "").encode(), user.encode())
        password_ok = hmac.compare_digest(
            (given.password if given else "").encode(), password.get_secret_value().encode()
        )
        if not (given and user_ok and password_ok):
            raise web.HTTPUnauthorized(
                text="login required\n",
                headers={hdrs.WWW_AUTHENTICATE: 'Basic realm="recstore status", charset="UTF-8"'},
            )

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
        """Workers, their jobs, queues and recent failures, for ``recstore status`` and /status.

        ``time`` is the daemon's clock, so the page shows "in 5 min" right whatever the
        browser's clock says.
        """
        self._require_login(request)
        document = {
            "version": __version__,
            "pid": os.getpid(),
            "time": time.time(),
            "uptime_seconds": round(time.monotonic() - self._started, 1),
            "workers": self._health.status(),
            "queues": self._queues.snapshot() if self._queues is not None else [],
            "recent_failures": list(events.RECENT_FAILURES.records),
        }
        text = events.redact(json.dumps(document, default=str))
        return web.Response(
            text=text, content_type="application/json", headers={"Cache-Control": "no-store"}
        )

    async def status_html(self, request: web.Request) -> web.Response:
        """The dashboard: a fixed page; its data comes from /status.json."""
        self._require_login(request)
        return web.Response(
            text=self._page,
            content_type="text/html",
            charset="utf-8",
            headers={
                "Content-Security-Policy": self._policy,
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
                "Cache-Control": "no-store",
            },
        )

    async def metrics(self, request: web.Request) -> web.Response:
        # The health gauges are worked out, not pushed: refresh them for every scrape, so a
        # setup that scrapes and never calls /healthcheck sees a failing worker too.
        self._health.unhealthy_workers()
        body = generate_latest(REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
