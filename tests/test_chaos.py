"""The short chaos run: two replicas of ``recstore run`` take a batch of jobs while they are
killed at random (SIGKILL and SIGTERM); every job lands once, decryptable by every member, and
nothing is left behind (see :mod:`tests.chaos_helpers`; ``bench/chaos.py`` runs it at size)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.chaos_helpers import ChaosPlan, run_chaos
from tests.conftest import StackProcess
from tests.transfer_helpers import MiB

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
