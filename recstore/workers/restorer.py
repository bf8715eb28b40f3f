"""Restorer: seed 002's restore job as a scheduled plan, under a singleton lease.

Every ``workers.Restorer.intervalMinutes`` one replica lists the placeholder entries
(``flavors_deleted``, or an older name of it) played within ``playedWithin`` years and
enqueues a ``restore`` for each. An original still in Glacier gets its restore requested
(WAIT_GLACIER) and is simply planned again by the next run until it is readable; then the
ArchiveActions pool puts it back. Dry run unless ``workers.Restorer.apply``.
"""

from __future__ import annotations

from collections.abc import Sequence

from recstore.archive.plan import PlanStep, restore_steps
from recstore.archive.states import ArchiveTags
from recstore.settings import Settings
from recstore.workers.archive_context import archive_bucket, archive_requires
from recstore.workers.archiver import ArchivePlanner
from recstore.workers.base import WorkerSpec
from recstore.workers.resources import Resources


class Restorer(ArchivePlanner):
    """``workers.Restorer``: plans seed 002's restore job."""

    def __init__(
        self,
        settings: Settings,
        resources: Resources | None = None,
        interval: float | None = None,
    ) -> None:
        config = settings.workers.restorer

        def steps(tags: ArchiveTags) -> Sequence[PlanStep]:
            return restore_steps(tags, config.played_within, config.max_entries)

        super().__init__(
            settings,
            resources,
            name="restorer",
            kind="restore",
            config=config,
            steps=steps,
            interval=interval,
        )


SPEC = WorkerSpec(
    name="Restorer",
    section="restorer",
    build=Restorer,
    singleton=True,
    sends_to=lambda settings: settings.archive.queue,
    reaches=lambda settings: ["Kaltura"],
    requires=archive_requires,
    uses=archive_bucket,
)
