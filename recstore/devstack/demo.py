"""``recstore demo``: the main job on the embedded dev stack, start to finish, on one screen.

It starts the dev stack in this process, puts three recordings into S3 and an instance into
the configurator, enqueues four job messages (one of them malformed), runs the real daemon
(``recstore run``) as a child process, and then shows per job what a user would check: where
each file went in DRACOON, its size, and its SHA-256 after downloading and decrypting it as a
room member, beside the source's; that the source was removed; and where the bad message went
and why. It ends the daemon with SIGTERM
the way systemd or a container platform would. The exit status is 0 only when all of it held.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from recstore import crypto
from recstore.clients.aws import aws_client
from recstore.clients.dracoon import DracoonClient
from recstore.clients.s3 import S3Store
from recstore.clients.sqs import SqsQueue
from recstore.common.errors import RemoteError
from recstore.common.secret_files import write_private
from recstore.devstack.appconfig import DEMO_INSTANCE, instance_document, render
from recstore.devstack.seed import aws_settings_from_state, dracoon_account_from_state, seed_s3
from recstore.devstack.stack import DevStack
from recstore.transfer.keys import AccountKeys

Say = Callable[[str], None]
MiB = 1024 * 1024
LONG_EXPIRATION = "4 years 3 months 2 weeks 1 day"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_healthy(url: str, patience: float) -> tuple[int, str]:
    """Poll ``url`` until it answers 200; the last status and body either way."""
    deadline = time.monotonic() + patience
    status, body = 0, "no answer"
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as response:
                    status, body = response.status, await response.text()
                    if status == 200:
                        break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    return status, body


#: The instance the demo's configurator knows (the YAML knows DEMO_INSTANCE).
CAMPUS_INSTANCE = "campus.example.org"
LECTURE_TYPE = 7
RECORDINGS = [
    {"key": "sandbox/test-video.mp4", "size": 24 * MiB + 123, "seed": 1},
    {"key": "sandbox/test-phone.m4a", "size": 3 * MiB + 7, "seed": 2},
    {"key": "sandbox/lecture-01.mp4", "size": 9 * MiB + 5, "seed": 3},
]


def demo_jobs(keys: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """(what the job shows, its message): every way a job finds its targets, and a bad one."""
    meeting: dict[str, Any] = {
        "id": 22980,
        "type": {"name": "live now", "duration": 60},
        "user": {"name": "Sessions support", "email": "support@example.com"},
        "date": "2026-11-22T10:00:00+00:00",
    }

    def message(
        key: str, domain: str, meeting_id: int, targets: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        extra: dict[str, Any] = {"aws.s3": {"bucket": "recordings", "keys": [key]}}
        if targets is not None:
            extra["dracoon"] = {"targets": targets}
        return {
            "meeting": {**meeting, "id": meeting_id},
            "instance": {"domain": domain},
            "storage": {"type": "dracoon", "extra": extra},
        }

    video = message(
        keys[0],
        DEMO_INSTANCE,
        22980,
        [
            {"path": "$instance/$meetingType", "expiration": LONG_EXPIRATION},
            {"path": "Legal hold/$instance"},
        ],
    )
    phone = message(keys[1], DEMO_INSTANCE, 22981)
    lecture = message(keys[2], CAMPUS_INSTANCE, 22982)
    lecture["meeting"]["type"] = {"id": LECTURE_TYPE, "name": "lecture", "duration": 90}
    bad = message(keys[1], DEMO_INSTANCE, 22983)
    bad["storage"]["type"] = "ftp"
    return [
        ("instance from the YAML, two targets named in the message", video),
        ("instance from the YAML, its own target for any meeting type", phone),
        (f"instance from the configurator, its target for meeting type {LECTURE_TYPE}", lecture),
        ("malformed: an unknown storage type", bad),
    ]


async def seed_configurator(state: dict[str, Any]) -> None:
    targets = [
        {
            "meetingTypeId": LECTURE_TYPE,
            "copyTo": [{"path": "Lectures/$instance", "expiration": "2 years"}],
        }
    ]
    document = {"instances": {CAMPUS_INSTANCE: instance_document(state, targets)}}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{state['configurator_url']}/_devstack/seed", json=document) as answer,
    ):
        answer.raise_for_status()


async def decrypted_sha256(state: dict[str, Any], file_id: int) -> str:
    account = dracoon_account_from_state(state, state["dracoon_members"][0]["login"])
    async with DracoonClient(account) as dracoon:
        encrypted = await dracoon.user_file_key(file_id)
        version = crypto.key_pair_of_file_key(encrypted.version)
        private_key = await AccountKeys(dracoon).private_key(version)
        key = crypto.decrypt_file_key(encrypted.to_json(), private_key)
        decryptor, digest = crypto.FileDecryptor(key), hashlib.sha256()
        async for piece in dracoon.download(file_id):
            digest.update(decryptor.update(piece))
        decryptor.finalize()
    return digest.hexdigest()


async def stored_files(state: dict[str, Any]) -> list[dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{state['dracoon_url']}/_devstack/state") as r,
    ):
        nodes: list[dict[str, Any]] = (await r.json())["nodes"]
    return [n for n in nodes if n["type"] == "file"]


def job_of(stored: dict[str, Any]) -> tuple[str, str]:
    """(job id, source key) from the marker the transferer writes into a file's notes."""
    fields = dict(part.split("=", 1) for part in (stored.get("notes") or "").split() if "=" in part)
    return fields.get("job", "?"), fields.get("source", "").removeprefix("s3://recordings/")


async def report_jobs(
    state: dict[str, Any],
    jobs: list[tuple[str, dict[str, Any]]],
    by_key: dict[str, dict[str, Any]],
    say: Say,
) -> int:
    """Per job: its source, every file it made (decrypted as a member), the source's fate."""
    failures = 0
    files = await stored_files(state)
    async with aws_client(aws_settings_from_state(state), "s3") as s3:
        store = S3Store(s3)
        for label, job in jobs[:-1]:
            job_id = f"{job['instance']['domain']}/{job['meeting']['id']}"
            [key] = job["storage"]["extra"]["aws.s3"]["keys"]
            source = by_key[key]
            say(f"job {job_id}: {label}")
            say(f"  from s3://recordings/{key}  {source['size']} bytes")
            say(f"       sha256 {source['sha256']}")
            made = [f for f in files if job_of(f) == (job_id, key)]
            failures += not made
            for stored in sorted(made, key=lambda f: f["path"]):
                digest = await decrypted_sha256(state, stored["id"])
                ok = digest == source["sha256"] and stored["size"] == source["size"]
                failures += not ok
                expires = f", expires {stored['expireAt'][:10]}" if stored.get("expireAt") else ""
                say(f"  to   {stored['path']}  {stored['size']} bytes{expires}")
                verdict = "matches the source" if ok else "DIFFERS from the source"
                say(f"       sha256 {digest}  {verdict}")
            try:
                await store.head("recordings", key)
                say("  source still in S3 (unexpected)")
                failures += 1
            except RemoteError:
                say("  source removed from S3 after every target held it")
    return failures + (len(files) != 4)


async def run_demo(say: Say = print) -> int:
    stack = DevStack()
    workdir = Path(tempfile.mkdtemp(prefix="recstore-demo-"))
    failures = 0
    daemon: asyncio.subprocess.Process | None = None
    try:
        started = time.monotonic()
        state = await stack.start()
        took = time.monotonic() - started
        say(f"dev stack up in {took:.1f} s: S3+SQS (moto), DRACOON, configurator")
        sources = await seed_s3(state, {"objects": RECORDINGS})
        by_key = {s["key"]: s for s in sources}
        say(f"seeded {len(sources)} recordings into s3://recordings/sandbox/")
        await seed_configurator(state)
        say(f"seeded instances: {DEMO_INSTANCE} (YAML), {CAMPUS_INSTANCE} (configurator)")
        settings = aws_settings_from_state(state)
        jobs = demo_jobs(list(by_key))
        async with aws_client(settings, "sqs") as sqs:
            queue = SqsQueue(sqs, state["queue_url"])
            for _, job in jobs:
                await queue.send(json.dumps(job))
        say(f"enqueued {len(jobs)} job messages (the last names an unknown storage type)")
        port = free_port()
        config = workdir / "app.yaml"
        write_private(config, render(state, http_port=port).encode("utf-8"))  # passwords
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECSTORE_")}
        daemon = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "recstore",
            "run",
            "--config",
            str(config),
            env=env,
            stderr=(workdir / "daemon.log").open("w"),
        )
        status, body = await wait_healthy(f"http://127.0.0.1:{port}/healthcheck", patience=60)
        say(f"daemon running (pid {daemon.pid}); GET /healthcheck → {status} {body.strip()}")
        failures += status != 200
        async with aws_client(settings, "sqs") as sqs:
            work, dead = SqsQueue(sqs, state["queue_url"]), SqsQueue(sqs, state["dlq_url"])
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if await work.depth() == (0, 0) and (await dead.depth())[0] >= 1:
                    break
                await asyncio.sleep(0.5)
            letters = await dead.receive(10, 1, 30)
        say(f"queue drained in {time.monotonic() - started:.1f} s since start")
        say("each job, its files downloaded from DRACOON and decrypted as room member alice:")
        failures += await report_jobs(state, jobs, by_key, say)
        bad_label, bad = jobs[-1]
        say(f"job {bad['instance']['domain']}/{bad['meeting']['id']}: {bad_label}")
        for letter in letters:
            reason = letter.attributes.get("reason")
            say(f"  went to the dead-letter queue (message {letter.message_id}), reason: {reason}")
        failures += len(letters) != 1
        daemon.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(daemon.wait(), timeout=60)
        say(f"SIGTERM sent: daemon drained and exited with status {code}")
        failures += code != 0
    finally:
        if daemon is not None and daemon.returncode is None:
            daemon.kill()
            await daemon.wait()
        await stack.close()
        shutil.rmtree(workdir, ignore_errors=True)
    say(
        "demo finished: " + ("all checks passed" if not failures else f"{failures} check(s) failed")
    )
    return 0 if not failures else 1
