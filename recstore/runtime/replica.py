"""What one replica runs and what it needs, for ``recstore config check``.

A deployment runs the transfer pool and the singletons as separate roles (``--workers``), each
with its own queues, buckets, remotes and permissions. Before a role's first start the operator
wants to see, from the same configuration the daemon will read, what that replica will do and
what it must be able to reach; this module says it in a few lines.
"""

from __future__ import annotations

from recstore.settings import Settings
from recstore.workers.base import WorkerSpec
from recstore.workers.registry import enabled


def describe(settings: Settings) -> list[str]:
    """One line per thing the replica runs or needs, in the order an operator sets them up."""
    specs = enabled(settings)
    if not specs:
        return [
            "runs: no worker (only /healthcheck, /metrics and /status)",
            *endpoint_lines(settings),
        ]
    lines = ["runs: " + ", ".join(f"{spec.name} ({_kind(spec)})" for spec in specs)]
    lines += _queue_lines(settings, specs)
    lines += _bucket_lines(settings, specs)
    remotes = sorted({remote for spec in specs for remote in spec.reaches(settings)})
    if remotes:
        lines.append("reaches: " + ", ".join(remotes))
    lines.append(f"serves: http://{settings.http.host}:{settings.http.port}/healthcheck, /metrics")
    lines += endpoint_lines(settings)
    return lines


def endpoint_lines(settings: Settings) -> list[str]:
    """Who may ask each HTTP endpoint: the status pages show job ids, S3 keys and room paths."""
    http = settings.http
    address = f"{http.host}:{http.port}"
    if http.status_user is not None:
        status = f"need the login of http.statusUser ({http.status_user})"
    elif http.status_open:
        status = f"open to anyone who reaches {address} (http.statusOpen: true)"
    else:
        status = (
            "answer only requests from this machine (loopback); set http.statusUser and "
            "http.statusPassword to log in from elsewhere"
        )
    return [
        f"open: /healthcheck, /metrics to anyone who reaches {address} (no job, key or person)",
        f"status: /status, /status.json {status}",
    ]


def _kind(spec: WorkerSpec) -> str:
    if spec.singleton:
        return "singleton: one replica at a time under a lease"
    return "pool: any number of replicas"


def _queue_lines(settings: Settings, specs: list[WorkerSpec]) -> list[str]:
    lines = []
    for spec in specs:
        if spec.consumes is not None:
            work, dead = spec.consumes(settings)
            lines.append(
                f"consumes: {settings.queue_url(work)} (dead letters to {settings.queue_url(dead)})"
            )
    for spec in specs:
        if spec.sends_to is not None:
            lines.append(f"sends to: {settings.queue_url(spec.sends_to(settings))}")
    return _once(lines)


def _bucket_lines(settings: Settings, specs: list[WorkerSpec]) -> list[str]:
    lines = []
    singletons = [spec.name for spec in specs if spec.singleton]
    if singletons:
        if settings.leases.shared:
            where = f"s3://{settings.leases.bucket}/{settings.leases.prefix}"
            lines.append(f"leases: {where} (held by {', '.join(singletons)})")
        else:
            lines.append("leases: off (run exactly one replica of this role)")
    return _once(lines + [line for spec in specs for line in spec.uses(settings)])


def _once(lines: list[str]) -> list[str]:
    """Each line once, where it first comes (workers that share a queue or bucket)."""
    return list(dict.fromkeys(lines))
