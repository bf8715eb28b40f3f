"""Scale of the archive planner: one planning run of the Archiver over a large library.

Seeds the Kaltura stand-in with generated entries (its seed's ``"generate": {"count": N,
"seed": S}``; a tenth carry ``archived_to_s3``, a fifth were never played, plays spread over
eight years), then starts a daemon whose only worker is ``workers.Archiver`` and lets it plan
once. For each library size in ``BENCH_LIBRARY`` (default 50,000 and 200,000; the second run
seeds the difference) it prints the run's time (from the daemon's start line to its plan line,
both as the daemon logged them), entries of the library per second, the daemon's peak RSS
(VmHWM), the SQS messages it sent and the calls it took (``SendMessageBatch``), and the
requests Kaltura served (counted by the stand-in). SQS is a counting sink here (:class:`SqsSink`,
which checks that every message is an archive job and answers as SQS does): moto's queue slows
down with every message it holds (measured: each 1,000 messages sent took longer than the 1,000
before, 17 s for the first, 25-35 s later), which would time moto, not the planner. The
planner streams: messages go out in batches of ten as the listing pages arrive, so peak RSS
must not grow with the library; the last line extrapolates time to 1,000,000 entries.

    python bench/planner.py
    BENCH_QUICK=1 python bench/planner.py      # 2,000 and 12,000 entries (past a 10,000 window)
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from _stack import (
    QUICK,
    cpu_seconds,
    free_port,
    peak_rss_mib,
    setting,
    start_daemon,
    start_devstack,
    work_dir,
)
from aiohttp import web

from recstore.archive.plan import parse_job
from recstore.devstack.appconfig import app_config


class SqsSink:
    """An SQS endpoint that takes ``SendMessageBatch`` (the JSON protocol botocore speaks),
    checks each message is an archive job, counts, and keeps nothing."""

    def __init__(self) -> None:
        self.messages = 0
        self.calls: Counter[str] = Counter()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._answer)
        runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()

    async def _answer(self, request: web.Request) -> web.Response:
        operation = request.headers.get("X-Amz-Target", "").rsplit(".", 1)[-1]
        self.calls[operation] += 1
        body = await request.json()
        answer: dict[str, Any] = {}
        if operation == "SendMessageBatch":
            done = []
            for entry in body["Entries"]:
                parse_job(entry["MessageBody"])  # refuses anything but an archive job
                digest = hashlib.md5(entry["MessageBody"].encode(), usedforsecurity=False)
                done.append(
                    {
                        "Id": entry["Id"],
                        "MessageId": str(uuid.uuid4()),
                        "MD5OfMessageBody": digest.hexdigest(),
                    }
                )
            self.messages += len(done)
            answer = {"Successful": done, "Failed": []}
        elif operation == "GetQueueAttributes":
            answer = {"Attributes": {"ApproximateNumberOfMessages": "0"}}
        return web.json_response(answer, content_type="application/x-amz-json-1.0")

    def take(self) -> tuple[int, Counter[str]]:
        messages, calls = self.messages, self.calls
        self.messages, self.calls = 0, Counter()
        return messages, calls


PLANNED = re.compile(r"^(\S+) .* 15024 .*planned=(\S*)")
STARTED = re.compile(r"^(\S+) .* 15000 ")


def logged_at(line: str) -> float:
    return datetime.fromisoformat(line.split(" ", 1)[0].replace("Z", "+00:00")).timestamp()


class Planner:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.proc, self.state = start_devstack(work, work / "devstack")
        self.seeded = 0
        self.sqs = SqsSink()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)

    async def admin(self, url: str, route: str, body: dict[str, Any] | None = None) -> Any:
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{url}/_devstack/{route}", json=body) as answer,
        ):
            answer.raise_for_status()
            return await answer.json()

    def grow(self, entries: int) -> None:
        """Generate entries until the library holds ``entries`` of them."""
        more = entries - self.seeded
        if more > 0:
            doc = {"generate": {"count": more, "seed": entries}}
            asyncio.run(self.admin(self.state["kaltura_url"], "seed", doc))
            self.seeded = entries

    async def requests(self) -> Counter[str]:
        """Requests Kaltura served since the last call, by endpoint."""
        return Counter(await self.admin(self.state["kaltura_url"], "requests"))

    def plan_once(self) -> dict[str, Any]:
        queue = f"{self.sqs.url}/000000000000/bench-archive"
        dlq = f"{self.sqs.url}/000000000000/bench-archive-dlq"
        doc = app_config({**self.state, "sqs_endpoint": self.sqs.url}, http_port=free_port())
        doc["workers"] = {
            "FileTransferer": {"enabled": False},
            "DracoonGlobalSharer": {"count": 0},
            "Archiver": {"enabled": True, "unplayedFor": 1},
        }
        doc["archive"] = {
            "bucket": self.state["bucket"],
            "queue": queue,
            "deadLetterQueue": dlq,
            "placeholderVideo": str(self.placeholder()),
        }
        doc["leases"]["prefix"] = f"bench-{uuid.uuid4().hex[:8]}/"  # never run: due at once
        doc["logger"] = {"level": "info", "format": "text"}
        config, log = self.work / "planner.yaml", self.work / f"planner-{self.seeded}.log"
        config.write_text(yaml.safe_dump(doc))
        asyncio.run(self.requests())
        self.sqs.take()
        stand_in = cpu_seconds(self.proc.pid)
        daemon = start_daemon(config, log)
        try:
            started, planned = self.wait_for_plan(log, daemon)
            rss = peak_rss_mib(daemon.pid)
            # the daemon's whole life (its start included), and the dev stack's meanwhile
            cpu = (cpu_seconds(daemon.pid), cpu_seconds(self.proc.pid) - stand_in)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=60)
        counts = asyncio.run(self.requests())
        messages, calls = self.sqs.take()
        return {
            "seconds": planned[0] - started,
            "planned": planned[1],
            "rss": rss,
            "messages": messages,
            "batches": calls["SendMessageBatch"],
            "kaltura": sum(counts.values()),
            "recstore cpu": cpu[0],
            "stand-in cpu": cpu[1],
        }

    def placeholder(self) -> Path:
        path = self.work / "placeholder.mp4"
        path.write_bytes(b"placeholder video " * 1000)
        return path

    def wait_for_plan(
        self, log: Path, daemon: subprocess.Popen[bytes], patience: float = 3600
    ) -> tuple[float, tuple[float, str]]:
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            if daemon.poll() is not None:
                raise SystemExit(f"the daemon ended: {log.read_text()[-2000:]}")
            started = planned = None
            for line in log.read_text().splitlines():
                if STARTED.match(line):
                    started = logged_at(line)
                elif found := PLANNED.match(line):
                    planned = (logged_at(line), found.group(2))
            if started is not None and planned is not None:
                return started, planned
            time.sleep(0.2)
        raise SystemExit(f"no plan in {log} after {patience:.0f} s")


def main() -> None:
    sizes = [int(s) for s in setting("BENCH_LIBRARY", "50000,200000", "2000,12000").split(",")]
    work = work_dir("recstore-bench-planner-", need=2**30)
    planner = Planner(work)
    rows = []
    try:
        for size in sizes:
            planner.grow(size)
            rows.append((size, planner.plan_once()))
            print(f"planned over {size:,} entries", file=sys.stderr)
    finally:
        planner.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"{'library':>9} {'seconds':>8} {'entries/s':>10} {'peak RSS':>9} {'messages':>9}"
        f" {'SQS calls':>9} {'Kaltura req':>11} {'CPU-s recstore':>14} {'stand-in':>8}  planned"
    )
    for size, r in rows:
        print(
            f"{size:>9,} {r['seconds']:>8.1f} {size / r['seconds']:>10,.0f} {r['rss']:>7.0f}Mi"
            f" {r['messages']:>9,} {r['batches']:>9,} {r['kaltura']:>11,}"
            f" {r['recstore cpu']:>14.1f} {r['stand-in cpu']:>8.1f}  {r['planned']}"
        )
    (small, first), (large, last) = rows[0], rows[-1]
    growth = (last["rss"] - first["rss"]) / first["rss"] * 100
    print(
        f"peak RSS from {small:,} to {large:,} entries: {growth:+.1f} % "
        f"(target: flat, the listing streamed into batches of ten)"
    )
    rate = large / last["seconds"]
    print(f"extrapolated to 1,000,000 entries at {rate:,.0f}/s: {1e6 / rate / 60:.1f} minutes")
    # For every page it serves, the stand-in filters every entry from the page's window start
    # to the library's end (Kaltura's search index does not), so the wall time grows faster
    # than the library here; recstore's own CPU per entry is what scales with a real Kaltura.
    own = (last["recstore cpu"] - first["recstore cpu"]) / (large - small)
    print(
        f"recstore's own CPU: {own * 1e6:.1f} CPU-s per 1,000,000 entries more "
        f"({(last['recstore cpu'] - own * large):.1f} CPU-s to start); the Kaltura stand-in "
        f"spent {last['stand-in cpu']:.1f} CPU-s on the {large:,}"
    )
    if QUICK:
        print("BENCH_QUICK=1: a smoke run on a small library; the figures are no verdict")


if __name__ == "__main__":
    main()
