"""Bytes done of bytes total for every upload in flight, for ``/status.json`` and ``/status``.

The transfer pipeline reports each chunk it hands on to the uploader; the status page reads a
snapshot when someone looks. The hot path is one integer addition per chunk (a chunk is
megabytes), with no lock, I/O or metric update, because everything runs on one event loop.

An entry is keyed by nothing but itself: the job id and worker come from the context variables
the worker already sets for log lines (:data:`recstore.common.events.job_var`,
``worker_var``), so the pipeline needs no extra arguments. Entries carry identifiers and S3
keys only, never names of participants or anything from a message body.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from recstore.common import events


@dataclass
class Transfer:
    """One file on its way to one target; ``advance`` is the pipeline's progress callback."""

    job_id: str | None
    worker: str | None
    source: str
    target: str
    bytes_total: int
    bytes_done: int = 0
    started: float = field(default_factory=time.monotonic)

    def advance(self, n: int) -> None:
        self.bytes_done += n

    def snapshot(self, now: float) -> dict[str, object]:
        elapsed = max(now - self.started, 1e-9)
        return {
            "job_id": self.job_id,
            "source": self.source,
            "target": self.target,
            "bytes_done": self.bytes_done,
            "bytes_total": self.bytes_total,
            "elapsed_seconds": round(elapsed, 1),
            "bytes_per_second": round(self.bytes_done / elapsed),
        }


class ProgressRegistry:
    """The uploads running in this process; entries leave when their upload ends, however."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._running: dict[int, Transfer] = {}
        self._clock = clock

    @contextmanager
    def track(self, source: str, target: str, bytes_total: int) -> Iterator[Transfer]:
        """Register an upload for the duration of the ``with`` block."""
        transfer = Transfer(
            job_id=events.job_var.get(),
            worker=events.worker_var.get(),
            source=source,
            target=target,
            bytes_total=bytes_total,
            started=self._clock(),
        )
        self._running[id(transfer)] = transfer
        try:
            yield transfer
        finally:
            self._running.pop(id(transfer), None)

    def snapshot(self, worker: str | None = None) -> list[dict[str, object]]:
        """The running uploads (of ``worker``, when given), oldest first."""
        now = self._clock()
        return [
            transfer.snapshot(now)
            for transfer in self._running.values()
            if worker is None or transfer.worker == worker
        ]


#: The process-wide registry the transfer pipeline reports into.
PROGRESS = ProgressRegistry()
