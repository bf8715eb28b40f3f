"""The FileTransferer stopped and killed: the daemon as a real process on the dev stack,
SIGKILLed or SIGTERMed mid-job, and a second daemon finishing what the first left."""

from __future__ import annotations

import asyncio
import json
import signal
import time

import pytest

from recstore.devstack.appconfig import DEMO_INSTANCE
from tests.dracoon_helpers import admin
from tests.transfer_helpers import (
    MiB,
    Setup,
    decrypted_sha256,
    files_in,
    job,
    open_uploads,
)

# The daemon as a process against the dev stack: what an operator runs.
pytestmark = pytest.mark.e2e


def test_a_killed_daemon_resumes_without_duplicates(setup: Setup) -> None:
    state = setup.state
    sources = setup.objects({"long.mp4": 30 * MiB})
    [key] = sources
    target = f"Crash {setup.tag}"
    setup.send(json.dumps(job(DEMO_INSTANCE, [key], [{"path": target}], meeting=7)))
    asyncio.run(admin(state, "faults", {"latency_ms": 700, "path_pattern": "^/_s3/"}))
    before = open_uploads(state)
    first = setup.start(setup.config())
    setup.wait(lambda: open_uploads(state) > before)
    time.sleep(1.0)  # a part or two are in
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert setup.source_exists(key)
    assert files_in(state, f"/Recordings/{target}") == []
    asyncio.run(admin(state, "faults", {}))
    quiet = setup.config({"reportLevel": "error"})  # failures only, no status lines
    setup.start(quiet)
    setup.wait(
        lambda: setup.depth() == (0, 0) and len(files_in(state, f"/Recordings/{target}")) == 1
    )
    time.sleep(1)
    [stored] = files_in(state, f"/Recordings/{target}")
    assert stored["name"] == "long.mp4"
    assert decrypted_sha256(state, stored["id"]) == sources[key]["sha256"]
    assert not setup.source_exists(key)
    second = (setup.tmp / "daemon-1.log").read_text()
    assert " 15000 " in second  # the daemon's own lines are not the worker's
    assert " 15006 " not in second
    # The killed upload's channel was recorded, and the job's next attempt cancelled it.
    assert open_uploads(state) == before


def test_sigterm_hands_the_job_back_and_another_daemon_finishes_it(setup: Setup) -> None:
    state = setup.state
    sources = setup.objects({"handover.mp4": 20 * MiB})
    [key] = sources
    target = f"Handover {setup.tag}"
    setup.send(json.dumps(job(DEMO_INSTANCE, [key], [{"path": target}], meeting=8)))
    asyncio.run(admin(state, "faults", {"latency_ms": 1500, "path_pattern": "^/_s3/"}))
    before = open_uploads(state)
    short_polls = {"waitTimeSeconds": 1}
    first = setup.start(setup.config(short_polls, daemon={"gracePeriod": "3s"}))
    setup.wait(lambda: open_uploads(state) > before)
    started = time.monotonic()
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=30) == 1  # the drain had to cancel the job
    assert time.monotonic() - started < 15
    assert "job handed back to the queue" in setup.logs()
    assert setup.depth()[0] == 1  # visible again at once
    assert open_uploads(state) == before  # its upload was cancelled
    asyncio.run(admin(state, "faults", {}))
    setup.start(setup.config())
    setup.wait(
        lambda: setup.depth() == (0, 0) and len(files_in(state, f"/Recordings/{target}")) == 1
    )
    [stored] = files_in(state, f"/Recordings/{target}")
    assert decrypted_sha256(state, stored["id"]) == sources[key]["sha256"]


def test_an_idle_daemon_exits_cleanly_within_two_seconds_of_sigterm(setup: Setup) -> None:
    """``docker stop`` kills after 10 s: an idle daemon must not wait for its open long poll
    (20 s by default, here longer than the grace period, as it was when the pool was cancelled
    and the daemon exited 1 although no job ran)."""
    proc = setup.start(setup.config(daemon={"gracePeriod": "10s"}))
    setup.wait(lambda: setup.ask("/healthcheck") == (200, {"status": "success"}))
    time.sleep(1)  # the workers' first long polls are open (nothing shows that they are)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=30)
    took = time.monotonic() - started
    assert code == 0, setup.logs()[-3000:]
    assert took < 2, f"{took:.1f} s"
    logs = setup.logs()
    assert "drain finished clean=True" in logs
    assert "lease for dracoon_global_sharer lost" not in logs
