"""Which workers a configuration turns on, and how each is switched off (``--workers``)."""

from __future__ import annotations

from typing import Any

from recstore.settings.root import Settings

#: Workers that run in one replica at a time, under a lease.
SINGLETON_WORKERS = frozenset({"DracoonGlobalSharer", "VidyoSync", "Archiver", "Restorer"})


#: Workers this build can run; the others are refused at start rather than silently idle.
AVAILABLE_WORKERS: frozenset[str] = frozenset(
    {
        "FileTransferer",
        "DracoonGlobalSharer",
        "VidyoSync",
        "Archiver",
        "Restorer",
        "ArchiveActions",
    }
)


def enabled_workers(settings: Settings) -> list[tuple[str, str]]:
    """``(name, switching key)`` of every worker the configuration turns on."""
    workers = settings.workers
    switched = [
        ("FileTransferer", "enabled", workers.file_transferer.enabled),
        ("DracoonGlobalSharer", "count", workers.dracoon_global_sharer.count > 0),
        ("VidyoSync", "enabled", workers.vidyo_sync.enabled),
        ("Archiver", "enabled", workers.archiver.enabled),
        ("Restorer", "enabled", workers.restorer.enabled),
        ("ArchiveActions", "enabled", workers.archive_actions.enabled),
    ]
    return [(name, key) for name, key, on in switched if on]


#: Each worker's switch and the value that turns it off (see :func:`enabled_workers`).
WORKER_OFF: dict[str, tuple[str, dict[str, Any]]] = {
    "FileTransferer": ("file_transferer", {"enabled": False}),
    "DracoonGlobalSharer": ("dracoon_global_sharer", {"count": 0}),
    "VidyoSync": ("vidyo_sync", {"enabled": False}),
    "Archiver": ("archiver", {"enabled": False}),
    "Restorer": ("restorer", {"enabled": False}),
    "ArchiveActions": ("archive_actions", {"enabled": False}),
}
