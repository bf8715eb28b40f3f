"""The FileTransferer end to end: the daemon as a real process, moto's S3/SQS and the DRACOON
and configurator stand-ins of the dev stack. Every file that lands in DRACOON is downloaded
and decrypted as a room member would, and compared with the source's SHA-256."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from dateutil.relativedelta import relativedelta

from recstore.devstack.appconfig import DEMO_INSTANCE
from tests.conftest import StackProcess, set_faults
from tests.dracoon_helpers import admin
from tests.transfer_helpers import (
    MiB,
    Setup,
    decrypted_sha256,
    files_in,
    injected,
    job,
    open_uploads,
    seed_instance,
)

# The daemon as a process against the dev stack: what an operator runs.
pytestmark = pytest.mark.e2e


@pytest.fixture
def setup(devstack: StackProcess, tmp_path: Path) -> Iterator[Setup]:
    it = Setup(devstack, tmp_path)
    yield it
    it.stop_all()
    asyncio.run(admin(devstack.state, "faults", {}))
    asyncio.run(set_faults(devstack.state["s3_proxy_url"], {}))


def test_jobs_land_decryptable_in_every_target_and_bad_ones_in_the_dlq(setup: Setup) -> None:
    state = setup.state
    sources = setup.objects(
        {"video.mp4": 12 * MiB + 7, "phone.m4a": 1 * MiB + 1, "consult.mp4": 3 * MiB}
    )
    consult_key = f"{setup.tag}/consult.mp4"
    keys = sorted(k for k in sources if k != consult_key)
    remote = f"remote-{setup.tag}.example.com"
    # Type 14 keeps its copy for a year, every type's for ever: one room, kept for ever.
    by_type = "by-type/$meetingType"
    seed_instance(
        state,
        remote,
        [
            {"meetingTypeId": 14, "copyTo": [{"path": by_type, "expiration": "1 year"}]},
            {"meetingTypeId": "*any*", "copyTo": [{"path": by_type}]},
        ],
    )
    targets = [
        {"path": "$instance/$meetingType", "expiration": "4 years 3 months 2 weeks 1 day"},
        {"path": f"Archive {setup.tag}/${{instance}}"},
    ]
    # One message of each kind of fault, each with the reason it must carry to the DLQ.
    faulty: dict[str, str] = {
        "this is not json": "the message is not JSON",
    }

    def fault(reason: str, change: Callable[[dict[str, Any]], object], **kw: Any) -> None:
        body = job(DEMO_INSTANCE, keys, [{"path": "x"}], **kw)
        change(body)
        faulty[json.dumps(body)] = reason

    fault("storage.type: is not a known storage", lambda b: b["storage"].update(type="ftp"))
    fault("meeting.type: is missing", lambda b: b["meeting"].pop("type"))
    fault("meeting.id: must be", lambda b: b["meeting"].update(id=[1]))
    fault(
        'storage.extra["aws.s3"].keys: must not be empty',
        lambda b: b["storage"]["extra"]["aws.s3"].update(keys=[]),
    )
    fault(
        "storage.extra.dracoon.targets[0].expiration: '3 fortnights'",
        lambda b: b["storage"]["extra"]["dracoon"].update(
            targets=[{"path": "x", "expiration": "3 fortnights"}]
        ),
    )
    fault(
        "storage.extra.dracoon.targets[0].path: '../x': segment 1 is '..'",
        lambda b: b["storage"]["extra"]["dracoon"].update(targets=[{"path": "../x"}]),
    )
    faulty[json.dumps(job(f"nobody-{setup.tag}.example.com", keys, targets))] = (
        f"instance 'nobody-{setup.tag}.example.com'"
    )
    # A valid message whose instance's own template cannot render for this meeting type.
    faulty[
        json.dumps(job(remote, [consult_key], None, meeting=3, type_name="a / b", type_id=14))
    ] = "target path: 'by-type/$meetingType': segment 2 renders to 'a / b'"
    setup.send(
        json.dumps(job(DEMO_INSTANCE, keys, targets, meeting=1)),
        json.dumps(
            job(
                remote, [consult_key], None, meeting=2, type_name=f"consult {setup.tag}", type_id=14
            )
        ),
        *faulty,
    )
    sent = datetime.now(UTC)
    setup.start(setup.config())
    setup.wait(lambda: setup.depth() == (0, 0) and setup.depth(dead=True)[0] == len(faulty))
    done = datetime.now(UTC)

    for path in (
        f"/Recordings/{DEMO_INSTANCE}/sales call",
        f"/Recordings/Archive {setup.tag}/{DEMO_INSTANCE}",
    ):
        landed = {f["name"]: f for f in files_in(state, path)}
        assert sorted(landed) == ["phone.m4a", "video.mp4"], path
        for key in keys:
            stored = landed[key.rsplit("/", 1)[1]]
            assert decrypted_sha256(state, stored["id"], "alice") == sources[key]["sha256"]
            assert decrypted_sha256(state, stored["id"], "bob") == sources[key]["sha256"]
            assert stored["notes"].startswith(f"recstore job={DEMO_INSTANCE}/1 ")
    # "4 years 3 months 2 weeks 1 day" from the moment the job ran, calendar-correct.
    span = relativedelta(years=4, months=3, weeks=2, days=1)
    for stored in files_in(state, f"/Recordings/{DEMO_INSTANCE}/sales call"):
        expires = datetime.fromisoformat(stored["expireAt"])
        assert sent + span <= expires <= done + span, stored["expireAt"]
    assert all(
        f["expireAt"] is None
        for f in files_in(state, f"/Recordings/Archive {setup.tag}/{DEMO_INSTANCE}")
    )
    # The configurator's instance: its own targets, chosen by meeting type id 14 and *any*;
    # the room both name holds one file, kept as long as the longer-lived target asks.
    [consult] = files_in(state, f"/Recordings/by-type/consult {setup.tag}")
    assert decrypted_sha256(state, consult["id"]) == sources[consult_key]["sha256"]
    assert consult["expireAt"] is None
    for key in sources:
        assert not setup.source_exists(key)
    received = setup.dead_letters()
    letters = {letter["body"]: letter for letter in received}
    assert len(received) == len(letters)  # none twice
    assert sorted(letters) == sorted(faulty)  # each went at once: received once, not retried
    for body, reason in faulty.items():
        assert letters[body]["reason"].startswith(reason), letters[body]["reason"]
        assert letters[body]["receive_count"] == "1"
    logs = setup.logs()
    assert " 15006 " in logs  # status lines at the default reportLevel (info)
    for personal in ("Host Person", "host@example.com", "Guest Person", "guest@example.com"):
        assert personal not in logs
        assert all(personal not in letter["reason"] for letter in letters.values())


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
    quiet = setup.config_with({"reportLevel": "error"})  # failures only, no status lines
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


def test_the_same_job_sent_twice_at_once_leaves_one_file(setup: Setup) -> None:
    state = setup.state
    sources = setup.objects({"twice.mp4": 7 * MiB})
    [key] = sources
    target = f"Twice {setup.tag}"
    body = json.dumps(job(DEMO_INSTANCE, [key], [{"path": target}], meeting=9))
    setup.send(body, body)  # a producer's re-send: two messages, one job
    setup.start(setup.config())  # two workers: both messages are taken in one receive
    setup.wait(lambda: setup.depth() == (0, 0))
    [stored] = files_in(state, f"/Recordings/{target}")
    assert decrypted_sha256(state, stored["id"]) == sources[key]["sha256"]
    setup.wait(lambda: setup.logs().count("job done") >= 2)  # logged after the message delete
    assert setup.logs().count("job done") == 2


def test_sigterm_hands_the_job_back_and_another_daemon_finishes_it(setup: Setup) -> None:
    state = setup.state
    sources = setup.objects({"handover.mp4": 20 * MiB})
    [key] = sources
    target = f"Handover {setup.tag}"
    setup.send(json.dumps(job(DEMO_INSTANCE, [key], [{"path": target}], meeting=8)))
    asyncio.run(admin(state, "faults", {"latency_ms": 1500, "path_pattern": "^/_s3/"}))
    before = open_uploads(state)
    short_polls = {"waitTimeSeconds": 1}
    first = setup.start(setup.config_with(short_polls, gracePeriod="3s"))
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
    setup.start(setup.config(aws={"s3EndpointUrl": proxy}))
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
