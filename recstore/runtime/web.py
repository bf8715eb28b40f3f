"""``/healthcheck``, ``/metrics`` and the ``/status`` dashboard, inside the daemon's own loop.

The health contract is seed 004's, byte for byte, because an existing monitor polls it:
200 ``{"status": "success"}`` while every worker is healthy, otherwise 500
``{"error": "worker_error_<worker_name>", "status": "error"}`` naming the first failing
worker. Nothing else (no detail, no secret) goes into the answer; details are in the logs.

``/status`` is a static page (``web_status.html``, no external assets, so it works on a
machine without internet access) whose inline script redraws from ``/status.json`` every two
seconds. Both show identifiers, sizes and reasons, never secrets or participants' data, but
job ids, S3 keys (a file name may carry personal data), room paths and failure reasons: so they
are closed by default (issue 33 §4). With ``http.statusUser``/``statusPassword`` they need that
Basic auth login; without, they answer only requests from this machine (loopback; ``recstore
status`` asks there), unless the operator opens them explicitly (``http.statusOpen: true``).
The monitor's ``/healthcheck`` and Prometheus' ``/metrics`` stay open because their callers
cannot log in; they carry worker, queue and outcome labels, no job, key or person.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import hmac
import importlib.resources
import ipaddress
import json
import logging
import os
import re
import socket
import time
from typing import Protocol

from aiohttp import BasicAuth, hdrs, web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from recstore import __version__
from recstore.common import events
from recstore.common.errors import ConfigError
from recstore.settings import HttpSettings

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
    page = importlib.resources.files("recstore.runtime").joinpath("web_status.html")
    html = page.read_text("utf-8")

    def hashes(tag: str) -> str:
        blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.S)
        digests = (hashlib.sha256(block.encode()).digest() for block in blocks)
        return " ".join(f"'sha256-{base64.b64encode(d).decode()}'" for d in digests) or "'none'"

    return html, _POLICY.format(scripts=hashes("script"), styles=hashes("style"))


#: The answer to another machine asking for a status page that has no login configured.
CLOSED_TO_OTHERS = (
    "the status page answers only on this machine: set http.statusUser and "
    "http.statusPassword to log in from elsewhere (or http.statusOpen: true to open it)\n"
)


def _from_this_machine(request: web.Request) -> bool:
    """Whether the request's peer is a loopback address (IPv4, IPv6, or IPv4 mapped in IPv6).

    A reverse proxy on this machine makes every request look local: give it a login instead.
    """
    try:
        peer = ipaddress.ip_address((request.remote or "").split("%", 1)[0])
    except ValueError:
        return False  # a Unix socket or no peer: not a TCP client of this machine
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
        peer = peer.ipv4_mapped
    return peer.is_loopback


def _bind_problem(settings: HttpSettings, exc: OSError) -> tuple[str, str]:
    """The key to change and why, for a failed bind of ``settings``' address."""
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    address = f"{host}:{settings.port}"
    reason = exc.strerror or str(exc)
    if exc.errno == errno.EADDRINUSE:
        return ("http.port", f"cannot listen on {address}: the address is already in use")
    if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
        return ("http.host", f"cannot listen on {address}: {reason} (not an address of this host)")
    return ("http.port", f"cannot listen on {address}: {reason}")


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
        """Raise 401 unless the request carries the configured login; without one configured,
        403 for a request from another machine unless the page is opened explicitly."""
        user, password = self._settings.status_user, self._settings.status_password
        if user is None or password is None:
            if not (self._settings.status_open or _from_this_machine(request)):
                raise web.HTTPForbidden(text=CLOSED_TO_OTHERS)
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
        """Bind and serve; ConfigError naming the key when the address cannot be had.

        A port another process holds, an address this machine lacks or a port it may not
        bind is the configuration's to change, like any other configuration error: the
        daemon exits 2 with 15018/15002, not with a traceback.
        """
        self._runner = web.AppRunner(self.make_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._settings.host, self._settings.port)
        try:
            await site.start()
        except OSError as exc:
            await self.close()
            raise ConfigError([_bind_problem(self._settings, exc)]) from None
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
