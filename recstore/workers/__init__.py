"""One module per worker; :func:`build_workers` turns the configuration into worker objects."""

from __future__ import annotations

from recstore.config import Settings
from recstore.workers.base import Worker, WorkerHealth

__all__ = ["Worker", "WorkerHealth", "build_workers"]


def build_workers(settings: Settings) -> list[Worker]:
    """The workers the configuration turns on, in start order.

    Configuration validation has already refused workers this build does not have
    (:data:`recstore.config.AVAILABLE_WORKERS`), so every enabled one is built here.
    """
    # Each worker's module is imported only when it runs: a replica pays for the clients
    # of its own workers (zeep and the Kaltura client are a tenth of a second at each start).
    workers: list[Worker] = []
    if settings.workers.file_transferer.enabled:
        from recstore.workers.file_transferer import FileTransferer

        workers.append(FileTransferer(settings))
    if settings.workers.dracoon_global_sharer.count > 0:
        from recstore.workers.global_sharer import DracoonGlobalSharer

        workers.append(DracoonGlobalSharer(settings))
    if settings.workers.vidyo_sync.enabled:
        from recstore.workers.vidyo_sync import VidyoSync

        workers.append(VidyoSync(settings))
    if settings.workers.archive_actions.enabled:
        from recstore.workers.archive_actions import ArchiveActions

        workers.append(ArchiveActions(settings))
    if settings.workers.archiver.enabled:
        from recstore.workers.archiver import Archiver

        workers.append(Archiver(settings))
    if settings.workers.restorer.enabled:
        from recstore.workers.restorer import Restorer

        workers.append(Restorer(settings))
    return workers
