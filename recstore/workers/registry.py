"""Every worker this build can run: one line per worker module, each declaring itself once.

A worker module ends with a :class:`~recstore.workers.base.WorkerSpec` (``SPEC``): its name and
settings, singleton or pool, the queues it consumes, what it needs, how to build it. Everything
that depends on which workers run loops over :data:`WORKERS`: the configuration's rules
(:func:`worker_rules`: default-on workers nothing sets up, ``--workers``, each running worker's
needs, the singletons' lease bucket), the daemon's start (:func:`build_workers`), the queue
depth sampler, and ``config check``'s description of a replica.

Adding a worker: its module with a ``SPEC``, its settings model under ``workers``
(``settings/workers.py``: the model and its field), and its line below (with its import);
then regenerate ``conf/app.yaml`` and ``docs/configuration.md``. Nothing else names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path

from pydantic import BaseModel

from recstore import settings as _settings
from recstore.settings import Rules, Settings
from recstore.workers import (
    archive_actions,
    archiver,
    file_transferer,
    global_sharer,
    restorer,
    vidyo_sync,
)
from recstore.workers.base import REQUIRED, Problem, Worker, WorkerSpec
from recstore.workers.resources import Resources

#: Every worker, in start order.
WORKERS: tuple[WorkerSpec, ...] = (
    file_transferer.SPEC,
    global_sharer.SPEC,
    vidyo_sync.SPEC,
    archiver.SPEC,
    restorer.SPEC,
    archive_actions.SPEC,
)

#: Where a ``--workers`` problem is reported.
SELECTION = "workers (--workers, RECSTORE_WORKERS)"


def enabled(settings: Settings) -> list[WorkerSpec]:
    """The workers the configuration turns on, in start order."""
    return [spec for spec in WORKERS if spec.on(settings)]


def build_workers(settings: Settings, resources: Resources) -> list[Worker]:
    """The workers the configuration turns on, built on the daemon's shared ``resources``, in
    start order."""
    return [spec.build(settings, resources) for spec in enabled(settings)]


def load_settings(
    path: Path | str | None,
    environ: Mapping[str, str] | None = None,
    workers: str | None = None,
) -> Settings:
    """The settings as the daemon runs them (:func:`recstore.settings.load_settings` with
    :func:`worker_rules`); ``workers``: the replica's ``--workers``."""
    return _settings.load_settings(path, environ, rules=worker_rules(workers))


def worker_rules(selection: str | None = None) -> Rules:
    """The rules :func:`recstore.settings.load_settings` applies for the daemon.

    ``selection`` (``recstore run --workers``, ``RECSTORE_WORKERS``) names the workers this
    replica runs, comma-separated, out of those the configuration turns on; the others are
    turned off before their needs are checked, so a replica is only asked for what it runs.
    """
    return partial(_apply_rules, selection=selection)


def _apply_rules(settings: Settings, selection: str | None) -> tuple[Settings, list[Problem]]:
    problems: list[Problem] = []
    settings = _settle_defaults(settings)
    if selection is not None:
        settings = _select(settings, selection, problems)
    return settings, problems + _needs(settings)


def _settle_defaults(settings: Settings) -> Settings:
    """Turn off the default-on workers that nothing in the configuration sets up.

    A configuration that says nothing about such a worker and gives it nothing to work on
    (:attr:`WorkerSpec.unconfigured`) is one for other work, such as the Kaltura archive: the
    worker is left off and the daemon says so at start. Once any of its keys is set, it is
    held to its checks.
    """
    off: dict[str, BaseModel] = {}
    why: dict[str, str] = {}
    for spec in WORKERS:
        if spec.unconfigured is None or not spec.on(settings):
            continue
        if spec.settings_of(settings).model_fields_set:
            continue
        reason = spec.unconfigured(settings)
        if reason:
            off[spec.section], why[spec.name] = spec.off(settings), reason
    return settings.with_workers(off, why) if off else settings


def _select(settings: Settings, names: str, problems: list[Problem]) -> Settings:
    """``settings`` with every worker off that ``names`` leaves out.

    A name that is no worker, or one the configuration does not turn on, is a problem rather
    than ignored: a replica started to run a worker must not quietly run nothing.
    """
    wanted = [name.strip() for name in names.split(",") if name.strip()]
    if not wanted:
        problems.append((SELECTION, "names no worker"))
    known = {spec.name: spec for spec in WORKERS}
    for name in wanted:
        spec = known.get(name)
        if spec is None:
            problems.append((SELECTION, f"{name!r} is no worker: one of {', '.join(known)}"))
        elif not spec.on(settings):
            problems.append(
                (f"workers.{name}.{spec.switch}", "named in --workers but off in the configuration")
            )
    off = {spec.section: spec.off(settings) for spec in WORKERS if spec.name not in wanted}
    return settings.with_workers(off)


def _needs(settings: Settings) -> list[Problem]:
    """What the running workers need; a key several of them need is named once, with them."""
    problems: list[Problem] = []
    needed_by: dict[str, list[str]] = {}
    running = enabled(settings)
    for spec in running:
        for key, message in spec.requires(settings):
            if message == REQUIRED:
                needed_by.setdefault(key, []).append(spec.name)
            else:
                problems.append((key, message))
    problems += [
        (key, f"required while {', '.join(names)} runs") for key, names in needed_by.items()
    ]
    singletons = [spec.name for spec in running if spec.singleton]
    if singletons and settings.leases.enabled and not settings.leases.bucket:
        problems.append(
            (
                "leases.bucket",
                f"required while {', '.join(singletons)} runs "
                "(or set leases.enabled: false for a single replica)",
            )
        )
    return problems
