"""``recstore status`` and ``recstore healthcheck``: a running daemon, asked from outside.

Both ask the daemon's own endpoints (the address from the configuration), so they show what
the daemon knows rather than guessing: ``/status.json`` as a human reads it, ``/healthcheck``
as an exit status for a container's or a service manager's probe.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from typing import Any

from recstore.config import HttpSettings


def daemon_url(http: HttpSettings, path: str) -> str:
    """Where the daemon of this configuration answers ``path``, seen from the same machine.

    A daemon that listens on every address is asked on loopback. ``ValueError`` when the
    configuration cannot tell (``http.port`` 0 takes any free port).
    """
    if http.port == 0:
        raise ValueError(
            "http.port is 0 (any free port), so the daemon's address is not known: give --url"
        )
    host = "127.0.0.1" if http.host in ("0.0.0.0", "::", "") else http.host
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    return f"http://{host}:{http.port}{path}"


def check_health(url: str, timeout: float = 5.0) -> tuple[bool, str]:
    """Whether the daemon at ``url`` says it is healthy, and a line that says why not.

    Only the monitor's contract is read: 200 is healthy; a 500 names the failing worker. A
    daemon that does not answer is unhealthy too, with the reason.
    """
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{url!r} is not an http(s) URL")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 (scheme checked)
            answer.read()
            return True, "healthy"
    except urllib.error.HTTPError as exc:
        try:
            reason = str(json.loads(exc.read()).get("error") or exc.code)
        except (ValueError, AttributeError, OSError):
            reason = f"HTTP {exc.code}"
        return False, f"unhealthy: {reason}"
    except (urllib.error.URLError, OSError) as exc:
        return False, f"no recstore daemon answers at {url}: {exc}"


def fetch_status(
    url: str, timeout: float = 5.0, login: tuple[str, str] | None = None
) -> dict[str, Any]:
    """The daemon's status document; ``ConnectionError`` with a clear message when it is down.

    ``login`` is ``(http.statusUser, http.statusPassword)`` when the daemon requires it.
    """
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{url!r} is not an http(s) URL")
    request = urllib.request.Request(url)  # noqa: S310 (scheme checked)
    if login is not None:
        token = base64.b64encode(f"{login[0]}:{login[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            document: dict[str, Any] = json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            raise ConnectionError(
                f"{url} wants a login: set http.statusUser/statusPassword in the configuration"
            ) from None
        raise ConnectionError(f"{url} answered {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ConnectionError(f"no recstore daemon answers at {url}: {exc}") from None
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
