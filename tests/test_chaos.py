"""The short chaos runs of transfers: two replicas of ``recstore run`` take a batch of jobs
while they are killed at random (SIGKILL and SIGTERM); every job lands once, decryptable by
every member, and nothing is left behind; the singleton sharer survives its holder killed
mid-run (see :mod:`tests.chaos_helpers`; ``bench/chaos.py`` runs them at size)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from tests.chaos_helpers import (
    ChaosPlan,
    daemon_status,
    run_chaos,
    wait_for_line,
)
from tests.conftest import StackProcess
from tests.dracoon_helpers import admin
from tests.transfer_helpers import MiB, Setup

pytestmark = [pytest.mark.e2e, pytest.mark.long]


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


def test_the_singleton_survives_its_holder_killed_mid_run_and_does_not_run_twice(
    devstack: StackProcess, tmp_path: Path
) -> None:
    """Two replicas of the sharer; the lease holder is killed (SIGKILL) in the middle of its
    run. The other takes the lease over within the TTL and, knowing from the lease when the
    dead one started, does not run the period's job again."""
    state = devstack.state
    setup = Setup(devstack, tmp_path)
    # the lease this test's alone
    config = setup.config(
        {"enabled": False}, leases={"prefix": f"chaos-{setup.tag}/", "ttl": "10s"}
    )
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


MISSING_KEYS = "^/api/v4/nodes/missingFileKeys"
