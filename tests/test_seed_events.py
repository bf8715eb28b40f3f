"""Seed 004's event codes, each triggered where the seed's meaning applies.

The README's table says when recstore logs each code; alert rules written for the seed key on
them, so each is shown here to be logged by the failure or step it names, not only defined.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from recstore.clients.aws import aws_client
from recstore.clients.s3 import S3Store
from recstore.clients.sqs import Message, SqsQueue
from recstore.common import events
from recstore.common.errors import RemoteError
from recstore.devstack.appconfig import DEMO_INSTANCE, app_config
from recstore.devstack.seed import aws_settings_from_state, seed_s3
from recstore.settings import AwsSettings, Settings
from recstore.transfer.job import TransferJob, parse_job
from recstore.workers.base import WorkerHealth
from recstore.workers.file_transferer import TransferService, decode_job, job_failure_event
from recstore.workers.periodic import PeriodicWorker
from recstore.workers.queue_consumer import ConsumerSettings, QueueConsumer
from tests.conftest import StackProcess, run_cli, set_faults, until


@pytest.fixture(autouse=True)
def _info_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)  # status codes are info lines


OFF = {"workers": {"FileTransferer": {"enabled": False}, "DracoonGlobalSharer": {"count": 0}}}


def lines_of(caplog: pytest.LogCaptureFixture, code: int) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if getattr(r, "event", events.LIBRARY_MESSAGE).code == code
    ]


def job_body(domain: str, key: str) -> str:
    return json.dumps(
        {
            "storage": {
                "type": "dracoon",
                "extra": {
                    "dracoon": {"targets": [{"path": "Events/$instance"}]},
                    "aws.s3": {"bucket": "recordings", "keys": [key]},
                },
            },
            "meeting": {"id": uuid.uuid4().hex[:8], "type": {"name": "live now"}},
            "instance": {"domain": domain},
        }
    )


def settings_for(state: dict[str, Any], **aws: str) -> Settings:
    doc = app_config(state, http_port=0)
    doc["aws"].update(aws)
    return Settings.model_validate(doc)


async def consume_once(state: dict[str, Any], settings: Settings, body: str) -> None:
    """Run one job message through the FileTransferer's queue loop until it has failed once."""
    async with aws_client(aws_settings_from_state(state), "sqs") as sqs:
        tag = uuid.uuid4().hex[:8]
        work = SqsQueue(sqs, (await sqs.create_queue(QueueName=f"ev-{tag}"))["QueueUrl"])
        dead = SqsQueue(sqs, (await sqs.create_queue(QueueName=f"ev-dlq-{tag}"))["QueueUrl"])
        await work.send(body)
        finished = asyncio.Event()
        async with TransferService(settings) as service:

            async def handle(job: TransferJob, message: Message) -> None:
                try:
                    await service.run_job(job)
                finally:
                    finished.set()

            consumer = QueueConsumer(
                "file_transferer",
                work,
                dead,
                decode_job,
                handle,
                ConsumerSettings(concurrency=1, visibility_timeout=30, wait_seconds=1),
                WorkerHealth(),
                failure_event=job_failure_event,
            )
            stop = asyncio.Event()
            task = asyncio.create_task(consumer.run(stop))
            await asyncio.wait_for(finished.wait(), 30)
            await until(lambda: _idle(consumer))
            stop.set()
            await asyncio.wait_for(task, 30)


async def _idle(consumer: QueueConsumer[TransferJob]) -> bool:
    return not consumer.in_flight


def test_15001_a_one_shot_command_says_it_started(tmp_path: Path) -> None:
    config = tmp_path / "app.yaml"
    config.write_text(yaml.safe_dump(OFF))
    result = run_cli("share-keys", "--dry-run", "--config", str(config))
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stderr.splitlines() if " 15001 " in line]
    assert "recstore share-keys started" in line


@pytest.mark.parametrize("command", [["run"], ["config", "check"]])
def test_15018_each_configuration_problem_and_15002_the_daemon_not_starting(
    tmp_path: Path, command: list[str]
) -> None:
    config = tmp_path / "app.yaml"
    config.write_text(yaml.safe_dump({**OFF, "s3": {"chunkSize": "1KB"}, "nosuch": 1}))
    result = run_cli(*command, "--config", str(config))
    assert result.returncode == 2
    problems = [line for line in result.stderr.splitlines() if " 15018 " in line]
    assert len(problems) == 2, result.stderr
    assert any("s3.chunkSize" in line for line in problems)
    assert any("nosuch: unknown key" in line for line in problems)
    refusals = [line for line in result.stderr.splitlines() if " 15002 " in line]
    assert len(refusals) == (1 if command == ["run"] else 0), result.stderr


async def test_15003_aws_credentials_missing(
    devstack: StackProcess, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    settings = AwsSettings(region="eu-central-1", s3EndpointUrl=devstack.state["s3_endpoint"])
    async with aws_client(settings, "s3") as s3:
        with pytest.raises(RemoteError):
            await S3Store(s3).find("recordings", "whatever.mp4")
    [line] = lines_of(caplog, 15003)
    assert "credentials" in line


async def test_15004_a_queue_that_does_not_exist(
    devstack: StackProcess, caplog: pytest.LogCaptureFixture
) -> None:
    state = devstack.state
    async with aws_client(aws_settings_from_state(state), "sqs") as sqs:
        real = (await sqs.create_queue(QueueName=f"ev-{uuid.uuid4().hex[:8]}"))["QueueUrl"]
        missing = real.rsplit("/", 1)[0] + "/no-such-queue-" + uuid.uuid4().hex[:8]
        with pytest.raises(RemoteError):
            await SqsQueue(sqs, missing).receive(1, 1, 30)
    [line] = lines_of(caplog, 15004)
    assert "AWS configuration" in line


async def test_15008_a_periodic_run_reports_its_duration(caplog: pytest.LogCaptureFixture) -> None:
    async def job() -> None:
        await asyncio.sleep(0.01)

    worker = PeriodicWorker("profiled", 3600, job)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await until(lambda: _ran(worker))
    stop.set()
    await asyncio.wait_for(task, 10)
    [record] = [r for r in caplog.records if getattr(r, "event", None) is events.WORKER_PROFILING]
    assert record.getMessage() == "profiled run ended (success)"
    assert getattr(record, "fields", {})["seconds"] >= 0


async def _ran(worker: PeriodicWorker) -> bool:
    return worker.last_outcome == "success"


async def test_15011_s3_refusing_a_transfers_source(
    devstack: StackProcess, caplog: pytest.LogCaptureFixture
) -> None:
    state = devstack.state
    key = f"events-{uuid.uuid4().hex[:8]}/talk.mp4"
    await seed_s3(state, {"objects": [{"key": key, "size": 1024}]})
    proxy = state["s3_proxy_url"]
    await set_faults(proxy, {"error_rate": 1, "error_status": 403})
    try:
        await consume_once(
            state, settings_for(state, s3EndpointUrl=proxy), job_body(DEMO_INSTANCE, key)
        )
    finally:
        await set_faults(proxy, {})
    # (the refusal may also meet the record of served instances, which is S3's too: 15011)
    [line] = [line for line in lines_of(caplog, 15011) if line.startswith("job ")]
    assert line.startswith("job failed, retried in")
    assert "AccessDenied" in line  # S3's refusal of the source's first read, named
    assert not lines_of(caplog, 15007)


async def test_15012_a_source_removed_after_its_transfer(
    devstack: StackProcess, caplog: pytest.LogCaptureFixture
) -> None:
    state = devstack.state
    key = f"events-{uuid.uuid4().hex[:8]}/talk.mp4"
    await seed_s3(state, {"objects": [{"key": key, "size": 1024}]})
    async with TransferService(settings_for(state)) as service:
        report = await service.run_job(parse_job(job_body(DEMO_INSTANCE, key)))
    assert report.sources_removed == [key]
    [line] = lines_of(caplog, 15012)
    assert line == f"source s3://recordings/{key} removed: every target holds it"


async def test_15013_a_job_whose_instance_has_no_configuration(
    devstack: StackProcess, caplog: pytest.LogCaptureFixture
) -> None:
    state = devstack.state
    unknown = f"unknown-{uuid.uuid4().hex[:8]}.example.com"
    await consume_once(state, settings_for(state), job_body(unknown, "x/talk.mp4"))
    [line] = lines_of(caplog, 15013)
    assert line.startswith(f"job moved to the dead-letter queue: instance '{unknown}'")
    assert not lines_of(caplog, 15007)
