"""Instance resolution and target choice, with the configurator stand-in over loopback."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from recstore.clients.configurator import ConfiguratorClient
from recstore.common import events
from recstore.common.errors import PermanentJobError, RemoteError
from recstore.common.retry import RetryPolicy
from recstore.settings import ConfiguratorSettings, InstanceSettings
from recstore.transfer.instances import InstanceResolver, targets_for
from recstore.transfer.job import parse_job
from recstore.transfer.rooms import Target
from tests.conftest import ROOT, StackProcess


def instance_doc(login: str, targets: list[dict[str, object]]) -> dict[str, object]:
    dracoon = {
        "parent-room-id": 1,
        "login": login,
        "password": "p",
        "encryption-password": "e",
        "targets": targets,
    }
    return {"recordings": {"dracoon": dracoon}}


def instance(login: str, targets: list[dict[str, object]]) -> InstanceSettings:
    return InstanceSettings.model_validate(instance_doc(login, targets))


TARGETS = [
    {"meetingTypeId": 14, "copyTo": [{"path": "sales/$meetingType", "expiration": "1 year"}]},
    {"meetingTypeId": "*any*", "copyTo": [{"path": "all"}, {"path": "sales/$meetingType"}]},
]


@pytest.fixture
async def configurator(devstack: StackProcess) -> AsyncIterator[ConfiguratorClient]:
    url = devstack.state["configurator_url"]
    async with aiohttp.ClientSession() as session:
        seed = {"instances": {"remote.example": instance_doc("remote-svc", TARGETS)}}
        await session.post(f"{url}/_devstack/seed", json=seed)
        yield ConfiguratorClient(
            ConfiguratorSettings(url=url), session, RetryPolicy(attempts=2, base_delay=0.01)
        )
        await session.post(f"{url}/_devstack/faults", json={})


async def test_yaml_instances_win_over_the_configurator(configurator: ConfiguratorClient) -> None:
    resolver = InstanceResolver({"Remote.Example": instance("local-svc", [])}, configurator)
    assert (await resolver.resolve("remote.example")).recordings.dracoon.login == "local-svc"


async def test_configurator_answers_other_instances(configurator: ConfiguratorClient) -> None:
    resolver = InstanceResolver({}, configurator)
    assert (await resolver.resolve("remote.example")).recordings.dracoon.login == "remote-svc"


async def test_passwords_from_the_configurator_never_reach_a_log_line(
    devstack: StackProcess, configurator: ConfiguratorClient
) -> None:
    tag = uuid.uuid4().hex[:8]
    document = instance_doc("svc", [])
    dracoon: Any = document["recordings"]
    dracoon["dracoon"].update({"password": f"pw-{tag}", "encryption-password": f"enc-{tag}"})
    async with aiohttp.ClientSession() as session:
        await session.post(
            f"{devstack.state['configurator_url']}/_devstack/seed",
            json={"instances": {f"secret-{tag}.example": document}},
        )
    line = f"login with pw-{tag}, unlocked with enc-{tag}"
    assert events.redact(line) == line  # nothing known yet
    await InstanceResolver({}, configurator).resolve(f"secret-{tag}.example")
    assert events.redact(line) == "login with ***, unlocked with ***"


async def test_unknown_instance_is_permanent_and_named(configurator: ConfiguratorClient) -> None:
    with pytest.raises(PermanentJobError, match=r"nowhere\.example"):
        await InstanceResolver({}, configurator).resolve("nowhere.example")
    with pytest.raises(PermanentJobError, match=r"no configurator\.url"):
        await InstanceResolver({}, None).resolve("nowhere.example")


async def test_configurator_down_is_transient(
    devstack: StackProcess, configurator: ConfiguratorClient
) -> None:
    async with aiohttp.ClientSession() as session:
        await session.post(
            f"{devstack.state['configurator_url']}/_devstack/faults", json={"error_rate": 1}
        )
    with pytest.raises(RemoteError) as caught:
        await InstanceResolver({}, configurator).resolve("other.example")
    assert caught.value.transient


@pytest.mark.parametrize("status", [401, 403, 400])
async def test_a_configurator_refusing_us_retries_the_job_instead_of_dropping_it(
    devstack: StackProcess, configurator: ConfiguratorClient, status: int
) -> None:
    # Expired credentials or a broken deployment of the configurator are mended there; the
    # jobs waiting for it must survive that, not go to the dead-letter queue one by one.
    async with aiohttp.ClientSession() as session:
        await session.post(
            f"{devstack.state['configurator_url']}/_devstack/faults",
            json={"error_rate": 1, "error_status": status},
        )
    with pytest.raises(RemoteError) as caught:  # not PermanentJobError: the job comes back
        await InstanceResolver({}, configurator).resolve("remote.example")
    assert caught.value.status == status


async def test_an_invalid_answer_is_named_and_retried_later(
    devstack: StackProcess, configurator: ConfiguratorClient
) -> None:
    dracoon = {"parent-room-id": 1, "password": "p", "encryption-password": "e"}  # no login
    broken = {"recordings": {"dracoon": dracoon}}
    domain = f"broken-{uuid.uuid4().hex[:8]}.example"
    async with aiohttp.ClientSession() as session:
        await session.post(
            f"{devstack.state['configurator_url']}/_devstack/seed",
            json={"instances": {domain: broken}},
        )
    with pytest.raises(RemoteError, match=r"invalid at: recordings\.dracoon\.login"):
        await InstanceResolver({}, configurator).resolve(domain)


async def test_a_bad_target_in_a_configurator_answer_leaves_the_rest_usable(
    devstack: StackProcess, configurator: ConfiguratorClient
) -> None:
    targets = [
        {"meetingTypeId": 1, "copyTo": [{"path": "/absolute", "expiration": "2 yeers"}]},
        {"meetingTypeId": 2, "copyTo": [{"path": "fine/$meetingType"}]},
    ]
    domain = f"mixed-{uuid.uuid4().hex[:8]}.example"
    async with aiohttp.ClientSession() as session:
        await session.post(
            f"{devstack.state['configurator_url']}/_devstack/seed",
            json={"instances": {domain: instance_doc("mixed-svc", targets)}},
        )
    settings = await InstanceResolver({}, configurator).resolve(domain)
    assert targets_for(settings, domain, 2) == [Target("fine/$meetingType", None)]
    # Type 1's jobs meet the fault in the transfer, as a permanent error with its reason
    # (tests/test_file_transferer.py sends one through the daemon).
    assert targets_for(settings, domain, 1) == [Target("/absolute", "2 yeers")]


def test_specific_and_any_targets_both_apply_each_with_its_expiration() -> None:
    """Both name ``sales/$meetingType``: both stay, so the transfer keeps the file for as long
    as the longer-lived (here: for ever) asks (tests/test_file_transferer.py sees it happen)."""
    chosen = targets_for(instance("x", TARGETS), "d", 14)
    assert chosen == [
        Target("sales/$meetingType", "1 year"),
        Target("all", None),
        Target("sales/$meetingType", None),
    ]
    assert targets_for(instance("x", TARGETS), "d", 99) == [
        Target("all", None),
        Target("sales/$meetingType", None),
    ]


def test_a_target_listed_twice_is_used_once() -> None:
    twice = {"path": "a", "expiration": "2 years"}
    targets = [
        {"meetingTypeId": 14, "copyTo": [twice, twice]},
        {"meetingTypeId": "*any*", "copyTo": [twice]},
    ]
    assert targets_for(instance("x", targets), "d", 14) == [Target("a", "2 years")]


def test_no_target_at_all_is_permanent() -> None:
    with pytest.raises(PermanentJobError, match="no target for meeting type 7"):
        targets_for(instance("x", [{"meetingTypeId": 14, "copyTo": [{"path": "a"}]}]), "d", 7)


SEED_004 = next((ROOT / "tests" / "data" / "seeds").glob("004_*.txt")).read_text()


def seed_example_message() -> str:
    """The job message exactly as seed 004 shows it (it names no meeting.type.id)."""
    start = SEED_004.index("The services uses AWS SQS")
    return SEED_004[SEED_004.index("{", start) : SEED_004.index("Explanations:")].strip()


def test_the_seeds_message_without_a_type_id_is_told_by_its_type_name() -> None:
    job = parse_job(seed_example_message())
    assert job.meeting.type.id is None
    assert job.meeting.type.name == "live now"
    assert [(t.path, str(t.expiration)) for t in job.message_targets] == [
        ("some room/sub-room", "4 years 3 months 2 weeks 1 day")
    ]
    targets = [
        {"meetingTypeId": 14, "copyTo": [{"path": "by-id"}]},
        {"meetingTypeId": "Live Now", "copyTo": [{"path": "by-name"}]},
        {"meetingTypeId": "*any*", "copyTo": [{"path": "all"}]},
        {"meetingTypeId": "webinar", "copyTo": [{"path": "other-name"}]},
    ]
    # The instance's targets serve when the message names none (the seed's example does).
    chosen = targets_for(instance("x", targets), "d", job.meeting.type.id, job.meeting.type.name)
    assert chosen == [Target("by-name"), Target("all")]
    # A message with the id still matches id-keyed targets; a configurator's "14" is 14.
    by_id = instance("x", [{"meetingTypeId": "14", "copyTo": [{"path": "by-id"}]}])
    assert targets_for(by_id, "d", 14, "live now") == [Target("by-id")]
    with pytest.raises(PermanentJobError, match=r"names no meeting\.type\.id"):
        targets_for(by_id, "d", None, "live now")
