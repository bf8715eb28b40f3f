"""``recstore demo``: the main job on the embedded dev stack, start to finish, on one screen.

It starts the dev stack in this process, writes a configuration for it, runs the real daemon
(``recstore run``) as a child process, shows what it did, and stops it with SIGTERM the way
systemd or a container platform would. Each step prints one line; the exit status is 0 only
when every step did what it should.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp

from recstore.devstack.appconfig import render
from recstore.devstack.stack import DevStack

Say = Callable[[str], None]


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


async def run_demo(say: Say = print) -> int:
    stack = DevStack()
    workdir = Path(tempfile.mkdtemp(prefix="recstore-demo-"))
    failures = 0
    try:
        started = time.monotonic()
        state = await stack.start()
        say(f"dev stack up in {time.monotonic() - started:.1f} s: S3+SQS at {state['s3_endpoint']}")
        for key in sorted(
            k for k in state if k.endswith("_url") and k not in ("queue_url", "dlq_url")
        ):
            say(f"  {key}: {state[key]}")
        port = free_port()
        config = workdir / "app.yaml"
        config.write_text(render(state, http_port=port), encoding="utf-8")
        say("configuration written for the stack (removed when the demo ends)")
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECSTORE_")}
        daemon = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "recstore", "run", "--config", str(config), env=env
        )
        say(f"daemon started (pid {daemon.pid}); waiting for /healthcheck")
        status, body = await wait_healthy(f"http://127.0.0.1:{port}/healthcheck", patience=60)
        say(f"GET /healthcheck → {status} {body.strip()}")
        failures += status != 200
        daemon.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(daemon.wait(), timeout=60)
        say(f"SIGTERM sent: daemon drained and exited with status {code}")
        failures += code != 0
    finally:
        await stack.close()
        shutil.rmtree(workdir, ignore_errors=True)
    say(
        "demo finished: "
        + ("all steps succeeded" if not failures else f"{failures} step(s) failed")
    )
    return 0 if not failures else 1
