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
        ["", "", "file_transferer", "not JSON"],
        ["acme.example", "42", "file_transferer", "storage.type: 'ftp' is unknown"],
    ]
    assert "a@b.c" not in result.stdout
    assert asyncio.run(depth(devstack.state, dead)) == (2, 0)  # listing left them in place


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
    assert asyncio.run(depth(devstack.state, dead)) == (1, 0)
    assert run_cli("dlq", "redrive", "--config", str(config), "--all").returncode == 0
    assert asyncio.run(depth(devstack.state, dead)) == (0, 0)
