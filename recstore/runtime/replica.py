"""What one replica runs and what it needs, for ``recstore config check``.

A deployment runs the transfer pool and the singletons as separate roles (``--workers``), each
with its own queues, buckets, remotes and permissions. Before a role's first start the operator
wants to see, from the same configuration the daemon will read, what that replica will do and
what it must be able to reach; this module says it in a few lines.
"""

from __future__ import annotations

from recstore.settings import SINGLETON_WORKERS, Settings, enabled_workers

#: Workers that consume a queue and scale with it; the rest run once, under a lease.
POOL_WORKERS = frozenset({"FileTransferer", "ArchiveActions"})
#: The remotes each worker talks to, besides S3 and SQS.
_REMOTES: dict[str, tuple[str, ...]] = {
    "FileTransferer": ("DRACOON",),
    "DracoonGlobalSharer": ("DRACOON",),
    "VidyoSync": ("VidyoReplay", "Kaltura"),
    "Archiver": ("Kaltura",),
    "Restorer": ("Kaltura",),
    "ArchiveActions": ("Kaltura",),
}


def describe(settings: Settings) -> list[str]:
    """One line per thing the replica runs or needs, in the order an operator sets them up."""
    names = [name for name, _ in enabled_workers(settings)]
    if not names:
        return [
            "runs: no worker (only /healthcheck, /metrics and /status)",
            *endpoint_lines(settings),
        ]
    lines = ["runs: " + ", ".join(f"{name} ({_kind(name)})" for name in names)]
    lines += _queue_lines(settings, names)
    lines += _bucket_lines(settings, names)
    remotes = sorted({remote for name in names for remote in _REMOTES[name]})
    if "FileTransferer" in names and settings.configurator.url:
        remotes.append(f"configurator {settings.configurator.url}")
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


def _kind(name: str) -> str:
    if name in POOL_WORKERS:
        return "pool: any number of replicas"
    return "singleton: one replica at a time under a lease" if name in SINGLETON_WORKERS else ""


def _queue_lines(settings: Settings, names: list[str]) -> list[str]:
    lines = []
    transferer = settings.workers.file_transferer
    archive = settings.archive
    if "FileTransferer" in names:
        lines.append(
            f"consumes: {settings.queue_url(transferer.queue)} "
            f"(dead letters to {settings.queue_url(transferer.dead_letter_queue)})"
        )
    if "ArchiveActions" in names:
        lines.append(
            f"consumes: {settings.queue_url(archive.queue)} "
            f"(dead letters to {settings.queue_url(archive.dead_letter_queue)})"
        )
    if {"Archiver", "Restorer"} & set(names):
        lines.append(f"sends to: {settings.queue_url(archive.queue)}")
    return lines


def _bucket_lines(settings: Settings, names: list[str]) -> list[str]:
    lines = []
    singletons = [name for name in names if name in SINGLETON_WORKERS]
    if singletons:
        if settings.leases.shared:
            where = f"s3://{settings.leases.bucket}/{settings.leases.prefix}"
            lines.append(f"leases: {where} (held by {', '.join(singletons)})")
        else:
            lines.append("leases: off (run exactly one replica of this role)")
    if {"Archiver", "Restorer", "ArchiveActions"} & set(names) and settings.archive.bucket:
        lines.append(f"archive bucket: s3://{settings.archive.bucket}")
    if "FileTransferer" in names:
        verbs = "reads and removes" if settings.s3.remove_after_transferring else "reads"
        sources = settings.workers.file_transferer.source_buckets or ()
        allowed = ", ".join(f"s3://{entry}" for entry in sources) or "none"
        lines.append(
            f"{verbs}: the recordings' source objects named in each job, only under {allowed} "
            "(workers.FileTransferer.sourceBuckets)"
        )
    return lines
