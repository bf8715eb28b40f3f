"""The operator commands around transfers, through the real CLI against the dev stack."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import yaml

from recstore.clients.aws import aws_client
from recstore.clients.sqs import SqsQueue
from recstore.devstack.appconfig import DEMO_INSTANCE, app_config, instance_document
from recstore.devstack.seed import aws_settings_from_state, seed_s3
from tests.conftest import StackProcess, run_cli
from tests.dracoon_helpers import admin, client, downloaded_sha256, stand_in_state


def config_for(state: dict[str, Any], tmp_path: Path) -> tuple[Path, str]:
    suffix = uuid.uuid4().hex[:8]

    async def queue() -> str:
        async with aws_client(aws_settings_from_state(state), "sqs") as sqs:
            return str((await sqs.create_queue(QueueName=f"cli-{suffix}"))["QueueUrl"])

    url = asyncio.run(queue())
    doc = app_config(state, http_port=0)
    doc["queues"] = {"recordings": url, "recordings-dlq": url}
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path, url


def message(key: str, target: str) -> dict[str, Any]:
    return {
        "storage": {
            "type": "dracoon",
            "extra": {
                "dracoon": {"targets": [{"path": target}]},
                "aws.s3": {"bucket": "recordings", "keys": [key]},
            },
        },
        "meeting": {"id": 5, "type": {"name": "cli"}},
        "instance": {"domain": DEMO_INSTANCE},
    }


def test_enqueue_validates_before_sending(devstack: StackProcess, tmp_path: Path) -> None:
    config, url = config_for(devstack.state, tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"storage": {"type": "ftp"}}))
    refused = run_cli("enqueue", "--config", str(config), "--file", str(bad))
    assert refused.returncode == 1
    assert "not a valid job: storage.type: is not a known storage" in refused.stderr
    good = tmp_path / "good.json"
    good.write_text(json.dumps(message("cli/x.mp4", "cli")))
    sent = run_cli("enqueue", "--config", str(config), "--file", str(good))
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.startswith(f"enqueued {DEMO_INSTANCE}/5 as message ")

    async def depth() -> tuple[int, int]:
        async with aws_client(aws_settings_from_state(devstack.state), "sqs") as sqs:
            return await SqsQueue(sqs, url).depth()

    assert asyncio.run(depth()) == (1, 0)


def test_transfer_runs_one_job_in_the_foreground(devstack: StackProcess, tmp_path: Path) -> None:
    config, _ = config_for(devstack.state, tmp_path)
    key = f"cli-{uuid.uuid4().hex[:8]}/talk.mp4"
    asyncio.run(seed_s3(devstack.state, {"objects": [{"key": key, "size": 2_000_000}]}))
    target = f"CLI {uuid.uuid4().hex[:6]}"
    job = tmp_path / "job.json"
    job.write_text(json.dumps(message(key, target)))
    result = run_cli("transfer", "--config", str(config), "--file", str(job))
    assert result.returncode == 0, result.stderr
    assert f"uploaded\t{key}\t{target}\tfile " in result.stdout
    assert f"source removed\t{key}" in result.stdout
    again = run_cli("transfer", "--config", str(config), "--file", str(job))
    assert again.returncode == 0, again.stderr  # the source is gone but the target holds it
    assert f"already there\t{key}\t{target}\tfile " in again.stdout
    assert "source removed" not in again.stdout
    nodes = asyncio.run(stand_in_state(devstack.state))["nodes"]
    assert sum(n["path"] == f"/Recordings/{target}/talk.mp4" for n in nodes) == 1
    # The producer reuses the meeting id (a recurring meeting) for a new recording under the
    # same key: it is a new file, not "already there", or its source would go untransferred.
    asyncio.run(seed_s3(devstack.state, {"objects": [{"key": key, "size": 2_000_001}]}))
    reused = run_cli("transfer", "--config", str(config), "--file", str(job))
    assert reused.returncode == 0, reused.stderr
    assert f"uploaded\t{key}\t{target}\tfile " in reused.stdout
    assert f"source removed\t{key}" in reused.stdout
    nodes = asyncio.run(stand_in_state(devstack.state))["nodes"]
    sizes = sorted(n["size"] for n in nodes if n["path"].startswith(f"/Recordings/{target}/talk"))
    assert sizes == [2_000_000, 2_000_001]


def test_a_recording_goes_into_an_unencrypted_room_as_it_is(
    devstack: StackProcess, tmp_path: Path
) -> None:
    state = devstack.state
    tag = uuid.uuid4().hex[:8]
    members = [
        {"login": state["dracoon_login"], "permissions": ["read", "create", "manage"]},
        {"login": "alice", "permissions": ["read"]},
    ]
    seed = {"rooms": [{"path": f"Plain {tag}", "encrypted": False, "members": members}]}
    parent = asyncio.run(admin(state, "seed", seed))["rooms"][f"Plain {tag}"]
    config, _ = config_for(state, tmp_path)
    domain = f"plain-{tag}.example"
    doc = yaml.safe_load(config.read_text())
    instance = instance_document(state, [{"meetingTypeId": "*any*", "copyTo": [{"path": "talks"}]}])
    instance["recordings"]["dracoon"]["parent-room-id"] = parent
    doc["instances"] = {domain: instance}
    config.write_text(yaml.safe_dump(doc))
    key = f"plain-{tag}/talk.mp4"
    [source] = asyncio.run(seed_s3(state, {"objects": [{"key": key, "size": 7_000_001}]}))
    body = message(key, "unused")
    del body["storage"]["extra"]["dracoon"]  # the instance's own target applies
    body["instance"]["domain"] = domain
    job = tmp_path / "job.json"
    job.write_text(json.dumps(body))
    result = run_cli("transfer", "--config", str(config), "--file", str(job))
    assert result.returncode == 0, result.stderr
    [stored] = [
        n
        for n in asyncio.run(stand_in_state(state))["nodes"]
        if n["path"] == f"/Plain {tag}/talks/talk.mp4"
    ]
    assert stored["encrypted"] is False

    async def read_as_alice() -> str:
        async with client(state, "alice") as reader:
            return await downloaded_sha256(reader, stored["id"], False)

    assert asyncio.run(read_as_alice()) == source["sha256"]
    assert f"source removed\t{key}" in result.stdout


def test_devstack_seed_dracoon_through_the_cli(devstack: StackProcess, tmp_path: Path) -> None:
    login = f"carol{uuid.uuid4().hex[:6]}"
    document = {
        "users": [
            {
                "login": login,
                "password": "pw-carol",
                "keyPairs": [{"version": "A", "encryptionPassword": "enc"}],
            }
        ],
        "rooms": [
            {
                "path": f"Seeded {login}/Sub",
                "encrypted": True,
                "members": [{"login": login, "permissions": ["read"]}],
            }
        ],
    }
    path = tmp_path / "dracoon.json"
    path.write_text(json.dumps(document))
    result = run_cli(
        "devstack", "seed", "dracoon", "--state-file", str(devstack.state_file), "--file", str(path)
    )
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert login in created["users"]
    assert f"Seeded {login}/Sub" in created["rooms"]
    for key in (
        "dracoon_url",
        "dracoon_client_id",
        "dracoon_client_secret",
        "dracoon_login",
        "dracoon_password",
        "dracoon_encryption_password",
        "dracoon_parent_room_id",
    ):
        assert devstack.state[key]
