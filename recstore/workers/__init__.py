"""One module per worker, each declaring itself once (``SPEC``); :mod:`.registry` lists them
and builds the ones the configuration turns on."""

from __future__ import annotations

from recstore.workers.base import Worker, WorkerHealth, WorkerSpec

__all__ = ["Worker", "WorkerHealth", "WorkerSpec"]
