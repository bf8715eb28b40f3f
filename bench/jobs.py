"""Many small recordings: jobs per second and requests per job, by pool size, in one run.

A pool spends its time on per-job round trips, not bytes. This sends ``BENCH_JOBS`` jobs of
1 MiB (default 500) and ``BENCH_LARGE_JOBS`` of 20 MiB (default 100) into a handful of
encrypted rooms that exist before the run (``BENCH_ROOMS``, default 4) to a daemon
(``recstore run``) with ``FileTransferer.count`` of each of ``BENCH_POOLS`` (default 1, 4, 8),
on the dev stack: moto for S3 and SQS, reached through the dev stack's S3 proxy, which counts
every request by operation; the DRACOON stand-in counts its own by endpoint
(``/_devstack/requests``). Each job's source is removed after the transfer, as production does.

Beside them, the baseline: one process doing only the protocol's unavoidable calls per job,
sequentially (receive, GET, create upload, upload, complete, set keys, delete source, delete
message; DRACOON's upload as recstore's client speaks it, and the file's missing keys listed
to be set). Its account's login, key pair and room ids are had once, before the clock.

Targets (issue 32): requests per job at most the baseline's plus one; pool 8 at least 5x
pool 1 in jobs/s; pool 1 at least 0.8x the baseline's jobs/s.

Each row also says how many cores the dev stack and the daemon (or the baseline) kept busy
while it ran: the dev stack answers S3, SQS and DRACOON from one Python process, so once it
keeps one core busy no pool size goes faster on this machine.

The daemon's own requests, made on its clock whatever the jobs (the queue-depth samples,
``daemon.queueDepthInterval``: SQS GetQueueAttributes), are counted apart from the jobs'
and printed on their own line: over a run this short they would pass for per-job cost.

    python bench/jobs.py
    BENCH_QUICK=1 python bench/jobs.py        # 20 jobs of 1 MiB, pools 1 and 4: a smoke run
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from _stack import (
    QUICK,
    CpuMeter,
    free_port,
    setting,
    start_daemon,
    start_devstack,
    work_dir,
)
from pool_rss import wait_for_lines

from recstore.clients.aws import aws_client
from recstore.clients.dracoon import DracoonAccount, DracoonClient
from recstore.clients.dracoon_rooms import DracoonDestination
from recstore.clients.sqs import SqsQueue
from recstore.crypto import FileEncryptor, encrypt_file_key, generate_file_key
from recstore.devstack.appconfig import DEMO_INSTANCE, app_config
from recstore.devstack.dracoon_model import ALL_PERMISSIONS
from recstore.devstack.seed import aws_settings_from_state, dracoon_account_from_state, seed_s3
from recstore.transfer.keys import AccountKeys, share_missing_keys

BUCKET = "recordings"
MiB = 2**20
#: Requests the daemon makes on its own schedule, not per job (see the docstring).
DAEMON_OWN = frozenset({"SQS GetQueueAttributes"})


def job(key: str, meeting: int, room: str) -> str:
    return json.dumps(
        {
            "storage": {
                "type": "dracoon",
                "extra": {
                    "dracoon": {"targets": [{"path": room}]},
                    "aws.s3": {"bucket": BUCKET, "keys": [key]},
                },
            },
            "meeting": {"id": meeting, "type": {"name": "bench"}},
            "instance": {"domain": DEMO_INSTANCE},
        }
    )


class Counters:
    """The request counts of the S3 proxy (S3 and SQS) and of the DRACOON stand-in."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.urls = {"aws": state["s3_proxy_url"], "dracoon": state["dracoon_url"]}

    async def take(self) -> Counter[str]:
        """The counts since the last take, by ``<service> <operation>``; counting anew."""
        counts: Counter[str] = Counter()
        async with aiohttp.ClientSession() as session:
            for name, url in self.urls.items():
                async with session.post(f"{url}/_devstack/requests") as answer:
                    answer.raise_for_status()
                    for endpoint, n in (await answer.json()).items():
                        label = endpoint if name == "aws" else f"DRACOON {endpoint}"
                        counts[label] += int(n)
        return counts


def per_service(counts: Counter[str], jobs: int) -> dict[str, float]:
    """Requests per job for SQS, S3 and DRACOON."""
    totals: Counter[str] = Counter()
    for label, n in counts.items():
        totals[label.split(" ", 1)[0]] += n
    return {service: totals[service] / jobs for service in ("SQS", "S3", "DRACOON")}


class Run:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.proc, self.state = start_devstack(work, work / "devstack")
        # S3 and SQS through the proxy, so every request is counted there
        self.via_proxy = {
            **self.state,
            "s3_endpoint": self.state["s3_proxy_url"],
            "sqs_endpoint": self.state["s3_proxy_url"],
        }
        self.counters = Counters(self.state)
        self.serial = 0

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)

    async def rooms(self, count: int) -> list[str]:
        """``count`` encrypted rooms below the parent, with its members (made before the run)."""
        names = [f"Jobs {i}" for i in range(count)]
        seed = {
            "rooms": [
                {
                    "path": f"Recordings/{name}",
                    "encrypted": True,
                    "members": [
                        {
                            "login": self.state["dracoon_login"],
                            "permissions": sorted(ALL_PERMISSIONS),
                        },
                        {"login": "alice", "permissions": ["read"]},
                        {"login": "bob", "permissions": ["read"]},
                    ],
                }
                for name in names
            ]
        }
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{self.state['dracoon_url']}/_devstack/seed", json=seed) as answer,
        ):
            answer.raise_for_status()
        return names

    async def sources(self, count: int, size: int) -> list[str]:
        self.serial += 1
        # A name of its own per recording, as meetings' recordings have: one shared name made
        # each job's look-up for its marked copy list every earlier copy in the room (pages
        # of them once past 500), and DRACOON rename each new one.
        keys = [f"jobs-{self.serial}/{i}/talk-{self.serial}-{i}.mp4" for i in range(count)]
        await seed_s3(self.state, {"objects": [{"key": k, "size": size} for k in keys]})
        return keys

    def account(self) -> DracoonAccount:
        return dracoon_account_from_state(self.state)

    async def fresh_queue(self, name: str) -> str:
        """A work queue of its own for one daemon: a daemon stopped during its long poll
        leaves that poll open at SQS, which takes the next run's first messages and hides
        them for the poll's claim (5 s; measured: pool 4 at 3.2 jobs/s after pool 1's
        daemon, 20 on a queue of its own)."""
        async with aws_client(aws_settings_from_state(self.state), "sqs") as sqs:
            return str((await sqs.create_queue(QueueName=name))["QueueUrl"])

    async def send(self, keys: list[str], rooms: list[str], queue_url: str | None = None) -> None:
        bodies = [job(key, 1000 + i, rooms[i % len(rooms)]) for i, key in enumerate(keys)]
        async with aws_client(aws_settings_from_state(self.state), "sqs") as sqs:
            # straight to moto: not counted
            queue = SqsQueue(sqs, queue_url or self.state["queue_url"])
            for start in range(0, len(bodies), 10):  # SQS's largest batch
                await queue.send_batch(bodies[start : start + 10])

    # the daemon, one pool size
    def daemon(
        self, pool: int, keys: list[str], rooms: list[str]
    ) -> tuple[float, Counter[str], dict[str, float]]:
        """Seconds from the jobs' sending to the last "job done", the requests made, and the
        CPU seconds the dev stack and the daemon spent meanwhile."""
        doc = app_config(self.via_proxy, http_port=free_port())
        doc["workers"]["FileTransferer"]["count"] = pool
        self.serial += 1
        queue_url = asyncio.run(self.fresh_queue(f"jobs-{self.serial}-pool-{pool}"))
        doc["workers"]["FileTransferer"]["queue"] = queue_url
        doc["workers"]["DracoonGlobalSharer"]["count"] = 0
        doc["s3"] = {"removeAfterTransferring": True}
        doc["logger"] = {"level": "info", "format": "text"}
        config, log = self.work / f"jobs-{pool}.yaml", self.work / f"daemon-{pool}.log"
        config.write_text(yaml.safe_dump(doc))
        daemon = start_daemon(config, log)
        try:
            wait_for_lines(log, " 15000 ", 1, patience=60)  # started
            asyncio.run(self.counters.take())
            meter = CpuMeter({"dev stack": self.proc.pid, "recstore": daemon.pid})
            with meter.measure():
                started = time.perf_counter()
                asyncio.run(self.send(keys, rooms, queue_url))
                wait_for_lines(log, "job done", len(keys))
                seconds = time.perf_counter() - started
            cpu = {name: meter.spent[name] for name in ("dev stack", "recstore")}
            counts = asyncio.run(self.counters.take())
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=60)
        return seconds, counts, cpu

    # the baseline
    async def baseline(
        self, keys: list[str], rooms: list[str]
    ) -> tuple[float, Counter[str], dict[str, float]]:
        """The unavoidable calls of each job, one job after the other (see the docstring)."""
        settings = aws_settings_from_state(self.via_proxy)
        async with (
            aws_client(settings, "sqs") as sqs,
            aws_client(settings, "s3") as s3,
            DracoonClient(self.account()) as dracoon,
        ):
            parent = int(self.state["dracoon_parent_room_id"])
            room_ids = {}
            for name in rooms:
                node = await dracoon.child_named(parent, name, "room")
                assert node is not None
                room_ids[name] = node.id
            own_key = (await dracoon.public_key_container()).to_json()
            account_keys = AccountKeys(dracoon)
            await account_keys.private_key()  # the account unlocked once, as the daemon does
            queue_url = self.state["queue_url"]
            await self.counters.take()
            meter = CpuMeter({"dev stack": self.proc.pid})  # and this process: the baseline
            with meter.measure():
                started = time.perf_counter()
                await self.send(keys, rooms)
                for _ in keys:
                    answer = await sqs.receive_message(
                        QueueUrl=queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=1
                    )
                    [message] = answer["Messages"]
                    body = json.loads(message["Body"])
                    source = body["storage"]["extra"]["aws.s3"]["keys"][0]
                    room = body["storage"]["extra"]["dracoon"]["targets"][0]["path"]
                    got = await s3.get_object(Bucket=BUCKET, Key=source)
                    async with got["Body"] as stream:
                        data = await stream.read()
                    cipher = FileEncryptor(generate_file_key())
                    encrypted = cipher.update(data)
                    plain: list[Any] = []

                    def file_key(cipher: FileEncryptor = cipher, plain: list[Any] = plain) -> Any:
                        plain.append(cipher.finalize())
                        return encrypt_file_key(plain[-1], own_key)

                    async def chunks(encrypted: bytes = encrypted) -> Any:
                        yield memoryview(encrypted)

                    node = await dracoon.uploads.upload(
                        room_ids[room],
                        source.rsplit("/", 1)[1],
                        len(data),
                        chunks(),
                        file_key=file_key,
                    )
                    await share_missing_keys(
                        DracoonDestination(dracoon, account_keys.private_keys),
                        file_id=node.id,
                        known_keys={node.id: plain[-1]},
                    )
                    await s3.delete_object(Bucket=BUCKET, Key=source)
                    await sqs.delete_message(
                        QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"]
                    )
                seconds = time.perf_counter() - started
            cpu = {"dev stack": meter.spent["dev stack"], "baseline": meter.spent["bench"]}
            return seconds, await self.counters.take(), cpu


def row(
    name: str, jobs: int, seconds: float, counts: Counter[str], cpu: dict[str, float]
) -> dict[str, Any]:
    own = Counter({label: n for label, n in counts.items() if label in DAEMON_OWN})
    counts = counts - own
    per = per_service(counts, jobs)
    return {
        "seconds": seconds,
        "own": own,
        "name": name,
        "jobs/s": jobs / seconds,
        **per,
        "total": sum(per.values()),
        "counts": counts,
        "jobs": jobs,
        # cores each process kept busy: the dev stack serves S3, SQS and DRACOON from one
        # Python process, so it can use one core at most
        "cores": " + ".join(f"{who} {spent / seconds:.2f}" for who, spent in cpu.items()),
    }


def main() -> None:
    small = int(setting("BENCH_JOBS", "500", "20"))
    large = int(setting("BENCH_LARGE_JOBS", "100", "0"))
    pools = [int(p) for p in setting("BENCH_POOLS", "1,4,8", "1,4").split(",")]
    room_count = int(setting("BENCH_ROOMS", "4", "2"))
    shapes = [(small, MiB), (large, 20 * MiB)]
    need = sum(n * size for n, size in shapes) * (len(pools) + 1) * 3 + 2**30
    work = work_dir("recstore-bench-jobs-", need=need)
    run = Run(work)
    tables: list[tuple[int, int, list[dict[str, Any]]]] = []
    try:
        rooms = asyncio.run(run.rooms(room_count))
        for count, size in shapes:
            if not count:
                continue
            rows = []
            keys = asyncio.run(run.sources(count, size))
            rows.append(row("baseline", count, *asyncio.run(run.baseline(keys, rooms))))
            for pool in pools:
                keys = asyncio.run(run.sources(count, size))
                rows.append(row(f"pool {pool}", count, *run.daemon(pool, keys, rooms)))
            tables.append((count, size, rows))
            print(f"measured {count} jobs of {size // MiB} MiB", file=sys.stderr)
    finally:
        run.stop()
        shutil.rmtree(work, ignore_errors=True)
    for count, size, rows in tables:
        print(f"{count} jobs of {size // MiB} MiB into {room_count} existing encrypted rooms")
        print(
            f"{'':>10} {'jobs/s':>8} {'SQS/job':>8} {'S3/job':>7} {'DRACOON/job':>11} {'all':>6}"
            "  cores busy (of 2)"
        )
        for r in rows:
            print(
                f"{r['name']:>10} {r['jobs/s']:>8.2f} {r['SQS']:>8.2f} {r['S3']:>7.2f}"
                f" {r['DRACOON']:>11.2f} {r['total']:>6.2f}  {r['cores']}"
            )
        base, by_pool = rows[0], {r["name"]: r for r in rows[1:]}
        print("  requests per job by endpoint (baseline | pools):")
        labels = sorted(set().union(*(r["counts"] for r in rows)))
        for label in labels:
            cells = " ".join(f"{r['counts'][label] / r['jobs']:>6.2f}" for r in rows)
            print(f"    {label:<56} {cells}")
        verdicts = []
        for name, r in by_pool.items():
            extra = r["total"] - base["total"]
            verdicts.append(
                f"{name}: requests/job {r['total']:.2f} vs baseline+1 {base['total'] + 1:.2f}"
                f" {'met' if extra <= 1 else 'MISSED'}"
            )
        if "pool 1" in by_pool:
            one = by_pool["pool 1"]
            ratio = one["jobs/s"] / base["jobs/s"]
            verdicts.append(
                f"pool 1 / baseline {ratio:.2f} {'met' if ratio >= 0.8 else 'MISSED'} (>= 0.8)"
            )
            if "pool 8" in by_pool:
                scale = by_pool["pool 8"]["jobs/s"] / one["jobs/s"]
                verdicts.append(
                    f"pool 8 / pool 1 {scale:.2f} {'met' if scale >= 5 else 'MISSED'} (>= 5)"
                )
        for r in rows:
            if r["own"]:
                own = ", ".join(f"{n} {label}" for label, n in sorted(r["own"].items()))
                print(
                    f"  {r['name']}: the daemon's own, not counted per job: {own}"
                    f" in {r['seconds']:.1f} s (queue-depth samples)"
                )
        print("  targets: " + "; ".join(verdicts))
    if QUICK:
        print("BENCH_QUICK=1: a smoke run with few jobs; the figures are no verdict")


if __name__ == "__main__":
    main()
