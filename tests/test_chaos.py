"""The short chaos runs: two replicas of ``recstore run`` take a batch of jobs, or archive a
few dozen Kaltura entries their planner enqueued, while they are killed at random (SIGKILL and
SIGTERM); every job lands once, decryptable by every member, every entry is archived once, and
nothing is left behind (see :mod:`tests.chaos_helpers`; ``bench/chaos.py`` runs them at
size)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.archive_helpers import entry, seed_entries
from tests.chaos_helpers import ArchiveChaosPlan, ChaosPlan, run_archive_chaos, run_chaos
from tests.conftest import StackProcess, set_faults
from tests.dracoon_helpers import admin
from tests.transfer_helpers import MiB, Setup

pytestmark = pytest.mark.e2e


def test_jobs_land_exactly_once_while_replicas_are_killed_at_random(
    devstack: StackProcess, tmp_path: Path
) -> None:
    seed = int(os.environ.get("RECSTORE_CHAOS_SEED", "7"))
    plan = ChaosPlan(
        replicas=2,
        jobs=20,
        kills=4,
        seed=seed,
        kill_gap=(0.5, 2.0),
        multi_chunk=0.1,
        several=0.3,
        small_size=(16 * 1024, 512 * 1024),
        large_size=7 * MiB,
        patience=120,
    )
    result = run_chaos(devstack, tmp_path, plan)
    print(result.summary())
    assert not result.problems, "\n".join([result.summary(), *result.problems])
    assert sum(result.kills.values()) == plan.kills  # each met work: a batch came before it


@pytest.mark.stack
def test_entries_are_archived_exactly_once_while_replicas_are_killed_at_random(
    tmp_path: Path,
) -> None:
    """The planner (a singleton) enqueues an s3copy per entry, the pools of both replicas
    copy and then replace each; replicas die at random meanwhile, the planner's holder too.
    A dev stack of its own: the planner archives every old entry its Kaltura holds."""
    seed = int(os.environ.get("RECSTORE_CHAOS_SEED", "7"))
    plan = ArchiveChaosPlan(
        replicas=2,
        entries=20,
        kills=4,
        seed=seed,
        kill_gap=(0.5, 2.0),
        sizes=(16 * 1024, 512 * 1024),
        conversion=0.2,
        lock_ttl="10s",
        patience=120,
    )
    (tmp_path / "stack").mkdir()
    stack = StackProcess(tmp_path / "stack")
    try:
        result = run_archive_chaos(stack, tmp_path, plan)
    finally:
        stack.stop()
    print(result.summary())
    assert not result.problems, "\n".join([result.summary(), *result.problems])
    assert sum(result.kills.values()) >= 1  # the first lands while the first entries are planned


def test_the_singleton_survives_its_holder_killed_mid_run_and_does_not_run_twice(
    devstack: StackProcess, tmp_path: Path
) -> None:
    """Two replicas of the sharer; the lease holder is killed (SIGKILL) in the middle of its
    run. The other takes the lease over within the TTL and, knowing from the lease when the
    dead one started, does not run the period's job again."""
    state = devstack.state
    setup = Setup(devstack, tmp_path)
    config = setup.config()
    doc = yaml.safe_load(config.read_text())
    doc["workers"]["FileTransferer"]["enabled"] = False
    doc["leases"].update({"prefix": f"chaos-{setup.tag}/", "ttl": "10s"})  # this test's alone
    config.write_text(yaml.safe_dump(doc))
    # A run that takes a while: the kill lands in it.
    asyncio.run(admin(state, "faults", {"latency_ms": 10000, "path_pattern": MISSING_KEYS}))
    try:
        first = setup.start(config)
        wait_for_line(tmp_path / "daemon-0.log", "lease for dracoon_global_sharer taken")
        setup.start(config)
        wait_for_line(tmp_path / "daemon-1.log", " 15000 ")  # it runs, and waits its turn
        killed = time.monotonic()
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert "run ended" not in (tmp_path / "daemon-0.log").read_text()  # killed mid-run
        asyncio.run(admin(state, "faults", {}))
        wait_for_line(tmp_path / "daemon-1.log", "lease for dracoon_global_sharer taken", 30)
        assert time.monotonic() - killed < 10 + 10 / 3 + 3  # the TTL, one retry, slack
        status = daemon_status(tmp_path / "daemon-1.log")
        [sharer] = [w for w in status["workers"] if w["name"] == "dracoon_global_sharer"]
        assert sharer["periodic"]["lease"] == "held"
        # Taking over, it read when the period's run began: the run is not done again now.
        assert sharer["periodic"]["runs"] == 0, sharer
        assert "dracoon_global_sharer run ended" not in (tmp_path / "daemon-1.log").read_text()
    finally:
        asyncio.run(admin(state, "faults", {}))
        setup.stop_all()
    assert "lease for dracoon_global_sharer released" in (tmp_path / "daemon-1.log").read_text()


def test_a_planner_killed_mid_run_is_followed_by_a_whole_run_on_another_replica(
    devstack: StackProcess, tmp_path: Path
) -> None:
    """The Archiver's lease holder is killed (SIGKILL) while it lists Kaltura; the replica that
    takes the lease over plans the period again at once, so no entry of it waits a day (the
    sharer, whose job must not be done twice, does the opposite: above). Dry run, without
    the pools: what is checked is what the planner enqueued."""
    state = devstack.state
    setup = Setup(devstack, tmp_path)
    ids = [f"0_{setup.tag}p{n}" for n in range(5)]
    asyncio.run(seed_entries(state["kaltura_url"], [entry(i, b"old lecture") for i in ids]))
    config = setup.config(
        queues={"archive": setup.work_url, "archive-dlq": setup.dead_url},
        leases={"prefix": f"chaos-{setup.tag}/", "ttl": "10s"},  # this test's alone
    )
    doc = yaml.safe_load(config.read_text())
    doc["workers"] = {
        "FileTransferer": {"enabled": False},
        "DracoonGlobalSharer": {"count": 0},
        "Archiver": {"enabled": True, "unplayedFor": 1},
    }
    config.write_text(yaml.safe_dump(doc))
    # A listing that takes a while: the kill lands in the run.
    kaltura = state["kaltura_url"]
    asyncio.run(set_faults(kaltura, {"latency_ms": 5000, "path_pattern": "/api_v3/"}))
    try:
        first = setup.start(config)
        wait_for_line(tmp_path / "daemon-0.log", "lease for archiver taken")
        setup.start(config)
        wait_for_line(tmp_path / "daemon-1.log", " 15000 ")  # it runs, and waits its turn
        time.sleep(1)
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert "archive run" not in (tmp_path / "daemon-0.log").read_text()  # killed mid-run
        asyncio.run(set_faults(kaltura, {}))
        wait_for_line(tmp_path / "daemon-1.log", "lease for archiver taken", 30)
        wait_for_line(tmp_path / "daemon-1.log", "archive run", 30)
    finally:
        asyncio.run(set_faults(kaltura, {}))
        setup.stop_all()
    planned = [json.loads(m["body"]) for m in setup.received()]
    assert {(p["action"], p["entryId"]) for p in planned} >= {("s3copy", i) for i in ids}


MISSING_KEYS = "^/api/v4/nodes/missingFileKeys"


def wait_for_line(log: Path, text: str, patience: float = 60) -> None:
    deadline = time.monotonic() + patience
    while not (log.exists() and text in log.read_text()):
        assert time.monotonic() < deadline, f"{text!r} not in {log.name} after {patience} s"
        time.sleep(0.1)


def daemon_status(log: Path) -> dict[str, Any]:
    port = re.search(r" 15000 .*http_port=(\d+)", log.read_text())
    assert port is not None
    with urllib.request.urlopen(f"http://127.0.0.1:{port.group(1)}/status.json") as answer:
        result: dict[str, Any] = json.loads(answer.read())
    return result
