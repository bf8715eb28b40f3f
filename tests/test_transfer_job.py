"""The seed 004 job message: parsed exactly, refused precisely, personal data kept out."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from recstore.common.errors import PermanentJobError
from recstore.common.expiration import Expiration
from recstore.transfer.job import MAX_PROBLEMS, TransferJob, file_name, parse_job
from recstore.transfer.rooms import RoomPlan

SEED: dict[str, Any] = {
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
UNKNOWN_STORAGE = "storage.type: is not a known storage (only 'dracoon')"


def variant(change: Callable[[dict[str, Any]], object]) -> str:
    document = copy.deepcopy(SEED)
    change(document)
    return json.dumps(document)


def s3(document: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = document["storage"]["extra"]["aws.s3"]
    return result


def first_target(document: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = document["storage"]["extra"]["dracoon"]["targets"][0]
    return result


def test_the_seed_message_parses() -> None:
    job = parse_job(json.dumps(SEED))
    assert job.job_id == "24slocal.new.com/22980"
    assert job.bucket == "24s-public"
    assert job.keys == ("sandbox/test-video.mp4",)
    assert job.rooms == (
        RoomPlan("some room/sub-room", ("some room", "sub-room"), (Expiration(4, 3, 2, 1),)),
    )
    assert job.storage.type == "dracoon"
    assert job.meeting.id == 22980
    assert job.meeting.type.name == "live now"
    assert job.meeting.type.id is None
    assert job.meeting.type.duration == 60
    assert job.meeting.date == "2017-09-11T20:24:43+00:00"
    assert job.meeting.user is not None
    assert job.meeting.user.email == "support@example.com"
    assert job.instance.domain == "24slocal.new.com"


def test_bytes_are_accepted() -> None:
    assert parse_job(json.dumps(SEED).encode()) == parse_job(json.dumps(SEED))


def test_the_job_is_immutable() -> None:
    job = parse_job(json.dumps(SEED))
    with pytest.raises(ValidationError):
        job.instance.domain = "other.example.com"  # type: ignore[misc]
    assert isinstance(job.keys, tuple)
    assert isinstance(job.message_targets, tuple)


def test_personal_data_stays_out_of_repr_and_str() -> None:
    job = parse_job(json.dumps(SEED))
    for text in (repr(job), str(job), repr(job.meeting), repr(job.meeting.user)):
        for value in PERSONAL:
            assert value not in text
    assert "24slocal.new.com" in repr(job)  # repr still says something useful


def test_round_trip_through_to_json() -> None:
    job = parse_job(json.dumps(SEED))
    assert parse_job(job.to_json()) == job
    assert json.loads(job.to_json()) == SEED  # the seed's wire form, nothing added


def test_to_json_leaves_absent_fields_absent() -> None:
    minimal = {
        "storage": {"type": "dracoon", "extra": {"aws.s3": {"bucket": "rec", "keys": ["a.mp4"]}}},
        "meeting": {"id": 1, "type": {"name": "t"}},
        "instance": {"domain": "example.com"},
    }
    job = parse_job(json.dumps(minimal))
    assert json.loads(job.to_json()) == minimal
    assert job.rooms == ()
    assert job.meeting.user is None


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["storage"]["extra"].pop("dracoon"),
        lambda d: d["storage"]["extra"].update(dracoon=None),
        lambda d: d["storage"]["extra"].update(dracoon={}),
        lambda d: d["storage"]["extra"]["dracoon"].update(targets=[]),
        lambda d: d["storage"]["extra"]["dracoon"].update(targets=None),
    ],
)
def test_absent_or_empty_targets_mean_the_instance_targets(
    change: Callable[[dict[str, Any]], object],
) -> None:
    assert parse_job(variant(change)).rooms == ()


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["meeting"].pop("user"),
        lambda d: d["meeting"].update(user=None, guest=None, date=None, description=None),
        lambda d: d["meeting"]["user"].pop("email"),
        lambda d: d["meeting"]["type"].pop("duration"),
        lambda d: d["meeting"]["type"].update(id=14),
        lambda d: d["meeting"].update(id="A-17"),
        lambda d: d["meeting"].update(unknown={"nested": True}),
        lambda d: d.update(version=2),
        lambda d: first_target(d).pop("expiration"),
        lambda d: first_target(d).update(expiration=None),
        lambda d: first_target(d).update(expiration=""),
        lambda d: first_target(d).update(path="Recordings/$instance/${meetingType}"),
        lambda d: s3(d).update(keys=["video.mp4", "phone/audio.m4a", "a/b/c/d.mp4"]),
        lambda d: d["instance"].update(domain="localhost"),
    ],
)
def test_lenient_where_producers_differ(change: Callable[[dict[str, Any]], object]) -> None:
    parse_job(variant(change))


def test_targets_keep_their_text_and_order_and_are_planned_once() -> None:
    targets = [
        {"path": "b/$meetingType", "expiration": "1 day"},
        {"path": "a"},
        {"path": "$instance", "expiration": "2 weeks"},
    ]
    job = parse_job(variant(lambda d: d["storage"]["extra"]["dracoon"].update(targets=targets)))
    assert job.rooms == (
        RoomPlan("b/$meetingType", ("b", "live now"), (Expiration(days=1),)),
        RoomPlan("a", ("a",)),
        RoomPlan("$instance", ("24slocal.new.com",), (Expiration(weeks=2),)),
    )


def test_meeting_type_id_is_kept_for_target_selection() -> None:
    job = parse_job(variant(lambda d: d["meeting"]["type"].update(id=14)))
    assert job.meeting.type.id == 14


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "the message is not JSON"),
        ("", "the message is not JSON"),
        (b"\xff\xfe\x00", "the message is not JSON"),
        ("[1, 2]", "the message is not a JSON object"),
        ('"text"', "the message is not a JSON object"),
        ("null", "the message is not a JSON object"),
        ("{}", "storage: is missing; meeting: is missing; instance: is missing"),
        # storage
        (variant(lambda d: d["storage"].update(type="ftp")), UNKNOWN_STORAGE),
        (variant(lambda d: d["storage"].update(type="Dracoon")), UNKNOWN_STORAGE),
        (variant(lambda d: d["storage"].update(type=1)), "storage.type: must be a string"),
        (variant(lambda d: d["storage"].pop("type")), "storage.type: is missing"),
        (variant(lambda d: d["storage"].pop("extra")), "storage.extra: is missing"),
        (variant(lambda d: d.update(storage=[])), "storage: must be an object"),
        (
            variant(lambda d: d["storage"]["extra"].pop("aws.s3")),
            'storage.extra["aws.s3"]: is missing',
        ),
        (
            variant(lambda d: s3(d).update(keys=[])),
            'storage.extra["aws.s3"].keys: must not be empty',
        ),
        (variant(lambda d: s3(d).pop("keys")), 'storage.extra["aws.s3"].keys: is missing'),
        (
            variant(lambda d: s3(d).update(keys="a.mp4")),
            'storage.extra["aws.s3"].keys: must be a list',
        ),
        (
            variant(lambda d: s3(d).update(keys=["a.mp4", ""])),
            'storage.extra["aws.s3"].keys[1]: must be a non-empty string',
        ),
        (
            variant(lambda d: s3(d).update(keys=[7])),
            'storage.extra["aws.s3"].keys[0]: must be a string',
        ),
        (
            variant(lambda d: s3(d).update(keys=["sandbox/"])),
            'storage.extra["aws.s3"].keys[0]: does not end in a file name DRACOON accepts: '
            "its last segment is empty",
        ),
        (
            variant(lambda d: s3(d).update(keys=["sandbox/what?.mp4"])),
            "its last segment contains '?'",
        ),
        (variant(lambda d: s3(d).update(keys=["x/" + "a" * 151])), "longer than 150"),
        (variant(lambda d: s3(d).update(keys=["a" * 1025])), "longer than S3's 1024 bytes"),
        (variant(lambda d: s3(d).pop("bucket")), 'storage.extra["aws.s3"].bucket: is missing'),
        (
            variant(lambda d: s3(d).update(bucket=5)),
            'storage.extra["aws.s3"].bucket: must be a string',
        ),
        # meeting
        (variant(lambda d: d.pop("meeting")), "meeting: is missing"),
        (variant(lambda d: d["meeting"].pop("id")), "meeting.id: is missing"),
        (variant(lambda d: d["meeting"].update(id=True)), "meeting.id: must be a non-negative"),
        (variant(lambda d: d["meeting"].update(id=-1)), "meeting.id: must be a non-negative"),
        (variant(lambda d: d["meeting"].update(id=1.5)), "meeting.id: must be a non-negative"),
        (variant(lambda d: d["meeting"].update(id="a/b")), "meeting.id: must be a non-negative"),
        (variant(lambda d: d["meeting"].update(id="")), "meeting.id: must be a non-negative"),
        (variant(lambda d: d["meeting"].pop("type")), "meeting.type: is missing"),
        (variant(lambda d: d["meeting"]["type"].pop("name")), "meeting.type.name: is missing"),
        (
            variant(lambda d: d["meeting"]["type"].update(name=" ")),
            "meeting.type.name: must be a non-empty string",
        ),
        (
            variant(lambda d: d["meeting"]["type"].update(name=7)),
            "meeting.type.name: must be a string",
        ),
        (
            variant(lambda d: d["meeting"]["type"].update(id="14")),
            "meeting.type.id: must be an integer",
        ),
        (
            variant(lambda d: d["meeting"]["type"].update(id=True)),
            "meeting.type.id: must be an integer",
        ),
        (
            variant(lambda d: d["meeting"]["type"].update(duration=60.5)),
            "meeting.type.duration: must be an integer",
        ),
        (variant(lambda d: d["meeting"].update(date=20170911)), "meeting.date: must be a string"),
        (
            variant(lambda d: d["meeting"].update(user="Sessions support")),
            "meeting.user: must be an object",
        ),
        (
            variant(lambda d: d["meeting"]["guest"].update(name=["Guest Person"])),
            "meeting.guest.name: must be a string",
        ),
        (
            variant(lambda d: d["meeting"].update(description={"text": "natus aperiam"})),
            "meeting.description: must be a string",
        ),
        # instance
        (variant(lambda d: d.pop("instance")), "instance: is missing"),
        (variant(lambda d: d["instance"].pop("domain")), "instance.domain: is missing"),
        (
            variant(lambda d: d["instance"].update(domain="not a host")),
            "instance.domain: is not a hostname",
        ),
        (variant(lambda d: d["instance"].update(domain="")), "instance.domain: is not a hostname"),
        (
            variant(lambda d: d["instance"].update(domain="a..b")),
            "instance.domain: is not a hostname",
        ),
        (
            variant(lambda d: d["instance"].update(domain="-a.com")),
            "instance.domain: is not a hostname",
        ),
        (
            variant(lambda d: d["instance"].update(domain="../etc")),
            "instance.domain: is not a hostname",
        ),
        (
            variant(lambda d: d["instance"].update(domain="a" * 64 + ".com")),
            "instance.domain: is not a hostname",
        ),
        (variant(lambda d: d["instance"].update(domain=1)), "instance.domain: must be a string"),
        # message targets: expiration and path checked at parse time
        (
            variant(lambda d: first_target(d).update(expiration="4 yearz")),
            "storage.extra.dracoon.targets[0].expiration: '4 yearz': after 4 comes 'yearz'",
        ),
        (
            variant(lambda d: first_target(d).update(expiration="0 days")),
            "storage.extra.dracoon.targets[0].expiration: '0 days': an expiration of zero",
        ),
        (
            variant(lambda d: first_target(d).update(expiration="99999 years")),
            "storage.extra.dracoon.targets[0].expiration: '99999 years': an expiration longer",
        ),
        (
            variant(lambda d: first_target(d).update(expiration=5)),
            "storage.extra.dracoon.targets[0].expiration: must be a string",
        ),
        (
            variant(lambda d: first_target(d).pop("path")),
            "storage.extra.dracoon.targets[0].path: is missing",
        ),
        (
            variant(lambda d: first_target(d).update(path="")),
            "storage.extra.dracoon.targets[0].path: must be a non-empty string",
        ),
        (
            variant(lambda d: first_target(d).update(path="../x")),
            "storage.extra.dracoon.targets[0].path: '../x': segment 1 is '..'",
        ),
        (
            variant(lambda d: first_target(d).update(path="/abs")),
            "storage.extra.dracoon.targets[0].path: '/abs': target paths are relative",
        ),
        (
            variant(lambda d: first_target(d).update(path="$nope")),
            "storage.extra.dracoon.targets[0].path: '$nope': unknown variable $nope",
        ),
        (
            variant(
                lambda d: (
                    first_target(d).update(path="x/$meetingType"),
                    d["meeting"]["type"].update(name="../../y"),
                )
            ),
            "may not add room levels",
        ),
        (
            variant(lambda d: d["storage"]["extra"]["dracoon"].update(targets={"path": "x"})),
            "storage.extra.dracoon.targets: must be a list",
        ),
    ],
)
def test_malformed_messages_are_permanent_with_a_precise_reason(
    body: str | bytes, reason: str
) -> None:
    with pytest.raises(PermanentJobError) as caught:
        parse_job(body)
    assert reason in str(caught.value)
    for value in PERSONAL:
        assert value not in str(caught.value)


def test_an_unknown_storage_is_the_only_fault_named() -> None:
    # The dead-letter reason the worker tests expect, word for word.
    with pytest.raises(PermanentJobError) as caught:
        parse_job(variant(lambda d: d["storage"].update(type="ftp")))
    assert str(caught.value) == UNKNOWN_STORAGE


@pytest.mark.parametrize(
    "bucket",
    [
        "ab",
        "a" * 64,
        "Not_A_Bucket",
        "UPPER",
        "-start",
        "end-",
        "two..dots",
        "dot.-dash",
        "192.168.1.1",
        "xn--bucket",
        "sthree-bucket",
        "bucket-s3alias",
        "bucket--ol-s3",
        "with space",
        "",
    ],
)
def test_bad_bucket_names(bucket: str) -> None:
    with pytest.raises(PermanentJobError, match=r'extra\["aws\.s3"\]\.bucket: is not a valid'):
        parse_job(variant(lambda d: s3(d).update(bucket=bucket)))


@pytest.mark.parametrize("bucket", ["abc", "a" * 63, "24s-public", "my.bucket.name", "1-2-3"])
def test_good_bucket_names(bucket: str) -> None:
    assert parse_job(variant(lambda d: s3(d).update(bucket=bucket))).bucket == bucket


def test_personal_fields_of_the_wrong_type_are_named_but_not_echoed() -> None:
    body = variant(
        lambda d: (
            d["meeting"]["user"].update(email=["support@example.com"]),
            d["meeting"]["guest"].update(name={"Guest Person": 1}),
            d["meeting"].update(description=["natus aperiam"]),
        )
    )
    with pytest.raises(PermanentJobError) as caught:
        parse_job(body)
    message = str(caught.value)
    assert "meeting.user.email" in message
    assert "meeting.guest.name" in message
    assert "meeting.description" in message
    for value in PERSONAL:
        assert value not in message
    # Tracebacks in logs must not show the chained pydantic error (it may carry input).
    assert caught.value.__suppress_context__


def test_a_key_named_after_a_person_is_not_echoed() -> None:
    with pytest.raises(PermanentJobError) as caught:
        parse_job(variant(lambda d: s3(d).update(keys=["rec/Sessions support?.mp4"])))
    assert "its last segment contains '?'" in str(caught.value)
    assert "Sessions support" not in str(caught.value)


def test_many_faults_are_summed_up() -> None:
    keys = [""] * (MAX_PROBLEMS + 3)
    with pytest.raises(PermanentJobError) as caught:
        parse_job(variant(lambda d: s3(d).update(keys=keys)))
    assert str(caught.value).endswith("; and 3 more")
    assert str(caught.value).count("must be a non-empty string") == MAX_PROBLEMS


def test_model_validate_checks_paths_too() -> None:
    document = json.loads(variant(lambda d: first_target(d).update(path="a/../b")))
    with pytest.raises(ValidationError, match=r"targets\[0\]\.path"):
        TransferJob.model_validate(document)


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("sandbox/test-video.mp4", "test-video.mp4"),
        ("test-video.mp4", "test-video.mp4"),
        ("a/b/c/phone.m4a", "phone.m4a"),
        ("a//b.mp4", "b.mp4"),
        ("a/über aufnahme.mp4", "über aufnahme.mp4"),
    ],
)
def test_file_name_is_the_last_segment(key: str, name: str) -> None:
    assert file_name(key) == name


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("", "is empty"),
        ("sandbox/", "is empty"),
        ("sandbox/..", "relative reference"),
        ("sandbox/video.", "ends with '.'"),
        ("sandbox/-video.mp4", "starts with '-'"),
        ("sandbox/CON.mp4", "reserved"),
        ("sandbox/a:b.mp4", "contains ':'"),
        ("sandbox/a\\b.mp4", "contains '\\\\'"),
        ("sandbox/" + "a" * 151, "longer than 150"),
    ],
)
def test_file_name_refuses_names_dracoon_refuses(key: str, why: str) -> None:
    with pytest.raises(PermanentJobError) as caught:
        file_name(key)
    assert why in str(caught.value)
    assert "sandbox" not in str(caught.value)


def test_a_key_listed_twice_is_one_recording() -> None:
    job = parse_job(variant(lambda d: s3(d).update(keys=["x/a.mp4", "b.m4a", "x/a.mp4"])))
    assert job.keys == ("x/a.mp4", "b.m4a")


def test_file_name_agrees_with_parse_time_checks() -> None:
    job = parse_job(variant(lambda d: s3(d).update(keys=["x/a.mp4", "b.m4a"])))
    assert [file_name(key) for key in job.keys] == ["a.mp4", "b.m4a"]


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda d: d["meeting"].update(id="2014\n"), "meeting.id"),
        (lambda d: d["instance"].update(domain="x.com\n"), "instance.domain"),
        (lambda d: s3(d).update(bucket="recordings\n"), 'storage.extra["aws.s3"].bucket'),
    ],
)
def test_a_trailing_newline_is_not_part_of_a_valid_value(
    change: Callable[[dict[str, Any]], object], where: str
) -> None:
    """Issue 33 §5: ``$`` matched before a final newline, which then split log lines and
    reached DRACOON notes; the patterns are full matches now."""
    with pytest.raises(PermanentJobError, match=re.escape(where)):
        parse_job(variant(change))


@pytest.mark.parametrize("body", ["[" * 200_000, '{"a":' * 200_000, b"[" * 200_000])
def test_deeply_nested_json_is_a_permanent_failure_with_a_reason(body: str | bytes) -> None:
    """A RecursionError was retried as transient until the redrive dead-lettered the message
    without a reason."""
    with pytest.raises(PermanentJobError, match="nested too deeply"):
        parse_job(body)


@pytest.mark.parametrize(
    "key",
    ["rec/abc\u202etxt.exe", "rec/zero\u200bwidth.mp4", "rec/bom\ufeff.mp4", "rec/\u3164.mp4"],
)
def test_invisible_characters_in_a_file_name_are_refused(key: str) -> None:
    with pytest.raises(PermanentJobError, match=r"keys\[0\]: does not end in a file name"):
        parse_job(variant(lambda d: s3(d).update(keys=[key])))
