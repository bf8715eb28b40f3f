"""The Archiver and Restorer planners and the ArchiveActions pools, two daemons side by side.

Each daemon here is the set of workers a replica runs (planner + pool), on this event loop,
against a Kaltura stand-in and the dev stack's moto (S3 for copies, leases and reports; SQS
for the archive queue). Intervals are seconds instead of minutes so several periods pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import itertools
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from recstore.archive.actions import REPLACE_VIDEO, S3COPY, Archivist
from recstore.clients.aws import aws_client
from recstore.clients.kaltura import KalturaClient
from recstore.clients.s3 import S3Store
from recstore.devstack.seed import aws_settings_from_state
from recstore.settings import Settings
from recstore.workers.archive_actions import ArchiveActions, ReportSink, rules_from
from recstore.workers.archiver import Archiver
from recstore.workers.leases import Lease
from recstore.workers.restorer import Restorer
from tests.archive_helpers import (
    FAST,
    MiB,
    StandIn,
    bucket_snapshot,
    entry,
    original_bytes,
    stand_in,
    tags_of,
    video,
)
from tests.conftest import ManualClock, StackProcess

pytestmark = pytest.mark.long  # tens of seconds: xdist starts it early

_serial = itertools.count()
PLACEHOLDER = b"worker placeholder " * 150


class Env:
    """One test's queues, bucket, Kaltura stand-in and settings."""

    def __init__(
        self, devstack: StackProcess, kaltura: StandIn, s3: Any, sqs: Any, tmp: Path
    ) -> None:
        self.devstack = devstack
        self.kaltura = kaltura
        self.raw_s3 = s3
        self.sqs = sqs
        self.tmp = tmp
        n = next(_serial)
        stamp = int(time.time())
        self.bucket = f"archive-w{n}-{stamp}"
        self.queue_name = f"archive-w{n}-{stamp}"
        self.queue_url = ""
        self.dlq_url = ""

    async def create(self) -> None:
        await self.raw_s3.create_bucket(
            Bucket=self.bucket,
            CreateBucketConfiguration={"LocationConstraint": self.devstack.state["region"]},
        )
        self.dlq_url = (await self.sqs.create_queue(QueueName=f"{self.queue_name}-dlq"))["QueueUrl"]
        arn = (
            await self.sqs.get_queue_attributes(QueueUrl=self.dlq_url, AttributeNames=["QueueArn"])
        )["Attributes"]["QueueArn"]
        redrive = {"deadLetterTargetArn": arn, "maxReceiveCount": "3"}
        self.queue_url = (
            await self.sqs.create_queue(
                QueueName=self.queue_name, Attributes={"RedrivePolicy": json.dumps(redrive)}
            )
        )["QueueUrl"]

    def settings(self, **workers: dict[str, Any]) -> Settings:
        state = self.devstack.state
        placeholder = self.tmp / "placeholder.mp4"
        placeholder.write_bytes(PLACEHOLDER)
        doc: dict[str, Any] = {
            "aws": {
                "region": state["region"],
                "endpointUrl": state["s3_endpoint"],
                "accessKeyId": state["aws_access_key_id"],
                "secretAccessKey": state["aws_secret_access_key"],
            },
            "queues": {"archive": self.queue_url, "archive-dlq": self.dlq_url},
            "kaltura": {
                "serviceUrl": self.kaltura.url,
                "partnerId": self.kaltura.state["kaltura_partner_id"],
                "adminSecret": self.kaltura.state["kaltura_admin_secret"],
            },
            "archive": {
                "bucket": self.bucket,
                "placeholderVideo": str(placeholder),
                "partSize": "5MiB",
                "readyPoll": 0.05,
                "readyTimeout": 20,
            },
            "leases": {"bucket": self.bucket, "ttl": 10},
            "workers": {
                "FileTransferer": {"enabled": False},
                "DracoonGlobalSharer": {"count": 0},
                "ArchiveActions": {
                    "enabled": True,
                    "count": 2,
                    "waitTimeSeconds": 1,
                    "visibilityTimeout": 30,
                },
                **workers,
            },
        }
        return Settings.model_validate(doc)

    async def reports(self) -> list[tuple[str, list[dict[str, str]]]]:
        """Every report object under log/ with its rows, in key order."""
        found = []
        listing = await self.raw_s3.list_objects_v2(Bucket=self.bucket, Prefix="log/")
        for item in sorted(listing.get("Contents", []), key=lambda o: o["Key"]):
            body = await (await self.raw_s3.get_object(Bucket=self.bucket, Key=item["Key"]))[
                "Body"
            ].read()
            rows = list(csv.DictReader(io.StringIO(body.decode()), delimiter="\t"))
            found.append((item["Key"], rows))
        return found

    async def dead_letters(self) -> list[dict[str, Any]]:
        answer = await self.sqs.receive_message(
            QueueUrl=self.dlq_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            MessageAttributeNames=["All"],
        )
        return list(answer.get("Messages", []))


@pytest.fixture
async def env(devstack: StackProcess, tmp_path: Path) -> AsyncIterator[Env]:
    aws = aws_settings_from_state(devstack.state)
    async with (
        stand_in(tmp_path / "kaltura") as kaltura,
        aws_client(aws, "s3") as s3,
        aws_client(aws, "sqs") as sqs,
    ):
        environment = Env(devstack, kaltura, s3, sqs, tmp_path)
        await environment.create()
        yield environment


async def run_until(
    workers: list[Any], done: Callable[[], Awaitable[bool]], patience: float
) -> float:
    """Run the workers until ``done()`` holds (checked every 0.2 s), then stop them all."""
    stop = asyncio.Event()
    tasks = [asyncio.create_task(w.run(stop), name=w.name) for w in workers]
    started = time.monotonic()
    try:
        while not await done():
            for task in tasks:
                if task.done():
                    task.result()  # a crashed worker fails the test with its own error
            if time.monotonic() - started > patience:
                raise AssertionError(f"not done after {patience} s")
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
    return time.monotonic() - started


def outcome_rows(reports: list[tuple[str, list[dict[str, str]]]]) -> list[dict[str, str]]:
    return [row for key, rows in reports if not key.endswith("plan.tsv") for row in rows]


async def test_two_daemons_plan_once_per_period_and_share_the_work(env: Env) -> None:
    ids = [f"0_twod{i:02d}" for i in range(10)]
    contents = {i: video(MiB + n) for n, i in enumerate(ids)}
    fresh = entry("0_twodnew", video(1000), createdAt=int(time.time()) - 86400, lastPlayedAt=None)
    await env.kaltura.seed([*(entry(i, contents[i]) for i in ids), fresh])
    settings = env.settings(Archiver={"enabled": True, "apply": True, "unplayedFor": 1})
    # A period ends when the test moves the planners' clock: once the first period's 20
    # actions are done, so that later plans must find nothing left however slow the machine.
    clock = ManualClock(start=time.time())
    interval = 60.0
    daemons = [
        [
            Archiver(settings, interval=interval, clock=clock),
            ArchiveActions(settings, report_age=0.3),
        ]
        for _ in range(2)
    ]
    planners = [d[0] for d in daemons]
    periods = 1

    def runs() -> int:
        return sum(p.periodic.runs for p in planners if p.periodic is not None)

    async def all_replaced_and_three_periods() -> bool:
        nonlocal periods
        state = await env.kaltura.snapshot()
        tagged = {e["id"]: tags_of(e) for e in state["entries"] if e["id"] in ids}
        if not all("flavors_deleted" in t for t in tagged.values()):
            return False
        if runs() == periods < 3:  # this period planned: end it
            clock.advance(interval)
            periods += 1
        return runs() == 3

    await run_until([w for d in daemons for w in d], all_replaced_and_three_periods, patience=90)
    await asyncio.sleep(0)

    assert runs() == periods == 3  # once per period, not once per replica
    reports = await env.reports()
    plans = [(key, rows) for key, rows in reports if key.endswith("plan.tsv")]
    assert len(plans) == runs()
    assert all(
        key.startswith(f"log/{time.strftime('%Y/%m', time.gmtime())}/") for key, _ in reports
    )
    first_plan = {r["action"]: int(r["planned"]) for r in plans[0][1]}
    assert first_plan == {S3COPY: len(ids), REPLACE_VIDEO: 0}
    for _, rows in plans[1:]:
        assert {int(r["planned"]) for r in rows} == {0}

    rows = outcome_rows(reports)
    done = Counter((r["entry_id"], r["action"]) for r in rows if r["outcome"] == "DONE")
    assert done == Counter({(i, a): 1 for i in ids for a in (S3COPY, REPLACE_VIDEO)})
    assert {r["outcome"] for r in rows} <= {"DONE", "DONE_BEFORE"}
    assert "0_twodnew" not in {r["entry_id"] for r in rows}  # played recently enough: kept
    pools = [d[1] for d in daemons]
    assert all(sum(p.outcomes.values()) > 0 for p in pools), [p.outcomes for p in pools]
    holders = {key.rsplit("/", 1)[1].rsplit("-", 1)[0] for key, _ in reports if "plan" not in key}
    assert len(holders) == 2  # both replicas reported their share

    async with aiohttp.ClientSession() as http:
        client = KalturaClient(env.kaltura.settings(), http, FAST)
        for i in ids[:3]:
            assert await original_bytes(client, i) == PLACEHOLDER
            stored = await env.raw_s3.head_object(Bucket=env.bucket, Key=i)
            assert stored["ContentLength"] == len(contents[i])
            assert stored["StorageClass"] == "GLACIER"


async def test_restorer_requests_glacier_then_puts_the_original_back(env: Env) -> None:
    ids = ["0_rest01", "0_rest02", "0_rest03"]
    contents = {i: video(MiB + 7 * n) for n, i in enumerate(ids)}
    await env.kaltura.seed([entry(i, contents[i]) for i in ids])
    settings = env.settings(Restorer={"enabled": True, "apply": True, "playedWithin": 1})
    async with aiohttp.ClientSession() as http, aws_client(settings.aws, "s3") as raw:
        client = KalturaClient(env.kaltura.settings(), http, FAST)
        archivist = Archivist(client, S3Store(raw, FAST), rules_from(settings))
        for i in ids:
            for action in (S3COPY, REPLACE_VIDEO):
                assert (await archivist.run(action, i, apply=True)).outcome.value == "DONE"
        for i in ids[:2]:
            await env.kaltura.play(i)

        daemon = [Restorer(settings, interval=1.5), ArchiveActions(settings, report_age=0.3)]

        async def restored() -> bool:
            state = await env.kaltura.snapshot()
            tags = {e["id"]: tags_of(e) for e in state["entries"] if e["id"] in ids[:2]}
            return all("flavors_deleted" not in t for t in tags.values())

        await run_until(daemon, restored, patience=60)
        for i in ids[:2]:
            assert await original_bytes(client, i) == contents[i]
        assert await original_bytes(client, ids[2]) == PLACEHOLDER  # not played: stays

    rows = outcome_rows(await env.reports())
    for i in ids[:2]:
        mine = [r["outcome"] for r in rows if r["entry_id"] == i]
        assert mine[0] == "WAIT_GLACIER"
        assert mine[-1] == "DONE"
        assert mine.count("DONE") == 1
    assert ids[2] not in {r["entry_id"] for r in rows}


async def test_a_dry_run_daemon_reports_and_changes_nothing(env: Env) -> None:
    ids = ["0_drywk01", "0_drywk02"]
    await env.kaltura.seed([entry(i, video(MiB)) for i in ids])
    settings = env.settings(Archiver={"enabled": True, "unplayedFor": 1})
    before = await env.kaltura.snapshot()
    copies_before = await bucket_snapshot(env.raw_s3, env.bucket)

    async def reported() -> bool:
        rows = outcome_rows(await env.reports())
        return {r["entry_id"] for r in rows} >= set(ids)

    await run_until(
        [Archiver(settings, interval=60), ArchiveActions(settings, report_age=0.2)],
        reported,
        patience=30,
    )
    rows = outcome_rows(await env.reports())
    assert {(r["entry_id"], r["outcome"], r["mode"]) for r in rows} == {
        (i, "WOULD_DO", "dry-run") for i in ids
    }
    assert await env.kaltura.snapshot() == before
    after = await bucket_snapshot(env.raw_s3, env.bucket)
    assert {k: v for k, v in after.items() if not k.startswith(("log/", "recstore/"))} == {
        k: v for k, v in copies_before.items() if not k.startswith(("log/", "recstore/"))
    }


async def test_bad_messages_and_permanent_failures_go_to_the_dead_letter_queue(env: Env) -> None:
    await env.kaltura.seed([entry("0_dlqlost", video(100), tags="flavors_deleted,archived_to_s3")])
    settings = env.settings()
    await env.sqs.send_message(QueueUrl=env.queue_url, MessageBody="not json")
    job = {
        "version": 1,
        "run": "restore-test",
        "action": "restore",
        "entryId": "0_dlqlost",
        "apply": True,
        "report": "log/2026/01/restore-test/",
    }
    await env.sqs.send_message(QueueUrl=env.queue_url, MessageBody=json.dumps(job))
    pool = ArchiveActions(settings, report_age=0.2)
    dead: list[dict[str, Any]] = []

    async def both_dead() -> bool:
        dead.extend(await env.dead_letters())
        return len(dead) >= 2

    await run_until([pool], both_dead, patience=30)
    reasons = sorted(m["MessageAttributes"]["reason"]["StringValue"] for m in dead)
    assert "not JSON" in reasons[0]
    assert "no S3 copy" in reasons[1]
    assert pool.outcomes["FAILED"] == 1


async def test_a_duplicate_delivered_while_the_first_runs_is_not_done_twice(env: Env) -> None:
    """SQS may deliver a message twice; the entry lock makes the second one wait (handed back
    for the lock's TTL), and then it finds the work done."""
    await env.kaltura.seed([entry("0_dupe", video(2 * MiB))])
    async with aiohttp.ClientSession() as admin:  # slow downloads: the two copies overlap
        answer = await admin.post(
            f"{env.kaltura.url}/_devstack/faults",
            json={"latency_ms": 1500, "path_pattern": "/download/"},
        )
        assert answer.status == 200
    job = {
        "version": 1,
        "run": "dupe-test",
        "action": S3COPY,
        "entryId": "0_dupe",
        "apply": True,
        "report": "log/2026/01/dupe-test/",
    }
    for _ in range(2):
        await env.sqs.send_message(QueueUrl=env.queue_url, MessageBody=json.dumps(job))
    settings = env.settings()
    pools = [ArchiveActions(settings, report_age=0.2) for _ in range(2)]

    async def all_reported() -> bool:
        return len(outcome_rows(await env.reports())) >= 3

    await run_until(pools, all_reported, patience=60)
    rows = outcome_rows(await env.reports())
    outcomes = Counter(r["outcome"] for r in rows)
    assert outcomes == Counter({"DONE": 1, "FAILED": 1, "DONE_BEFORE": 1}), rows
    [busy] = [r for r in rows if r["outcome"] == "FAILED"]
    assert "s3copy is running on another worker; tried again in 10 s" in busy["reason"]
    locks = await env.raw_s3.list_objects_v2(Bucket=env.bucket, Prefix="recstore/leases/entries/")
    assert locks.get("KeyCount", 0) == 0  # released: nothing lingers per entry


async def test_an_entry_whose_worker_died_holding_its_lock_is_done_once_the_lock_runs_out(
    env: Env,
) -> None:
    """A worker SIGKILLed mid-s3copy leaves its entry lock until the TTL; its message comes
    back (visibilityTimeout) to a worker that finds the lock held. That worker must not stand
    back for good: the entry would stay unarchived until the next planned run, a day later
    (found by the archive chaos run, tests/test_chaos.py)."""
    await env.kaltura.seed([entry("0_orphan", video(MiB))])
    settings = env.settings()
    async with aws_client(settings.aws, "s3") as raw:
        dead = Lease(
            S3Store(raw, FAST),
            env.bucket,
            f"{settings.leases.prefix}entries/0_orphan.json",
            S3COPY,
            settings.leases.ttl,
            quiet=True,
        )
        assert await dead.acquire()  # and then it dies: no renewal, no removal
    job = {
        "version": 1,
        "run": "orphan-test",
        "action": S3COPY,
        "entryId": "0_orphan",
        "apply": True,
        "report": "log/2026/01/orphan-test/",
        "then": REPLACE_VIDEO,
    }
    await env.sqs.send_message(QueueUrl=env.queue_url, MessageBody=json.dumps(job))

    async def archived() -> bool:
        state = await env.kaltura.snapshot()
        [found] = [e for e in state["entries"] if e["id"] == "0_orphan"]
        return "flavors_deleted" in tags_of(found)

    await run_until([ArchiveActions(settings, report_age=0.2)], archived, patience=45)
    rows = [(r["action"], r["outcome"]) for r in outcome_rows(await env.reports())]
    assert rows == [(S3COPY, "FAILED"), (S3COPY, "DONE"), (REPLACE_VIDEO, "DONE")], rows


@contextlib.asynccontextmanager
async def report_sink(
    devstack: StackProcess,
) -> AsyncIterator[tuple[ReportSink, Any, str, Callable[[dict[str, Any]], Awaitable[None]]]]:
    """A report sink with two rows, writing through the S3 fault proxy; with the raw client,
    the bucket and a setter of the proxy's faults (cleared at the end)."""
    proxy = devstack.state["s3_proxy_url"]
    settings = aws_settings_from_state(devstack.through_s3_proxy())
    bucket = f"reports-{next(_serial)}-{int(time.time())}"
    async with aws_client(settings, "s3") as raw, aiohttp.ClientSession() as admin:
        await raw.create_bucket(
            Bucket=bucket,
            CreateBucketConfiguration={"LocationConstraint": devstack.state["region"]},
        )
        sink = ReportSink(S3Store(raw, FAST), bucket, holder="test")
        for entry_id in ("0_a", "0_b"):
            sink.add("log/2026/12/restore-1/", {"entry_id": entry_id, "outcome": "DONE"})

        async def set_faults(faults: dict[str, Any]) -> None:
            async with admin.post(f"{proxy}/_devstack/faults", json=faults) as answer:
                assert answer.status == 200

        try:
            yield sink, raw, bucket, set_faults
        finally:
            await set_faults({})


async def report_rows(raw: Any, bucket: str) -> list[tuple[str, str]]:
    """Every row of every report part written, in order."""
    listing = await raw.list_objects_v2(Bucket=bucket, Prefix="log/")
    rows = []
    for item in listing.get("Contents", []):
        body = await (await raw.get_object(Bucket=bucket, Key=item["Key"]))["Body"].read()
        for row in csv.DictReader(io.StringIO(body.decode()), delimiter="\t"):
            rows.append((row["entry_id"], row["outcome"]))
    return rows


async def test_report_rows_survive_a_flush_cancelled_at_stop(devstack: StackProcess) -> None:
    """The worker stops while a periodic flush is writing: its rows go out with the final one
    (they were lost, and a run's report lacked its last outcomes)."""
    async with report_sink(devstack) as (sink, raw, bucket, faults):
        await faults({"latency_ms": 3000, "methods": ["PUT"]})
        writing = asyncio.create_task(sink.flush())
        await asyncio.sleep(0.5)  # the part's PUT is on its way
        writing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await writing
        assert sink.pending == 2
        await faults({})
        await sink.flush()  # the final flush, at stop
        assert (await report_rows(raw, bucket))[-2:] == [("0_a", "DONE"), ("0_b", "DONE")]


async def test_report_rows_that_cannot_be_written_wait_for_the_next_flush(
    devstack: StackProcess,
) -> None:
    async with report_sink(devstack) as (sink, raw, bucket, faults):
        await faults({"error_rate": 1, "error_status": 503, "methods": ["PUT"]})
        await sink.flush()  # S3 refuses every attempt
        assert sink.pending == 2
        await faults({})
        await sink.flush()
        assert sink.pending == 0
        assert await report_rows(raw, bucket) == [("0_a", "DONE"), ("0_b", "DONE")]
