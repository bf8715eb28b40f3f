"""``recstore demo``: the main job on the embedded dev stack, start to finish, on one screen.

It starts the dev stack in this process, puts two recordings into S3, enqueues three job
messages (one of them malformed), runs the real daemon (``recstore run``) as a child process,
and then shows what a user would check: where each file went in DRACOON, its size, and its
SHA-256 after downloading and decrypting it as a room member, beside the source's; that the
sources were removed; and where the bad message went and why. It ends the daemon with SIGTERM
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
from pydantic import SecretStr

from recstore import crypto
from recstore.clients.aws import aws_client
from recstore.clients.dracoon import DracoonAccount, DracoonClient
from recstore.clients.s3 import S3Store
from recstore.clients.sqs import SqsQueue
from recstore.devstack.appconfig import DEMO_INSTANCE, render
from recstore.devstack.seed import aws_settings_from_state, seed_s3
from recstore.devstack.stack import DevStack
from recstore.errors import RemoteError

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


def demo_jobs(keys: list[str]) -> list[dict[str, Any]]:
    meeting: dict[str, Any] = {
        "id": 22980,
        "type": {"name": "live now", "duration": 60},
        "user": {"name": "Sessions support", "email": "support@example.com"},
        "date": "2026-11-22T10:00:00+00:00",
    }
    base: dict[str, Any] = {
        "meeting": meeting,
        "instance": {"domain": DEMO_INSTANCE},
    }
    video = {
        **base,
        "storage": {
            "type": "dracoon",
            "extra": {
                "dracoon": {
                    "targets": [
                        {
                            "path": "$instance/$meetingType",
                            "expiration": LONG_EXPIRATION,
                        },
                        {"path": "Legal hold/$instance"},
                    ]
                },
                "aws.s3": {"bucket": "recordings", "keys": [keys[0]]},
            },
        },
    }
    phone = {
        **base,
        "meeting": {**meeting, "id": 22981},
        "storage": {
            "type": "dracoon",
            "extra": {"aws.s3": {"bucket": "recordings", "keys": [keys[1]]}},
        },
    }
    bad = {**phone, "storage": {**phone["storage"], "type": "ftp"}}
    return [video, phone, bad]


async def decrypted_sha256(state: dict[str, Any], file_id: int) -> str:
    member = state["dracoon_members"][0]
    account = DracoonAccount(
        state["dracoon_url"],
        member["login"],
        SecretStr(member["password"]),
        SecretStr(member["encryption_password"]),
        state["dracoon_client_id"],
        SecretStr(state["dracoon_client_secret"]),
    )
    async with DracoonClient(account) as dracoon:
        key = crypto.decrypt_file_key(
            await dracoon.user_file_key(file_id), await dracoon.private_key()
        )
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
        sources = await seed_s3(
            state,
            {
                "objects": [
                    {"key": "sandbox/test-video.mp4", "size": 24 * MiB + 123, "seed": 1},
                    {"key": "sandbox/test-phone.m4a", "size": 3 * MiB + 7, "seed": 2},
                ]
            },
        )
        by_key = {s["key"]: s for s in sources}
        for source in sources:
            digest = source["sha256"][:16]
            say(f"  s3://recordings/{source['key']}  {source['size']:>10} bytes  sha256 {digest}…")
        settings = aws_settings_from_state(state)
        async with aws_client(settings, "sqs") as sqs:
            queue = SqsQueue(sqs, state["queue_url"])
            for job in demo_jobs(list(by_key)):
                await queue.send(json.dumps(job))
        say("enqueued 3 job messages (the third names an unknown storage type)")
        port = free_port()
        config = workdir / "app.yaml"
        config.write_text(render(state, http_port=port), encoding="utf-8")
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
        files = await stored_files(state)
        say("in DRACOON (downloaded and decrypted as room member alice):")
        for stored in sorted(files, key=lambda f: f["path"]):
            source = next(s for k, s in by_key.items() if k.endswith("/" + stored["name"]))
            digest = await decrypted_sha256(state, stored["id"])
            ok = digest == source["sha256"] and stored["size"] == source["size"]
            failures += not ok
            expires = f", expires {stored['expireAt'][:10]}" if stored.get("expireAt") else ""
            verdict = "matches the source" if ok else "DIFFERS"
            size = f"{stored['size']} bytes{expires}"
            say(f"  {stored['path']}  {size}  sha256 {digest[:16]}…  {verdict}")
        failures += len(files) != 3
        async with aws_client(settings, "s3") as s3:
            store = S3Store(s3)
            for key in by_key:
                try:
                    await store.head("recordings", key)
                    say(f"  source s3://recordings/{key} still there (unexpected)")
                    failures += 1
                except RemoteError:
                    say(f"  source s3://recordings/{key} removed after transfer")
        for letter in letters:
            reason = letter.attributes.get("reason")
            say(f"dead-letter queue: message {letter.message_id[:8]}… reason: {reason}")
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
