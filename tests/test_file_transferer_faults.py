"""The FileTransferer through flaky remotes: DRACOON and S3 failing at random and the
configurator down, with the daemon as a real process on the dev stack."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.conftest import set_faults
from tests.dracoon_helpers import admin
from tests.transfer_helpers import (
    MiB,
    Setup,
    decrypted_sha256,
    files_in,
    injected,
    job,
    seed_instance,
)

# The daemon as a process against the dev stack: what an operator runs.
pytestmark = pytest.mark.e2e


def test_jobs_survive_flaky_dracoon_and_s3_and_a_configurator_outage(setup: Setup) -> None:
    state = setup.state
    sources = setup.objects({f"r{i}.mp4": 6 * MiB + i for i in range(3)})
    remote = f"flaky-{setup.tag}.example.com"
    seed_instance(
        state, remote, [{"meetingTypeId": "*any*", "copyTo": [{"path": f"Flaky {setup.tag}"}]}]
    )
    asyncio.run(
        admin(
            state,
            "faults",
            {
                "error_rate": 0.15,
                "error_status": [503, 429],
                "retry_after": 1,
                "drop_rate": 0.03,
                "seed": 3,
                "path_pattern": "^/(api|_s3)/",
            },
        )
    )

    def configurator_down(on: bool) -> None:
        asyncio.run(set_faults(state["configurator_url"], {"error_rate": 1} if on else {}))

    configurator_down(True)
    proxy = state["s3_proxy_url"]
    s3_faults = {"error_rate": 0.1, "error_status": 503, "drop_rate": 0.05, "seed": 5}
    asyncio.run(set_faults(proxy, s3_faults))
    setup.send(
        *(
            json.dumps(job(remote, [key], None, meeting=20 + i))
            for i, key in enumerate(sorted(sources))
        )
    )
    # Failed jobs come back after 2 s, 4 s (not the default 30 s, 60 s): the test waits less.
    setup.start(setup.config({"retryDelay": 2, "retryDelayMax": 4}, aws={"s3EndpointUrl": proxy}))
    # A loaded machine may take a while to start the daemon: wait until the outage was met.
    setup.wait(lambda: injected(state["configurator_url"]) > 0, patience=60)
    # The monitor sees it: the jobs' remote fails, though SQS answers.
    failing = (500, {"error": "worker_error_file_transferer", "status": "error"})
    setup.wait(lambda: setup.ask("/healthcheck") == failing, patience=60)
    status = setup.ask("/status.json")
    assert status is not None
    [worker] = [w for w in status[1]["workers"] if w["name"] == "file_transferer"]
    assert worker["detail"].startswith(f"jobs of {remote} fail on configurator: "), worker
    assert len(files_in(state, f"/Recordings/Flaky {setup.tag}")) == 0
    configurator_down(False)
    setup.wait(lambda: setup.depth() == (0, 0), patience=150)
    setup.wait(lambda: setup.ask("/healthcheck") == (200, {"status": "success"}), patience=10)
    assert injected(state["dracoon_url"]) > 0  # and so were DRACOON's errors
    assert injected(proxy) > 0  # and S3's
    asyncio.run(set_faults(proxy, {}))
    landed = {f["name"]: f for f in files_in(state, f"/Recordings/Flaky {setup.tag}")}
    assert sorted(landed) == sorted(k.rsplit("/", 1)[1] for k in sources)  # none lost, none twice
    asyncio.run(admin(state, "faults", {}))
    for key, source in sources.items():
        assert decrypted_sha256(state, landed[key.rsplit("/", 1)[1]]["id"]) == source["sha256"]
    assert setup.depth(dead=True) == (0, 0)
