"""The daemon's peak RSS while its transfer pool is full: the figure behind the pool's memory
request in deploy/kubernetes/ and deploy/ecs/.

bench/transfer.py measures one job at a time; a pool replica runs
``workers.FileTransferer.count`` at once, each holding its chunks in flight. This sends that
many jobs together (one object each, ``BENCH_POOL_SIZE``, default 512 MiB) to a daemon on
transfer.py's stack (``rclone serve s3``, the DRACOON stand-in) and prints its peak RSS (VmHWM)
before and after, with the chunk size and worker count it ran with.

    python bench/pool_rss.py
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import time
from pathlib import Path

import yaml
from _stack import free_port, peak_rss_mib, setting, start_daemon, work_dir
from transfer import CHUNK, WORKERS, Bench, make_object

from recstore.clients.aws import aws_client
from recstore.clients.sqs import SqsQueue
from recstore.common.units import parse_size
from recstore.devstack.appconfig import DEMO_INSTANCE, app_config
from recstore.devstack.seed import aws_settings_from_state


def job(key: str, meeting: int) -> str:
    return json.dumps(
        {
            "storage": {
                "type": "dracoon",
                "extra": {
                    "dracoon": {"targets": [{"path": f"Pool {meeting}"}]},
                    "aws.s3": {"bucket": "recordings", "keys": [key]},
                },
            },
            "meeting": {"id": meeting, "type": {"name": "bench"}},
            "instance": {"domain": DEMO_INSTANCE},
        }
    )


async def send_all(bench: Bench, bodies: list[str]) -> None:
    async with aws_client(aws_settings_from_state(bench.state), "sqs") as sqs:
        queue = SqsQueue(sqs, bench.state["queue_url"])
        await queue.send_batch(bodies)


def wait_for_lines(log: Path, line: str, count: int, patience: float = 900) -> None:
    deadline = time.monotonic() + patience
    while log.read_text().count(line) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"fewer than {count} {line!r} in {log} after {patience:.0f} s")
        time.sleep(0.1)


def main() -> None:
    size = parse_size(setting("BENCH_POOL_SIZE", "512MiB", "16MiB"))
    work = work_dir("recstore-pool-rss-", need=3 * WORKERS * size + 2**30)
    bench = Bench(work)
    try:
        keys = [f"pool-{i}.bin" for i in range(WORKERS)]
        for key in keys:
            make_object(bench.s3_root / "recordings" / key, size)
        bench.start()
        doc = app_config(bench.state, http_port=free_port())
        bench.point_config_at_s3(doc)
        doc["workers"]["FileTransferer"]["count"] = WORKERS
        doc["workers"]["DracoonGlobalSharer"]["count"] = 0
        doc["s3"] = {"chunkSize": CHUNK, "removeAfterTransferring": False}
        doc["logger"] = {"level": "info", "format": "text"}
        config, log = work / "pool.yaml", work / "daemon.log"
        config.write_text(yaml.safe_dump(doc))
        daemon = start_daemon(config, log)
        try:
            wait_for_lines(log, " 15000 ", 1, patience=30)
            idle = peak_rss_mib(daemon.pid)
            asyncio.run(send_all(bench, [job(key, 1000 + i) for i, key in enumerate(keys)]))
            wait_for_lines(log, "job done", len(keys))
            full = peak_rss_mib(daemon.pid)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=60)
    finally:
        bench.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"chunkSize {CHUNK / 1e6:.0f} MB, {WORKERS} workers, {WORKERS} jobs of "
        f"{size / 2**20:.0f} MiB sent together: peak RSS {idle:.0f} MiB before the jobs, "
        f"{full:.0f} MiB after"
    )


if __name__ == "__main__":
    main()
