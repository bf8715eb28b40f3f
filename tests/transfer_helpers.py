"""What the FileTransferer's end-to-end tests and the chaos run share: a job message, fresh
queues and daemon processes against the dev stack (:class:`Setup`), and what landed in
DRACOON, read and decrypted as a room member would."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from recstore.clients.aws import aws_client
from recstore.clients.s3 import S3Store
from recstore.clients.sqs import SqsQueue
from recstore.devstack.appconfig import app_config, instance_document
from recstore.devstack.seed import aws_settings_from_state, seed_s3
from tests.conftest import StackProcess, faults_injected, set_faults, start_daemon
from tests.dracoon_helpers import admin, client, downloaded_sha256, stand_in_state

MiB = 1024 * 1024


def job(
    domain: str,
    keys: list[str],
    targets: list[dict[str, str]] | None = None,
    meeting: int = 1,
    type_name: str = "sales call",
    type_id: int | None = None,
) -> dict[str, Any]:
    meeting_type: dict[str, Any] = {"name": type_name, "duration": 60}
    if type_id is not None:
        meeting_type["id"] = type_id
    extra: dict[str, Any] = {"aws.s3": {"bucket": "recordings", "keys": keys}}
    if targets is not None:
        extra["dracoon"] = {"targets": targets}
    return {
        "storage": {"type": "dracoon", "extra": extra},
        "meeting": {
            "id": meeting,
            "type": meeting_type,
            "user": {"name": "Host Person", "email": "host@example.com"},
            "guest": {"name": "Guest Person", "email": "guest@example.com"},
            "date": "2026-11-22T10:00:00+00:00",
        },
        "instance": {"domain": domain},
    }


class Setup:
    """Fresh queues, a configuration and helpers for one test."""

    def __init__(self, stack: StackProcess, tmp: Path, max_receive_count: int = 5) -> None:
        self.state = stack.state
        self._max_receive_count = max_receive_count
        self.tmp = tmp
        self.tag = uuid.uuid4().hex[:8]
        self.work_url, self.dead_url = asyncio.run(self._queues())
        self.daemons: list[subprocess.Popen[str]] = []

    async def _queues(self) -> tuple[str, str]:
        async with aws_client(aws_settings_from_state(self.state), "sqs") as sqs:
            dead = (await sqs.create_queue(QueueName=f"dlq-{self.tag}"))["QueueUrl"]
            arn = (await sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"]))[
                "Attributes"
            ]["QueueArn"]
            work = await sqs.create_queue(
                QueueName=f"work-{self.tag}",
                Attributes={
                    "RedrivePolicy": json.dumps(
                        {
                            "deadLetterTargetArn": arn,
                            "maxReceiveCount": str(self._max_receive_count),
                        }
                    )
                },
            )
        return work["QueueUrl"], dead

    def config(self, transferer: dict[str, Any] | None = None, **overrides: Any) -> Path:
        """The test's configuration file: ``transferer`` merged into
        ``workers.FileTransferer``, each of ``overrides`` into its section."""
        doc = app_config(self.state, http_port=0)
        doc["queues"] = {"recordings": self.work_url, "recordings-dlq": self.dead_url}
        doc["workers"]["FileTransferer"].update({"count": 2, "visibilityTimeout": 10})
        doc["workers"]["FileTransferer"].update(transferer or {})
        # Above S3's smallest part: a job's 5 MiB first part, then full chunks, go through
        # the whole daemon, and the decryption checks prove the uneven parts right.
        doc["s3"]["chunkSize"] = "6MiB"
        doc["daemon"].update({"gracePeriod": "2s"})
        for section, values in overrides.items():
            doc.setdefault(section, {}).update(values)
        path = self.tmp / f"app-{len(list(self.tmp.glob('app-*.yaml')))}.yaml"
        path.write_text(yaml.safe_dump(doc))
        return path

    def start(self, config: Path) -> subprocess.Popen[str]:
        proc = start_daemon(config, self.tmp / f"daemon-{len(self.daemons)}.log")
        self.daemons.append(proc)
        return proc

    def logs(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.tmp.glob("daemon-*.log")))

    def ask(self, path: str) -> tuple[int, Any] | None:
        """The latest daemon's answer to ``path`` (/healthcheck, /status.json); None until it
        listens."""
        ports = re.findall(r" 15000 .*http_port=(\d+)", self.logs())
        if not ports:
            return None
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ports[-1]}{path}") as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def objects(self, sizes: dict[str, int]) -> dict[str, dict[str, Any]]:
        specs = [
            {"key": f"{self.tag}/{name}", "size": size, "seed": size}
            for name, size in sizes.items()
        ]
        created = asyncio.run(seed_s3(self.state, {"objects": specs}))
        return {c["key"]: c for c in created}

    def send(self, *bodies: str) -> None:
        async def go() -> None:
            async with aws_client(aws_settings_from_state(self.state), "sqs") as sqs:
                for body in bodies:
                    await SqsQueue(sqs, self.work_url).send(body)

        asyncio.run(go())

    def depth(self, dead: bool = False) -> tuple[int, int]:
        async def go() -> tuple[int, int]:
            async with aws_client(aws_settings_from_state(self.state), "sqs") as sqs:
                return await SqsQueue(sqs, self.dead_url if dead else self.work_url).depth()

        return asyncio.run(go())

    def dead_letters(self) -> list[dict[str, str]]:
        return self.received(dead=True, limit=10)

    def received(self, dead: bool = False, limit: int | None = None) -> list[dict[str, str]]:
        """The messages waiting in the work (or dead-letter) queue, each with its attributes,
        up to ``limit``; hidden for 30 s once read."""

        async def go() -> list[dict[str, str]]:
            found: list[dict[str, str]] = []
            async with aws_client(aws_settings_from_state(self.state), "sqs") as sqs:
                queue = SqsQueue(sqs, self.dead_url if dead else self.work_url)
                while limit is None or len(found) < limit:
                    messages = await queue.receive(10, 1, 30)
                    if not messages:
                        break
                    found += [dict(m.attributes, body=m.body) for m in messages]
            return found

        return asyncio.run(go())

    def source_exists(self, key: str) -> bool:
        async def go() -> bool:
            async with aws_client(aws_settings_from_state(self.state), "s3") as s3:
                try:
                    await S3Store(s3).head("recordings", key)
                except Exception:
                    return False
                return True

        return asyncio.run(go())

    def wait(self, condition: Callable[[], bool], patience: float = 90) -> None:
        deadline = time.monotonic() + patience
        while not condition():
            current = (
                self.daemons[-1] if self.daemons else None
            )  # earlier ones were stopped on purpose
            if current is not None and current.poll() is not None:
                raise AssertionError(
                    f"daemon exited with {current.returncode}:\n{self.logs()[-3000:]}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met in {patience} s:\n{self.logs()[-3000:]}")
            time.sleep(0.25)

    def stop_all(self) -> None:
        for proc in self.daemons:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.daemons:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def setup(devstack: StackProcess, tmp_path: Path) -> Iterator[Setup]:
    """A work queue, its dead-letter queue and daemons to start on them; every fault the test
    set is cleared after it (the dev stack is shared with the worker's next tests)."""
    it = Setup(devstack, tmp_path)
    yield it
    it.stop_all()
    asyncio.run(admin(devstack.state, "faults", {}))
    asyncio.run(set_faults(devstack.state["s3_proxy_url"], {}))


def files_in(state: dict[str, Any], path: str) -> list[dict[str, Any]]:
    nodes = asyncio.run(stand_in_state(state))["nodes"]
    return [n for n in nodes if n["type"] == "file" and n["path"].rsplit("/", 1)[0] == path]


def open_uploads(state: dict[str, Any]) -> int:
    return int(asyncio.run(stand_in_state(state))["openUploads"])


def decrypted_sha256(state: dict[str, Any], file_id: int, member: str = "alice") -> str:
    async def go() -> str:
        async with client(state, member) as reader:
            return await downloaded_sha256(reader, file_id, True)

    return asyncio.run(go())


def injected(url: str) -> int:
    return asyncio.run(faults_injected(url))


def seed_instance(state: dict[str, Any], domain: str, targets: list[dict[str, Any]]) -> None:
    async def go() -> None:
        import aiohttp

        document = {"instances": {domain: instance_document(state, targets)}}
        async with aiohttp.ClientSession() as session:
            await session.post(f"{state['configurator_url']}/_devstack/seed", json=document)

    asyncio.run(go())
