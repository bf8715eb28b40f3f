"""The worker registry drives the configuration's rules, ``--workers``, the daemon's start and
``config check`` for every worker it lists: none of them names a worker of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from recstore.common.errors import ConfigError
from recstore.workers import registry
from recstore.workers.base import WorkerSpec
from recstore.workers.registry import WORKERS, build_workers, enabled, load_settings
from recstore.workers.resources import Resources
from tests.conftest import run_cli

#: Every worker on, with all it needs.
ALL: dict[str, Any] = {
    "queues": {
        "recordings": "https://sqs.example/1/rec",
        "recordings-dlq": "https://sqs.example/1/d",
        "archive": "https://sqs.example/1/archive",
        "archive-dlq": "https://sqs.example/1/archive-dlq",
    },
    "workers": {
        "FileTransferer": {"enabled": True, "sourceBuckets": ["recordings"]},
        "DracoonGlobalSharer": {"count": 1},
        "VidyoSync": {"enabled": True},
        "Archiver": {"enabled": True},
        "Restorer": {"enabled": True},
        "ArchiveActions": {"enabled": True},
    },
    "dracoon": {"baseUrl": "https://dracoon.example", "login": "svc", "password": "pw-one"},
    "vidyo": {"url": "https://replay.example", "user": "admin", "password": "pw-vidyo"},
    "kaltura": {"serviceUrl": "https://kaltura.example", "partnerId": 1, "adminSecret": "s-3"},
    "archive": {"bucket": "archive"},
    "leases": {"bucket": "leases"},
}


def write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


async def test_the_configuration_with_every_worker_on_runs_each_registered_one(
    tmp_path: Path,
) -> None:
    settings = load_settings(write(tmp_path, ALL), {})
    assert enabled(settings) == list(WORKERS)
    async with Resources(settings) as resources:  # built, not run: nothing is opened
        built = [type(worker) for worker in build_workers(settings, resources)]
    assert built == [spec.build for spec in WORKERS]


@pytest.mark.parametrize("spec", WORKERS, ids=lambda spec: spec.name)
def test_each_worker_is_selected_alone_and_described(spec: WorkerSpec, tmp_path: Path) -> None:
    path = write(tmp_path, ALL)
    settings = load_settings(path, {}, workers=spec.name)
    assert enabled(settings) == [spec]
    result = run_cli("config", "check", "--config", str(path), "--workers", spec.name)
    assert result.returncode == 0, result.stderr
    kind = "singleton: one replica at a time" if spec.singleton else "pool: any number"
    runs = next(line for line in result.stdout.splitlines() if "runs:" in line)
    assert runs.startswith(f"  runs: {spec.name} ({kind}")
    assert ("consumes:" in result.stdout) == (spec.consumes is not None)
    assert ("leases: s3://leases/" in result.stdout) == spec.singleton


@pytest.mark.parametrize("spec", WORKERS, ids=lambda spec: spec.name)
def test_a_worker_switched_off_is_refused_by_name(spec: WorkerSpec, tmp_path: Path) -> None:
    doc = {**ALL, "workers": {**ALL["workers"], spec.name: {spec.switch: 0}}}
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, doc), {}, workers=spec.name)
    problems = dict(caught.value.problems)
    assert problems == {
        f"workers.{spec.name}.{spec.switch}": "named in --workers but off in the configuration"
    }


@pytest.mark.parametrize("spec", WORKERS, ids=lambda spec: spec.name)
def test_a_worker_is_held_to_its_needs_only_while_it_runs(spec: WorkerSpec, tmp_path: Path) -> None:
    alone: dict[str, Any] = {"workers": {other.name: {other.switch: 0} for other in WORKERS}}
    load_settings(write(tmp_path, alone), {})  # nothing asked of a worker that is off
    alone["workers"][spec.name] = {spec.switch: 1}
    with pytest.raises(ConfigError) as caught:  # each needs something a bare file lacks
        load_settings(write(tmp_path, alone), {})
    assert caught.value.problems


def test_a_worker_added_to_the_registry_needs_no_other_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One more declaration (here a second sync on VidyoSync's settings) is enough for it to
    be named by --workers, held to its needs and described by config check."""
    second = WorkerSpec(
        name="SecondSync",
        section="vidyo_sync",
        build=WORKERS[2].build,
        singleton=True,
        reaches=lambda settings: ["Elsewhere"],
        requires=lambda settings: (
            [] if settings.vidyo.user else [("vidyo.user", "SecondSync wants a user")]
        ),
    )
    monkeypatch.setattr(registry, "WORKERS", (*WORKERS, second))
    path = write(tmp_path, ALL)
    both = "VidyoSync,SecondSync"
    assert enabled(load_settings(path, {}, workers=both)) == [WORKERS[2], second]
    result = run_cli("config", "check", "--config", str(path), "--workers", both)
    assert result.returncode == 0, result.stderr
    assert "  reaches: Elsewhere, Kaltura, VidyoReplay" in result.stdout.splitlines()
    doc = {**ALL, "vidyo": {"url": "https://replay.example"}}
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, doc), {}, workers=both)
    assert ("vidyo.user", "SecondSync wants a user") in caught.value.problems
    result = run_cli("config", "check", "--config", str(path), "--workers", "Bogus")
    assert "one of FileTransferer, DracoonGlobalSharer, VidyoSync, Archiver, Restorer, " in (
        result.stderr
    )
    assert "ArchiveActions, SecondSync" in result.stderr


def test_a_key_two_running_workers_need_is_named_once_with_both(tmp_path: Path) -> None:
    doc = {**ALL, "kaltura": {}}
    doc["workers"] = {**ALL["workers"], "FileTransferer": {"enabled": False}}
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, doc), {}, workers="VidyoSync,Archiver,ArchiveActions")
    needed = [message for key, message in caught.value.problems if key == "kaltura.serviceUrl"]
    assert needed == ["required while VidyoSync, Archiver, ArchiveActions runs"]
