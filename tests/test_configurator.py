"""Configurator client against its stand-in over loopback: formats, cache, failures."""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from recstore.clients import configurator as configurator_module
from recstore.clients.configurator import ConfiguratorClient, unflatten
from recstore.common.errors import (
    NotFound,
    RemoteError,
    Throttled,
    Unauthorised,
    UnknownInstance,
)
from recstore.common.retry import RetryPolicy
from recstore.settings import ConfiguratorSettings
from tests.conftest import ROOT, StackProcess

FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02)
NESTED = {
    "recordings": {
        "storage": "dracoon",
        "dracoon": {
            "parent-room-id": 7,
            "login": "svc",
            "password": "pw-1",
            "encryption-password": "pw-2",
            "targets": [{"meetingTypeId": "*any*", "copyTo": [{"path": "$instance"}]}],
        },
    }
}
FLAT = {
    "recordings.storage": "dracoon",
    "recordings.dracoon.parent-room-id": 8,
    "recordings.dracoon.login": "svc2",
    "recordings.dracoon.password": "pw-3",
    "recordings.dracoon.encryption-password": "pw-4",
    "recordings.dracoon.targets": [{"meetingTypeId": 14, "copyTo": [{"path": "x"}]}],
}


@pytest.fixture
async def admin(devstack: StackProcess) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    async with aiohttp.ClientSession() as session:
        url = devstack.state["configurator_url"]
        answer = await session.post(
            f"{url}/_devstack/seed",
            json={"instances": {"nested.example": NESTED, "flat.example": FLAT}},
        )
        assert answer.status == 200
        yield session, url
        await session.post(f"{url}/_devstack/faults", json={})


def client(session: aiohttp.ClientSession, url: str, ttl: float = 300) -> ConfiguratorClient:
    settings = ConfiguratorSettings(url=url, cache_ttl=ttl, timeout=5)
    return ConfiguratorClient(settings, session, FAST)


async def requests_seen(session: aiohttp.ClientSession, url: str) -> int:
    async with session.get(f"{url}/_devstack/state") as answer:
        state: dict[str, Any] = await answer.json()
    return int(state["requests"])


async def test_nested_and_flat_answers_give_the_same_model(admin: tuple[Any, str]) -> None:
    session, url = admin
    configurator = client(session, url)
    nested = await configurator.instance("nested.example")
    flat = await configurator.instance("flat.example")
    assert nested.recordings.dracoon.parent_room_id == 7
    assert flat.recordings.dracoon.parent_room_id == 8
    assert flat.recordings.dracoon.targets[0].meeting_type_id == 14
    assert flat.recordings.dracoon.password.get_secret_value() == "pw-3"


async def test_answers_are_cached_for_the_ttl(admin: tuple[Any, str]) -> None:
    session, url = admin
    configurator = client(session, url, ttl=300)
    before = await requests_seen(session, url)
    for _ in range(5):
        await configurator.instance("nested.example")
    assert await requests_seen(session, url) == before + 1
    uncached = client(session, url, ttl=0)
    await uncached.instance("nested.example")
    await uncached.instance("nested.example")
    assert await requests_seen(session, url) == before + 3


async def test_unknown_instance_is_permanent(admin: tuple[Any, str]) -> None:
    session, url = admin
    with pytest.raises(UnknownInstance) as caught:
        await client(session, url).instance("nobody.example")
    assert caught.value.transient is False
    assert "nobody.example" in str(caught.value)


async def test_service_errors_are_retried_then_transient(admin: tuple[Any, str]) -> None:
    session, url = admin
    await session.post(
        f"{url}/_devstack/faults", json={"error_rate": 1, "error_status": 503, "count": 2}
    )
    instance = await client(session, url).instance("nested.example")  # third attempt succeeds
    assert instance.recordings.dracoon.login == "svc"
    await session.post(f"{url}/_devstack/faults", json={"error_rate": 1, "error_status": 503})
    with pytest.raises(RemoteError) as caught:
        await client(session, url).instance("nested.example")
    assert caught.value.transient is True
    assert caught.value.status == 503


async def test_unreachable_configurator_is_transient() -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(RemoteError) as caught:
            await client(session, "http://127.0.0.1:9").instance("x.example")
    assert caught.value.transient is True


def test_unflatten_merges_dotted_and_nested_keys() -> None:
    assert unflatten({"a.b": 1, "a": {"c": 2}, "d": [{"e.f": 3}]}) == {
        "a": {"b": 1, "c": 2},
        "d": [{"e.f": 3}],
    }


async def test_a_404_page_from_in_front_of_the_configurator_is_not_an_unknown_instance() -> None:
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    async def default_backend(request: web.Request) -> web.Response:
        return web.Response(status=404, text="<h1>404 Not Found</h1>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", default_backend)
    async with TestServer(app) as server, aiohttp.ClientSession() as session:
        with pytest.raises(RemoteError) as caught:
            await client(session, str(server.make_url(""))).instance("acme.example")
    assert not isinstance(caught.value, UnknownInstance)  # the job is retried, not dropped
    assert not isinstance(caught.value, NotFound)  # nor taken for the configurator's word
    assert caught.value.status == 404


@pytest.mark.parametrize(
    ("status", "kind", "transient"),
    [(401, Unauthorised, False), (403, Unauthorised, False), (429, Throttled, True)],
)
async def test_refusals_are_raised_as_the_kind_their_status_says(
    admin: tuple[Any, str], status: int, kind: type[RemoteError], transient: bool
) -> None:
    session, url = admin
    await session.post(
        f"{url}/_devstack/faults",
        json={"error_rate": 1, "error_status": status, "retry_after": 0},
    )
    with pytest.raises(kind) as caught:
        await client(session, url).instance("nested.example")
    assert (caught.value.status, caught.value.transient) == (status, transient)
    if kind is Throttled:
        assert caught.value.retry_after == 0  # the configurator's Retry-After, read


SEED_004 = next((ROOT / "tests" / "data" / "seeds").glob("004_*.txt")).read_text()


def seed_targets_json() -> str:
    """The target list exactly as seed 004 shows it stored in an instance's configuration."""
    start = SEED_004.index("It's stored in instance configuration in JSON format")
    block = SEED_004[SEED_004.index("[", start) : SEED_004.index("So for every meeting type")]
    return block.strip()


def seed_instance_keys() -> set[str]:
    """Every leaf key of an instance's configuration that seed 004 names (recordings, wrapup)."""
    named = {m.group(0) for m in re.finditer(r"(?:recordings|wrapup)\.[a-z.-]*[a-z]", SEED_004)}
    return {key for key in named if not any(other.startswith(key + ".") for other in named)}


def seed_example_answer() -> dict[str, Any]:
    """The configurator's answer for an instance as seed 004 documents it: dotted keys,
    targets as a JSON string, and the wrapup section beside recordings."""
    values: dict[str, Any] = {
        "recordings.storage": "dracoon",
        "recordings.dracoon.parent-room-id": 9,
        "recordings.dracoon.login": "svc-seed",
        "recordings.dracoon.password": "pw-seed-1",
        "recordings.dracoon.encryption-password": "pw-seed-2",
        "recordings.dracoon.targets": seed_targets_json(),
        "wrapup.label": "Customer ID",
        "wrapup.send-notification": False,
    }
    assert set(values) == seed_instance_keys()  # the seed's keys, no more, no fewer
    return values


def nested(dotted: dict[str, Any]) -> dict[str, Any]:
    return dict(unflatten(dotted))


@pytest.mark.parametrize(
    "form",
    ["dotted", "nested", "targets as a list"],
)
async def test_the_seeds_own_instance_configuration_is_accepted(
    admin: tuple[Any, str], form: str, caplog: pytest.LogCaptureFixture
) -> None:
    session, url = admin
    answer = seed_example_answer()
    if form != "dotted":
        answer = nested(answer)
    if form == "targets as a list":
        answer["recordings"]["dracoon"]["targets"] = json.loads(seed_targets_json())
    domain = f"seed-{form.replace(' ', '-')}.example"
    seeded = await session.post(f"{url}/_devstack/seed", json={"instances": {domain: answer}})
    assert seeded.status == 200
    configurator = client(session, url)
    with caplog.at_level(logging.DEBUG, logger="recstore.clients.configurator"):
        getattr(configurator_module, "_unused_seen", set()).clear()  # named afresh here
        instance = await configurator.instance(domain)
        await client(session, url).instance(domain)  # a second client: not named again
    dracoon = instance.recordings.dracoon
    assert dracoon.parent_room_id == 9
    assert dracoon.encryption_password.get_secret_value() == "pw-seed-2"
    (target,) = dracoon.targets
    assert target.meeting_type_id == 14
    assert [(c.path, c.expiration) for c in target.copy_to] == [
        ("some room/sub-room", "4 years 3 months 2 weeks 1 day")
    ]
    unused = [r for r in caplog.records if "does not use" in r.getMessage()]
    assert [r.getMessage().rsplit(": ", 1)[-1] for r in unused] == ["wrapup"]  # once
    assert unused[0].levelno == logging.DEBUG


async def test_targets_that_are_a_string_but_not_json_are_named(admin: tuple[Any, str]) -> None:
    session, url = admin
    answer = seed_example_answer() | {"recordings.dracoon.targets": "[{meetingTypeId: 14"}
    await session.post(f"{url}/_devstack/seed", json={"instances": {"bad.example": answer}})
    with pytest.raises(RemoteError) as caught:
        await client(session, url).instance("bad.example")
    assert "recordings.dracoon.targets" in str(caught.value)
    assert caught.value.transient is False


async def test_the_seeds_example_message_and_configurator_answer_run_unchanged(
    devstack: StackProcess,
) -> None:
    """Seed 004's own example message (its bucket, key, instance and targets) and its
    configurator answer (dotted keys, targets as JSON, wrapup beside) transfer a recording
    into DRACOON as they stand: only the account's credentials are the stand-in's."""
    from recstore.devstack.appconfig import app_config
    from recstore.devstack.seed import aws_settings_from_state, seed_s3
    from recstore.settings import Settings
    from recstore.transfer.job import parse_job
    from recstore.workers.file_transferer import TransferService
    from tests.dracoon_helpers import client as dracoon_client
    from tests.dracoon_helpers import downloaded_sha256, stand_in_state
    from tests.test_instances import seed_example_message

    state = devstack.state
    message = seed_example_message()
    job = parse_job(message)
    answer = seed_example_answer() | {
        "recordings.dracoon.parent-room-id": state["dracoon_parent_room_id"],
        "recordings.dracoon.login": state["dracoon_login"],
        "recordings.dracoon.password": state["dracoon_password"],
        "recordings.dracoon.encryption-password": state["dracoon_encryption_password"],
    }
    async with aiohttp.ClientSession() as session:
        seeded = await session.post(
            f"{state['configurator_url']}/_devstack/seed",
            json={"instances": {job.instance.domain: answer}},
        )
        assert seeded.status == 200
    from recstore.clients.aws import aws_client

    async with aws_client(aws_settings_from_state(state), "s3") as s3:
        with contextlib.suppress(Exception):  # there from an earlier run of this stack
            await s3.create_bucket(
                Bucket=job.bucket,
                CreateBucketConfiguration={"LocationConstraint": state["region"]},
            )
    [source] = await seed_s3(
        state, {"objects": [{"bucket": job.bucket, "key": job.keys[0], "size": 300_000}]}
    )
    doc = app_config(state, http_port=0)
    doc.pop("instances", None)  # the configurator's answer, not a local override
    doc["workers"]["FileTransferer"]["sourceBuckets"] = [job.bucket]  # the seed's 24s-public
    settings = Settings.model_validate(doc)
    async with TransferService(settings) as service:
        report = await service.run_job(parse_job(message))
    assert [(key, path) for key, path, _ in report.uploaded] == [
        ("sandbox/test-video.mp4", "some room/sub-room")
    ]
    assert report.sources_removed == ["sandbox/test-video.mp4"]
    [(_, _, file_id)] = report.uploaded
    [node] = [n for n in (await stand_in_state(state))["nodes"] if n["id"] == file_id]
    assert node["name"] == "test-video.mp4"
    assert node["expireAt"] is not None  # "4 years 3 months 2 weeks 1 day"
    async with dracoon_client(state) as reader:
        assert await downloaded_sha256(reader, file_id, True) == source["sha256"]
