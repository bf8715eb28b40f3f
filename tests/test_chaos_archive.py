"""The short chaos runs of the archive: two replicas of ``recstore run`` archive a few dozen
Kaltura entries their planner enqueued while they are killed at random (SIGKILL and SIGTERM):
every entry is archived once; a planner killed mid-run is followed by a whole run (see
:mod:`tests.chaos_helpers`; ``bench/chaos.py`` runs them at size)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

import pytest
import yaml

from tests.archive_helpers import entry, seed_entries
from tests.chaos_helpers import (
    ArchiveChaosPlan,
    run_archive_chaos,
    wait_for_line,
)
from tests.conftest import StackProcess, set_faults
from tests.transfer_helpers import Setup

pytestmark = [pytest.mark.e2e, pytest.mark.long]


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
