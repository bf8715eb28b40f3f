"""Runs the real daemon (supervisor, signal handling, web server) in its own process with
workers a test controls, so SIGTERM/SIGINT behaviour is tested on a real process.

    python tests/daemon_harness.py CONFIG MARKER_DIR MODE

Modes: ``drain`` (a job that needs 1 s to finish after stop), ``stuck`` (a job that ignores
stop: the grace period runs out and the job must be handed back), ``crash`` (a worker that
crashes twice, then runs). Each worker writes marker files so the test can see what happened.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recstore.common import events
from recstore.runtime import daemon
from recstore.workers.base import WorkerHealth
from recstore.workers.registry import load_settings


class JobWorker:
    """Holds one job; on stop finishes it in ``finish_seconds``; on cancel hands it back."""

    def __init__(self, name: str, markers: Path, finish_seconds: float, obey_stop: bool) -> None:
        self.name = name
        self.health = WorkerHealth()
        self._markers = markers
        self._finish = finish_seconds
        self._obey = obey_stop

    def mark(self, what: str) -> None:
        (self._markers / f"{self.name}.{what}").write_text("")

    async def run(self, stop: asyncio.Event) -> None:
        self.mark("started")
        try:
            if self._obey:
                await stop.wait()
                await asyncio.sleep(self._finish)  # the in-flight job completes
                self.mark("finished")
            else:
                await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.mark("handed_back")
            raise


class CrashingWorker:
    def __init__(self, name: str, markers: Path, crashes: int) -> None:
        self.name = name
        self.health = WorkerHealth()
        self._markers = markers
        self._left = crashes

    async def run(self, stop: asyncio.Event) -> None:
        if self._left > 0:
            self._left -= 1
            (self._markers / f"{self.name}.crash{self._left}").write_text("")
            raise RuntimeError("boom")
        (self._markers / f"{self.name}.steady").write_text("")
        await stop.wait()


def main() -> int:
    config, markers, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    settings = load_settings(config)
    events.setup_logging(settings.logger.level, settings.logger.format)
    if mode == "drain":
        workers = [JobWorker("slow_job", markers, 1.0, obey_stop=True)]
    elif mode == "stuck":
        workers = [
            JobWorker("stuck_job", markers, 0, obey_stop=False),
            JobWorker("quick_job", markers, 0.1, obey_stop=True),
        ]
    elif mode == "crash":
        workers = [CrashingWorker("flaky", markers, crashes=2)]
    else:
        raise SystemExit(f"unknown mode {mode}")
    return daemon.run(settings, workers)  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main())
