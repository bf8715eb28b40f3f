"""One module per worker; :func:`build_workers` turns the configuration into worker objects."""

from __future__ import annotations

from recstore.settings import Settings
from recstore.workers.base import Worker, WorkerHealth

__all__ = ["Worker", "WorkerHealth", "build_workers"]


def build_workers(settings: Settings) -> list[Worker]:
    """The workers the configuration turns on, in start order.

    Configuration validation has already refused workers this build does not have
    (:data:`recstore.settings.AVAILABLE_WORKERS`), so every enabled one is built here.
    """
    from recstore.workers.archive_actions import ArchiveActions
    from recstore.workers.archiver import Archiver
    from recstore.workers.file_transferer import FileTransferer
    from recstore.workers.global_sharer import DracoonGlobalSharer
    from recstore.workers.restorer import Restorer
    from recstore.workers.vidyo_sync import VidyoSync

    workers: list[Worker] = []
    if settings.workers.file_transferer.enabled:
        workers.append(FileTransferer(settings))
    if settings.workers.dracoon_global_sharer.count > 0:
        workers.append(DracoonGlobalSharer(settings))
    if settings.workers.vidyo_sync.enabled:
        workers.append(VidyoSync(settings))
    if settings.workers.archive_actions.enabled:
        workers.append(ArchiveActions(settings))
    if settings.workers.archiver.enabled:
        workers.append(Archiver(settings))
    if settings.workers.restorer.enabled:
        workers.append(Restorer(settings))
    return workers
