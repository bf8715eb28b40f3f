"""The seed 004 job message: parsed exactly, refused precisely, personal data kept out."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from recstore.errors import PermanentJobError
from recstore.transfer.instances import Target
from recstore.transfer.job import parse_job

SEED = {
    "storage": {
        "type": "dracoon",
        "extra": {
            "dracoon": {
                "targets": [
                    {"path": "some room/sub-room", "expiration": "4 years 3 months 2 weeks 1 day"}
                ]
            },
            "aws.s3": {"bucket": "24s-public", "keys": ["sandbox/test-video.mp4"]},
        },
    },
    "meeting": {
        "id": 22980,
        "type": {"name": "live now", "duration": 60},
        "user": {"name": "Sessions support", "email": "support@example.com"},
        "guest": {"name": "Guest Person", "email": "guest@example.com"},
        "date": "2017-09-11T20:24:43+00:00",
        "description": "natus aperiam quia blanditiis dignissimos nam porro.",
    },
    "instance": {"domain": "24slocal.new.com"},
}
PERSONAL = [
    "Sessions support",
    "support@example.com",
    "Guest Person",
    "guest@example.com",
    "natus aperiam",
]


def variant(change: Any) -> str:
    doc = copy.deepcopy(SEED)
    change(doc)
    return json.dumps(doc)


def test_the_seed_message_parses() -> None:
    job = parse_job(json.dumps(SEED))
    assert job.job_id == "24slocal.new.com/22980"
    assert job.bucket == "24s-public"
    assert job.keys == ("sandbox/test-video.mp4",)
    assert job.targets == (Target("some room/sub-room", "4 years 3 months 2 weeks 1 day"),)
    assert job.meeting.type.name == "live now"
    assert job.meeting.type.id is None


def test_personal_data_stays_out_of_repr() -> None:
    text = repr(parse_job(json.dumps(SEED)))
    for value in PERSONAL:
        assert value not in text


def test_round_trip_through_to_json() -> None:
    job = parse_job(json.dumps(SEED))
    assert parse_job(job.to_json()) == job
    assert json.loads(job.to_json())["storage"]["extra"]["aws.s3"]["keys"] == [
        "sandbox/test-video.mp4"
    ]


def test_targets_may_be_absent() -> None:
    job = parse_job(variant(lambda d: d["storage"]["extra"].pop("dracoon")))
    assert job.targets == ()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "the message is not JSON"),
        ("[1, 2]", "the message is not a JSON object"),
        (
            variant(lambda d: d["storage"].update(type="ftp")),
            "storage.type: is not a known storage",
        ),
        (
            variant(lambda d: d["storage"]["extra"]["aws.s3"].update(keys=[])),
            'storage.extra["aws.s3"].keys: must not be empty',
        ),
        (
            variant(lambda d: d["storage"]["extra"]["aws.s3"].update(keys=["a", ""])),
            'storage.extra["aws.s3"].keys[1]: must not be empty',
        ),
        (
            variant(lambda d: d["storage"]["extra"]["aws.s3"].pop("bucket")),
            'storage.extra["aws.s3"].bucket: is missing',
        ),
        (
            variant(lambda d: d["storage"]["extra"]["aws.s3"].update(bucket="Not_A_Bucket")),
            'storage.extra["aws.s3"].bucket:',
        ),
        (
            variant(lambda d: d["storage"]["extra"].pop("aws.s3")),
            'storage.extra["aws.s3"]: is missing',
        ),
        (variant(lambda d: d.pop("instance")), "instance: is missing"),
        (variant(lambda d: d["instance"].update(domain="not a host")), "instance.domain:"),
        (variant(lambda d: d["meeting"].pop("id")), "meeting.id: is missing"),
        (variant(lambda d: d["meeting"]["type"].pop("name")), "meeting.type.name: is missing"),
        (variant(lambda d: d["meeting"]["type"].update(id="fourteen")), "meeting.type.id:"),
        (
            variant(
                lambda d: d["storage"]["extra"]["dracoon"]["targets"][0].update(
                    expiration="4 yearz"
                )
            ),
            "storage.extra.dracoon.targets[0].expiration:",
        ),
        (
            variant(lambda d: d["storage"]["extra"]["dracoon"]["targets"][0].pop("path")),
            "storage.extra.dracoon.targets[0].path: is missing",
        ),
    ],
)
def test_malformed_messages_are_permanent_with_a_precise_reason(body: str, reason: str) -> None:
    with pytest.raises(PermanentJobError) as caught:
        parse_job(body)
    assert reason in str(caught.value)
    for value in PERSONAL:
        assert value not in str(caught.value)


def test_a_bad_person_field_is_named_but_not_echoed() -> None:
    body = variant(lambda d: d["meeting"]["user"].update(email=["support@example.com"]))
    with pytest.raises(PermanentJobError, match=r"meeting\.user\.email") as caught:
        parse_job(body)
    assert "support@example.com" not in str(caught.value)
