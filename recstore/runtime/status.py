"""``recstore status`` and ``recstore healthcheck``: a running daemon, asked from outside.

Both ask the daemon's own endpoints (the address from the configuration), so they show what
the daemon knows rather than guessing: ``/status.json`` as a human reads it, ``/healthcheck``
as an exit status for a container's or a service manager's probe.
"""

from __future__ import annotations

import base64
import http.client
import json
import time
import urllib.error
import urllib.request
from typing import Any

from recstore.settings import HttpSettings


def daemon_url(http: HttpSettings, path: str) -> str:
    """Where the daemon of this configuration answers ``path``, seen from the same machine.

    A daemon that listens on every address is asked on loopback: IPv4's, or IPv6's for
    ``::``, whose socket asyncio makes IPv6-only. ``ValueError`` when the configuration
    cannot tell (``http.port`` 0 takes any free port).
    """
    if http.port == 0:
        raise ValueError(
            "http.port is 0 (any free port), so the daemon's address is not known: give --url"
        )
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(http.host, http.host)
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    return f"http://{host}:{http.port}{path}"


#: Straight to the daemon: a proxy from the environment (set for AWS or DRACOON) would be
#: asked for a loopback address instead.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _ask(url: str, timeout: float, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """The daemon's status code and body for ``url``; ``ConnectionError`` when none answers."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{url!r} is not an http(s) URL")
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 (scheme checked)
    try:
        with _DIRECT.open(request, timeout=timeout) as answer:
            return int(answer.status), answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise ConnectionError(f"no recstore daemon answers at {url}: {exc}") from None


def check_health(url: str, timeout: float = 5.0) -> tuple[bool, str]:
    """Whether the daemon at ``url`` says it is healthy, and a line that says why not.

    Only the monitor's contract is read: 200 is healthy; a 500 names the failing worker. A
    daemon that does not answer is unhealthy too, with the reason.
    """
    try:
        status, body = _ask(url, timeout)
    except ConnectionError as exc:
        return False, str(exc)
    if status == 200:
        return True, "healthy"
    try:
        reason = str(json.loads(body).get("error") or status)
    except (ValueError, AttributeError):
        reason = f"HTTP {status}"
    return False, f"unhealthy: {reason}"


def fetch_status(
    url: str, timeout: float = 5.0, login: tuple[str, str] | None = None
) -> dict[str, Any]:
    """The daemon's status document; ``ConnectionError`` with a clear message when it is down.

    ``login`` is ``(http.statusUser, http.statusPassword)`` when the daemon requires it.
    """
    headers = {}
    if login is not None:
        token = base64.b64encode(f"{login[0]}:{login[1]}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    status, body = _ask(url, timeout, headers)
    if status == 401:
        raise ConnectionError(
            f"{url} wants a login: set http.statusUser/statusPassword in the configuration"
        )
    if status != 200:
        raise ConnectionError(f"{url} answered {status}")
    document: dict[str, Any] = json.loads(body)
    return document


def render(document: dict[str, Any]) -> str:
    lines = [
        f"recstore {document.get('version', '?')}  pid {document.get('pid', '?')}  "
        f"up {_duration(float(document.get('uptime_seconds', 0)))}"
    ]
    workers = document.get("workers", [])
    if not workers:
        lines.append("no workers configured")
    for worker in workers:
        state = "healthy" if worker.get("healthy") else "UNHEALTHY"
        detail = f" ({worker['detail']})" if worker.get("detail") else ""
        lines.append(
            f"  {worker['name']:<24} {state}{detail}  restarts {worker.get('restarts', 0)}"
        )
        for job in worker.get("in_flight", []):
            done, total = int(job.get("bytes_done", 0)), int(job.get("bytes_total", 0))
            share = f"{100 * done / total:5.1f} %" if total else "    -"
            lines.append(f"      {job.get('job_id', '?')}  {share} of {total} bytes")
        periodic = worker.get("periodic")
        if periodic:
            lines.append("      " + _periodic(periodic, float(document.get("time") or time.time())))
    for queue in document.get("queues", []):
        depth = "?" if queue.get("visible") is None else queue["visible"]
        busy = "?" if queue.get("not_visible") is None else queue["not_visible"]
        error = f"  ({queue['error']})" if queue.get("error") else ""
        lines.append(
            f"queue {queue['name']} ({queue['role']}): {depth} waiting, {busy} in flight{error}"
        )
    failures = document.get("recent_failures", [])
    if failures:
        lines.append("recent failures:")
        for failure in failures[-10:]:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(float(failure["time"])))
            who = failure.get("worker") or "-"
            lines.append(f"  {when}Z {failure['code']} {who}: {failure['message']}")
    return "\n".join(lines) + "\n"


def _periodic(periodic: dict[str, Any], now: float) -> str:
    last = periodic.get("last_started")
    last_text = "never run" if last is None else f"last run {_duration(now - float(last))} ago"
    if periodic.get("last_outcome"):
        last_text += f" ({periodic['last_outcome']})"
    upcoming = periodic.get("next_run")
    if upcoming is not None:
        next_text = f"next in {_duration(max(0.0, float(upcoming) - now))}"
    else:
        next_text = f"lease {periodic.get('lease', '?')}"
    counts = ", ".join(f"{k} {v}" for k, v in (periodic.get("outcomes") or {}).items())
    return f"{last_text}; {next_text}; {counts}"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s"
