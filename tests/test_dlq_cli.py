"""``recstore dlq list|redrive`` against moto's SQS, through the real CLI."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import yaml

from recstore.clients.aws import aws_client
from recstore.clients.sqs import SqsQueue
from recstore.devstack.appconfig import app_config
from recstore.devstack.seed import aws_settings_from_state
from tests.conftest import StackProcess, run_cli

JOB = {"instance": {"domain": "acme.example"}, "meeting": {"id": 42, "user": {"email": "a@b.c"}}}


async def make_queues(state: dict[str, Any]) -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:8]
    async with aws_client(aws_settings_from_state(state), "sqs") as sqs:
        work = (await sqs.create_queue(QueueName=f"w-{suffix}"))["QueueUrl"]
        dead = (await sqs.create_queue(QueueName=f"d-{suffix}"))["QueueUrl"]
        dlq = SqsQueue(sqs, dead)
        await dlq.send(
            json.dumps(JOB),
            {"reason": "storage.type: 'ftp' is unknown", "worker": "file_transferer"},
        )
        await dlq.send("not json at all", {"reason": "not JSON", "worker": "file_transferer"})
        # Dead letters are often there for their shape: the listing must not trip over one.
        wrong = {"instance": "acme.example", "meeting": [42]}
        await dlq.send(json.dumps(wrong), {"reason": "instance: wrong type"})
        await dlq.send(json.dumps([1, 2]), {"reason": "not an object"})
        odd = {"instance": {"domain": "a\tb\nc\x1b[2J"}, "meeting": {"id": 7}}
        await dlq.send(json.dumps(odd), {"reason": "instance.domain: not a host name"})
    return work, dead


async def depth(state: dict[str, Any], url: str) -> tuple[int, int]:
    async with aws_client(aws_settings_from_state(state), "sqs") as sqs:
        return await SqsQueue(sqs, url).depth()


def config_for(state: dict[str, Any], work: str, dead: str, tmp_path: Path) -> Path:
    doc = app_config(state)
    doc["queues"] = {"recordings": work, "recordings-dlq": dead}
    doc["workers"]["FileTransferer"]["enabled"] = False
    doc["workers"]["DracoonGlobalSharer"]["count"] = 0
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_list_shows_reasons_without_personal_data(devstack: StackProcess, tmp_path: Path) -> None:
    work, dead = asyncio.run(make_queues(devstack.state))
    config = config_for(devstack.state, work, dead, tmp_path)
    result = run_cli("dlq", "list", "--config", str(config))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split("\t") == [
        "message_id",
        "receives",
        "instance",
        "meeting_id",
        "worker",
        "reason",
    ]
    rows = sorted(line.split("\t")[2:] for line in lines[1:])
    assert rows == [
        ["", "", "", "instance: wrong type"],
        ["", "", "", "not an object"],
        ["", "", "file_transferer", "not JSON"],
        ["a?b?c?[2J", "7", "", "instance.domain: not a host name"],
        ["acme.example", "42", "file_transferer", "storage.type: 'ftp' is unknown"],
    ]
    assert "a@b.c" not in result.stdout
    assert asyncio.run(depth(devstack.state, dead)) == (5, 0)  # listing left them in place


def test_queues_that_are_not_configured_are_named(devstack: StackProcess, tmp_path: Path) -> None:
    work, dead = asyncio.run(make_queues(devstack.state))
    config = config_for(devstack.state, work, dead, tmp_path)
    doc = yaml.safe_load(config.read_text())
    del doc["queues"]["recordings-dlq"]  # the transferer is off here, so loading passes
    config.write_text(yaml.safe_dump(doc))
    for command in (["list"], ["redrive", "--all"]):
        result = run_cli("dlq", *command, "--config", str(config))
        assert result.returncode == 2, result.stderr
        assert "configuration error: queues.recordings-dlq: is not configured" in result.stderr
        assert "Traceback" not in result.stderr


def test_an_unreachable_sqs_is_one_line_not_a_traceback(
    devstack: StackProcess, tmp_path: Path
) -> None:
    work, dead = asyncio.run(make_queues(devstack.state))
    config = config_for(devstack.state, work, dead, tmp_path)
    doc = yaml.safe_load(config.read_text())
    doc["aws"]["sqsEndpointUrl"] = "http://127.0.0.1:9"
    config.write_text(yaml.safe_dump(doc))
    result = run_cli("dlq", "list", "--config", str(config))
    assert result.returncode == 1
    assert result.stderr.startswith("Error: ")
    assert "sqs" in result.stderr
    assert "Traceback" not in result.stderr


def test_redrive_moves_the_chosen_messages_back(devstack: StackProcess, tmp_path: Path) -> None:
    work, dead = asyncio.run(make_queues(devstack.state))
    config = config_for(devstack.state, work, dead, tmp_path)
    assert run_cli("dlq", "redrive", "--config", str(config)).returncode == 2  # says which
    listing = run_cli("dlq", "list", "--config", str(config)).stdout.splitlines()[1:]
    chosen = next(line.split("\t")[0] for line in listing if "acme.example" in line)
    result = run_cli("dlq", "redrive", "--config", str(config), "--id", chosen)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"redriven {chosen}"
    assert asyncio.run(depth(devstack.state, work)) == (1, 0)
    assert asyncio.run(depth(devstack.state, dead)) == (4, 0)
    assert run_cli("dlq", "redrive", "--config", str(config), "--all").returncode == 0
    assert asyncio.run(depth(devstack.state, dead)) == (0, 0)
