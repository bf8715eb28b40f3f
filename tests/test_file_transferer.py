"""The FileTransferer end to end: the daemon as a real process, moto's S3/SQS and the DRACOON
and configurator stand-ins of the dev stack. Every file that lands in DRACOON is downloaded
and decrypted as a room member would, and compared with the source's SHA-256."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from dateutil.relativedelta import relativedelta

from recstore.devstack.appconfig import DEMO_INSTANCE
from tests.transfer_helpers import (
    MiB,
    Setup,
    decrypted_sha256,
    files_in,
    job,
    seed_instance,
)

# The daemon as a process against the dev stack: what an operator runs.
pytestmark = pytest.mark.e2e


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
