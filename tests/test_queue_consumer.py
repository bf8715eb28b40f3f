"""The shared SQS job loop against moto: delete, dead-letter, retry delay, heartbeat, hand-back."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import pytest

from recstore.clients.aws import aws_client
from recstore.clients.sqs import Message, SqsQueue
from recstore.common.errors import PermanentJobError, RemoteError
from recstore.common.retry import RetryPolicy
from recstore.devstack.seed import aws_settings_from_state
from recstore.settings.workers import WorkersSettings
from recstore.workers.base import WorkerHealth
from recstore.workers.queue_consumer import ConsumerSettings, QueueConsumer, retry_delay
from tests.conftest import ManualClock, StackProcess

pytestmark = pytest.mark.long  # tens of seconds: xdist starts it early

FAST = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02)
_names = itertools.count()


class Queues:
    def __init__(self, client: Any, work: SqsQueue, dead: SqsQueue) -> None:
        self.client, self.work, self.dead = client, work, dead


@pytest.fixture
async def queues(devstack: StackProcess) -> AsyncIterator[Queues]:
    async with aws_client(aws_settings_from_state(devstack.state), "sqs") as client:
        n = next(_names)
        work = await client.create_queue(QueueName=f"consumer-work-{n}")
        dead = await client.create_queue(QueueName=f"consumer-dead-{n}")
        yield Queues(
            client,
            SqsQueue(client, work["QueueUrl"], FAST),
            SqsQueue(client, dead["QueueUrl"], FAST),
        )


def consumer(
    queues: Queues,
    handler: Callable[[Message], Awaitable[None]],
    *,
    name: str = "test",
    work: SqsQueue | None = None,
    dead: SqsQueue | None = None,
    health: WorkerHealth | None = None,
    decode: Callable[[Message], Message] = lambda message: message,
    job_id: Callable[[Message], str] | None = None,
    scope: Callable[[Message], str] | None = None,
    probe: Callable[[str, str], Awaitable[bool]] | None = None,
    **settings: Any,
) -> QueueConsumer[Message]:
    """A consumer of the test's queues (or of ``work``/``dead`` given instead), whose jobs
    are the messages themselves unless ``decode`` refuses one."""
    values: dict[str, Any] = {"concurrency": 2, "visibility_timeout": 30, "wait_seconds": 1}
    values.update(settings)

    async def handle(job: Message, message: Message) -> None:
        await handler(message)

    return QueueConsumer(
        name,
        work or queues.work,
        dead or queues.dead,
        decode,
        handle,
        ConsumerSettings(**values),
        health or WorkerHealth(),
        job_id=job_id,
        scope=scope,
        probe=probe,
    )


async def run_until(
    worker: QueueConsumer[Any], done: Callable[[], bool], patience: float = 20
) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        async with asyncio.timeout(patience):
            while not done():
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


@contextlib.asynccontextmanager
async def running(worker: QueueConsumer[Any]) -> AsyncIterator[None]:
    """The worker's loop for the length of a block."""
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


#: A failed message is back after 1 s; a remote's failure lapses 3 s after the last one.
QUICK_RETRY = {"retry_delay_base": 1, "retry_delay_max": 1, "visibility_timeout": 2}


async def test_done_jobs_are_deleted(queues: Queues) -> None:
    seen: list[str] = []

    async def handler(message: Message) -> None:
        seen.append(message.body)

    for i in range(5):
        await queues.work.send(f"job {i}")
    await run_until(consumer(queues, handler), lambda: len(seen) == 5)
    assert sorted(seen) == [f"job {i}" for i in range(5)]
    assert await queues.work.depth() == (0, 0)


async def test_permanent_failures_go_to_the_dlq_with_their_reason(queues: Queues) -> None:
    async def handler(message: Message) -> None:
        if message.body == "bad":
            raise PermanentJobError("storage.type: 'ftp' is not a known storage")

    await queues.work.send("bad")
    await queues.work.send("good")
    dead: list[Message] = []

    async def poll_dead() -> None:
        dead.extend(await queues.dead.receive(10, wait_seconds=0))

    worker = consumer(queues, handler)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    async with asyncio.timeout(20):
        while not dead:
            await poll_dead()
            await asyncio.sleep(0.1)
        while (await queues.work.depth()) != (0, 0):
            await asyncio.sleep(0.1)
    stop.set()
    await task
    assert [m.body for m in dead] == ["bad"]
    assert dead[0].attributes["reason"] == "storage.type: 'ftp' is not a known storage"
    assert dead[0].attributes["worker"] == "test"


class Watching(SqsQueue):
    """The dead-letter queue, noting what the consumer was running when a message came."""

    def __init__(self, client: Any, url: str) -> None:
        super().__init__(client, url, FAST)
        self.worker: QueueConsumer[Any] | None = None
        self.running_then: list[list[str]] = []

    async def send(self, body: str, attributes: Mapping[str, str] | None = None) -> str:
        assert self.worker is not None
        self.running_then.append(sorted(self.worker.job_ids.values()))
        return await super().send(body, attributes)


async def test_a_message_that_does_not_decode_is_dead_lettered_without_taking_a_slot(
    queues: Queues,
) -> None:
    """It is decoded as it arrives and never reaches the handler or the status page's jobs;
    a pool of two with one job running still takes a valid job beside it afterwards."""
    release = asyncio.Event()
    handled: list[str] = []

    def decode(message: Message) -> Message:
        if message.body == "malformed":
            raise PermanentJobError("the message is not JSON")
        return message

    async def handler(message: Message) -> None:
        handled.append(message.body)
        await release.wait()

    dead = Watching(queues.client, queues.dead.url)
    worker = dead.worker = consumer(
        queues, handler, dead=dead, decode=decode, job_id=lambda m: m.body, concurrency=2
    )
    dead_lettered: list[Message] = []
    async with running(worker):
        await queues.work.send("first")
        async with asyncio.timeout(20):
            while handled != ["first"]:
                await asyncio.sleep(0.05)
            await queues.work.send("malformed")
            while not dead_lettered:
                dead_lettered += await queues.dead.receive(10, wait_seconds=0)
            await queues.work.send("second")
            while handled != ["first", "second"]:
                await asyncio.sleep(0.05)
        release.set()
    assert [m.body for m in dead_lettered] == ["malformed"]
    assert dead_lettered[0].attributes["reason"] == "the message is not JSON"
    assert dead.running_then == [["first"]]  # no slot, no job id for it
    assert await queues.work.depth() == (0, 0)


async def test_a_decoder_fault_of_ours_hands_the_message_back_as_a_failed_job(
    queues: Queues,
) -> None:
    """Only PermanentJobError says the message is malformed: any other failure of the decoder
    is retried with the usual delay, and the worker keeps running."""
    attempts: list[int] = []
    handled: list[Message] = []

    def decode(message: Message) -> Message:
        attempts.append(message.receive_count)
        if len(attempts) == 1:
            raise RuntimeError("a bug in the decoder")
        return message

    async def handler(message: Message) -> None:
        handled.append(message)

    await queues.work.send("job")
    worker = consumer(queues, handler, decode=decode, **QUICK_RETRY)
    await run_until(worker, lambda: bool(handled))
    assert attempts == [1, 2]
    assert await queues.dead.depth() == (0, 0)


async def test_failed_jobs_come_back_after_a_delay(queues: Queues) -> None:
    attempts: list[int] = []

    async def handler(message: Message) -> None:
        attempts.append(message.receive_count)
        if len(attempts) == 1:
            raise RemoteError("DRACOON answered 503", remote="dracoon", status=503, transient=True)

    await queues.work.send("flaky")
    await run_until(consumer(queues, handler, retry_delay_base=1), lambda: len(attempts) == 2)
    assert attempts == [1, 2]
    assert await queues.work.depth() == (0, 0)


async def test_jobs_failing_on_a_remote_report_unhealthy_until_one_succeeds(
    queues: Queues,
) -> None:
    clock = ManualClock()  # never moved: no report may lapse here
    health = WorkerHealth(clock=clock)
    attempts: list[str] = []

    async def handler(message: Message) -> None:
        attempts.append(message.body)
        if message.body == "down":
            raise RemoteError("DRACOON login of 'svc' refused", remote="dracoon", status=401)
        if message.body == "bad":
            raise PermanentJobError("meeting.id: missing")

    async with running(consumer(queues, handler, health=health, retry_delay_base=600)):
        await queues.work.send("bad")  # the job's own fault says nothing about the remotes
        async with asyncio.timeout(10):
            while not attempts:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        assert health.healthy
        await queues.work.send("down")
        async with asyncio.timeout(10):
            while health.healthy:
                await asyncio.sleep(0.05)
        assert health.detail == "jobs fail on dracoon: DRACOON login of 'svc' refused"
        await clock.looked_again(times=2)  # two more polls of SQS succeed: not the jobs' remote
        assert not health.healthy
        await queues.work.send("up")
        async with asyncio.timeout(10):
            while not health.healthy:
                await asyncio.sleep(0.05)
        assert attempts == ["bad", "down", "up"]


async def test_a_remote_failure_of_one_scope_is_not_cleared_by_another(queues: Queues) -> None:
    """One instance's account refused while the others work: steady red, not a flicker."""
    health = WorkerHealth()
    refused = {"b.example.org"}
    done: list[str] = []

    async def handler(message: Message) -> None:
        instance = message.body.split("/")[0]
        if instance in refused:
            raise RemoteError(f"DRACOON login for {instance} refused", remote="dracoon", status=401)
        done.append(message.body)

    worker = consumer(
        queues,
        handler,
        health=health,
        job_id=lambda m: m.body,  # <instance>/<meeting>, as the FileTransferer's
        scope=lambda m: m.body.split("/")[0],
        **QUICK_RETRY,
    )
    async with running(worker):
        await queues.work.send("b.example.org/1")
        async with asyncio.timeout(10):
            while health.healthy:
                await asyncio.sleep(0.05)
        await queues.work.send("a.example.org/2")
        async with asyncio.timeout(10):
            while not done:
                await asyncio.sleep(0.05)
        assert not health.healthy  # a.example.org's success says nothing of b's account
        assert health.detail == (
            "jobs of b.example.org fail on dracoon: DRACOON login for b.example.org refused"
        )
        refused.clear()  # the password is mended; b's job comes back and goes through
        async with asyncio.timeout(10):
            while not health.healthy:
                await asyncio.sleep(0.05)
        assert sorted(done) == ["a.example.org/2", "b.example.org/1"]


async def redrive_after_one_receive(queues: Queues) -> None:
    """Give the work queue a redrive policy that moves a message received once to the DLQ."""
    arn = (
        await queues.client.get_queue_attributes(
            QueueUrl=queues.dead.url, AttributeNames=["QueueArn"]
        )
    )["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "1"})
    await queues.client.set_queue_attributes(
        QueueUrl=queues.work.url, Attributes={"RedrivePolicy": policy}
    )


async def test_a_remote_failure_no_job_repeats_lapses(queues: Queues) -> None:
    clock = ManualClock()
    health = WorkerHealth(clock=clock)
    attempts: list[int] = []

    async def handler(message: Message) -> None:
        attempts.append(message.receive_count)
        raise RemoteError("S3 answered 503", remote="s3", status=503, transient=True)

    await redrive_after_one_receive(queues)  # the failed message goes where we never see it
    await queues.work.send("once")
    async with running(consumer(queues, handler, health=health, **QUICK_RETRY)):
        async with asyncio.timeout(15):
            while (await queues.dead.depth())[0] == 0:
                await asyncio.sleep(0.1)
        assert attempts == [1]
        assert health.detail == "jobs fail on s3: S3 answered 503"
        # not before the failed message could have come back: the longest delay + a window
        clock.advance(2.9)
        await clock.looked_again()
        assert not health.healthy
        clock.advance(0.2)
        await clock.looked_again()
        assert health.healthy


async def test_a_job_failing_on_its_own_missing_object_leaves_health_green(
    queues: Queues,
) -> None:
    """A recording deleted mid-transfer: S3 answers NoSuchKey, then the retry finds no source
    and fails for good. S3 is up all along."""
    health = WorkerHealth(clock=ManualClock())  # never moved: nothing lapses here
    gone = asyncio.Event()

    async def handler(message: Message) -> None:
        if message.receive_count == 1:
            raise RemoteError("s3 get: NoSuchKey", remote="s3", status=404, code="NoSuchKey")
        gone.set()
        raise PermanentJobError("source s3://recordings/x does not exist")

    seen: list[bool] = []
    await queues.work.send("deleted mid-transfer")
    async with running(consumer(queues, handler, health=health, **QUICK_RETRY)):
        async with asyncio.timeout(15):
            while not gone.is_set():
                seen.append(health.healthy)
                await asyncio.sleep(0.01)
    assert all(seen), health.detail
    assert health.healthy


async def test_a_job_that_fails_for_good_clears_the_remote_failure_it_reported(
    queues: Queues,
) -> None:
    """Its first attempt met S3 down; the next fails for good: the job is gone, and so is
    the report (a remote recovers with its next success; this job will not have one)."""
    health = WorkerHealth(clock=ManualClock())  # never moved: nothing lapses here
    gone = asyncio.Event()

    async def handler(message: Message) -> None:
        if message.receive_count == 1:
            raise RemoteError("S3 answered 503", remote="s3", status=503, transient=True)
        gone.set()
        raise PermanentJobError("source s3://recordings/x does not exist")

    await queues.work.send("once")
    async with running(consumer(queues, handler, health=health, **QUICK_RETRY)):
        async with asyncio.timeout(15):
            while health.healthy:
                await asyncio.sleep(0.02)
        assert health.detail == "jobs fail on s3: S3 answered 503"
        await asyncio.wait_for(gone.wait(), 15)
        async with asyncio.timeout(5):
            while not health.healthy:
                await asyncio.sleep(0.02)


async def test_a_remote_recovers_with_a_probe_while_no_job_retries_it(queues: Queues) -> None:
    """DRACOON was down for an instance's job, whose retry is far off: the remote is asked
    every probe interval, and health turns green once it answers, not 17 minutes later."""
    clock = ManualClock()
    health = WorkerHealth(clock=clock)
    up = False
    probed: list[tuple[str, str]] = []

    async def probe(scope: str, remote: str) -> bool:
        probed.append((scope, remote))
        return up

    async def handler(message: Message) -> None:
        raise RemoteError("DRACOON answered 503", remote="dracoon", status=503, transient=True)

    worker = consumer(
        queues,
        handler,
        health=health,
        job_id=lambda m: m.body,
        scope=lambda m: m.body.split("/")[0],
        probe=probe,
        probe_interval=10,
        retry_delay_base=600,
        retry_delay_max=600,
    )
    await queues.work.send("a.example.org/1")
    async with running(worker):
        async with asyncio.timeout(10):
            while health.healthy:
                await asyncio.sleep(0.02)
        await clock.looked_again(times=2)
        assert probed == []  # not before the interval
        clock.advance(11)
        await until_true(lambda: len(probed) == 1)
        assert probed == [("a.example.org", "dracoon")]
        await clock.looked_again(times=2)
        assert not health.healthy  # it did not answer
        up = True
        clock.advance(11)
        await until_true(lambda: health.healthy)
        assert probed[-1] == ("a.example.org", "dracoon")


async def until_true(condition: Callable[[], bool], patience: float = 15) -> None:
    async with asyncio.timeout(patience):
        while not condition():
            await asyncio.sleep(0.02)


async def test_a_remote_failure_stands_while_its_job_is_tried_again(queues: Queues) -> None:
    """The retry of a job that failed on a remote may outlast the lapse (a remote that hangs
    rather than refuses): the report stands until it ends."""
    clock = ManualClock()
    health = WorkerHealth(clock=clock)
    second_try, release = asyncio.Event(), asyncio.Event()

    async def handler(message: Message) -> None:
        if message.receive_count == 1:
            raise RemoteError("DRACOON answered 503", remote="dracoon", status=503)
        second_try.set()
        await release.wait()  # a retry that hangs past the lapse

    await queues.work.send("slow retry")
    async with running(consumer(queues, handler, health=health, **QUICK_RETRY)):
        await asyncio.wait_for(second_try.wait(), 15)
        clock.advance(10)  # far past the lapse (1 s delay + 2 s window)
        await clock.looked_again(times=2)  # polls in between
        assert not health.healthy
        release.set()
        async with asyncio.timeout(10):
            while not health.healthy:  # the retry succeeded
                await asyncio.sleep(0.05)


async def test_a_remote_failure_outlives_a_restart_of_the_worker(queues: Queues) -> None:
    health = WorkerHealth()  # the worker's, kept when the supervisor restarts its loop

    async def failing(message: Message) -> None:
        raise RemoteError("S3 answered 503", remote="s3", status=503, transient=True)

    await queues.work.send("job")
    await run_until(consumer(queues, failing, health=health), lambda: not health.healthy)
    async with running(consumer(queues, failing, health=health, wait_seconds=0)):
        await asyncio.sleep(1)  # many polls of SQS
    assert health.detail == "jobs fail on s3: S3 answered 503"


async def test_heartbeat_keeps_a_long_job_hidden(queues: Queues) -> None:
    starts: list[str] = []

    async def slow(message: Message) -> None:
        starts.append(message.message_id)
        await asyncio.sleep(4.5)  # longer than the 2 s visibility window

    await queues.work.send("long")
    worker = consumer(queues, slow, visibility_timeout=2)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await asyncio.sleep(5.5)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert len(starts) == 1  # never received twice while it ran
    assert await queues.work.depth() == (0, 0)


async def test_cancellation_hands_jobs_back_at_once(queues: Queues) -> None:
    started = asyncio.Event()

    async def forever(message: Message) -> None:
        started.set()
        await asyncio.sleep(3600)

    await queues.work.send("interrupted")
    worker = consumer(queues, forever, visibility_timeout=600)
    task = asyncio.create_task(worker.run(asyncio.Event()))
    await asyncio.wait_for(started.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [back] = await queues.work.receive(10, wait_seconds=1)  # visible again right away
    assert back.body == "interrupted"
    assert back.receive_count == 2


async def test_never_more_jobs_than_slots(queues: Queues) -> None:
    running = 0
    peak = 0
    finished = 0

    async def handler(message: Message) -> None:
        nonlocal running, peak, finished
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.3)
        running -= 1
        finished += 1

    for i in range(7):
        await queues.work.send(str(i))
    await run_until(consumer(queues, handler, concurrency=3), lambda: finished == 7)
    assert peak == 3


async def test_unreachable_sqs_reports_unhealthy(devstack: StackProcess) -> None:
    from pydantic import SecretStr

    from recstore.settings import AwsSettings

    dead = AwsSettings(
        endpoint_url="http://127.0.0.1:9", access_key_id="x", secret_access_key=SecretStr("y")
    )
    async with aws_client(dead, "sqs") as client:
        queue = SqsQueue(client, "http://127.0.0.1:9/123456789012/none", FAST)
        health = WorkerHealth()

        async def never(job: Message, message: Message) -> None:
            raise AssertionError("no message can arrive")

        worker = QueueConsumer(
            "test",
            queue,
            queue,
            lambda message: message,
            never,
            ConsumerSettings(concurrency=1, poll_backoff_initial=0.05),
            health,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        async with asyncio.timeout(10):
            while health.healthy:
                await asyncio.sleep(0.02)
        assert "SQS unreachable" in health.detail
        stop.set()
        await asyncio.wait_for(task, 5)


async def test_the_poll_loop_recovers_when_sqs_comes_back(
    devstack: StackProcess, queues: Queues
) -> None:
    import aiohttp

    proxy = devstack.state["s3_proxy_url"]  # passes SQS through too, and drops on demand

    async def faults(plan: dict[str, Any]) -> None:
        async with aiohttp.ClientSession() as session:
            await session.post(f"{proxy}/_devstack/faults", json=plan)

    via_proxy = aws_settings_from_state(devstack.state).model_copy(
        update={"sqs_endpoint_url": proxy}
    )
    await faults({"drop_rate": 1})
    handled: list[str] = []

    async def handler(message: Message) -> None:
        handled.append(message.body)

    try:
        async with aws_client(via_proxy, "sqs") as client:
            health = WorkerHealth()
            worker = consumer(
                queues,
                handler,
                work=SqsQueue(client, queues.work.url, FAST),
                dead=SqsQueue(client, queues.dead.url, FAST),
                health=health,
                concurrency=1,
                poll_backoff_initial=0.05,
                poll_backoff_max=0.5,
            )
            stop = asyncio.Event()
            task = asyncio.create_task(worker.run(stop))
            async with asyncio.timeout(20):
                while health.healthy:
                    await asyncio.sleep(0.02)
                await faults({})
                await queues.work.send("after the outage")
                while not (handled and health.healthy):
                    await asyncio.sleep(0.05)
            stop.set()
            await asyncio.wait_for(task, 10)
    finally:
        await faults({})
    assert handled == ["after the outage"]
    assert await queues.work.depth() == (0, 0)


async def test_a_message_the_dlq_did_not_take_is_not_counted_as_moved(queues: Queues) -> None:
    from prometheus_client import REGISTRY

    async def handler(message: Message) -> None:
        raise PermanentJobError("storage.type: 'ftp' is not a known storage")

    name = f"dlq-down-{next(_names)}"
    missing = SqsQueue(queues.client, queues.dead.url + "-gone", FAST)  # SQS refuses sends
    worker = consumer(queues, handler, name=name, dead=missing, concurrency=1)

    def jobs(outcome: str) -> float | None:
        return REGISTRY.get_sample_value(
            "recstore_jobs_total", {"worker": name, "outcome": outcome}
        )

    await queues.work.send("bad")
    await run_until(worker, lambda: jobs("retried") == 1)
    assert jobs("dead_lettered") == 0
    assert await queues.work.depth() == (0, 1)  # still in the work queue: it comes back


class _DeleteRefused(SqsQueue):
    """The work queue while SQS fails deletes only (an outage that starts as a job ends)."""

    async def delete(self, message: Message) -> None:
        raise RemoteError("sqs delete: connection refused", remote="sqs", transient=True)


async def test_a_done_job_whose_delete_failed_is_not_counted_as_deleted(
    queues: Queues, caplog: pytest.LogCaptureFixture
) -> None:
    from prometheus_client import REGISTRY

    caplog.set_level(logging.INFO, logger="recstore.workers.queue_consumer")
    done: list[str] = []

    async def handler(message: Message) -> None:
        done.append(message.body)

    name = f"delete-down-{next(_names)}"
    refusing = _DeleteRefused(queues.client, queues.work.url, FAST)
    worker = consumer(queues, handler, name=name, work=refusing, concurrency=1)
    label = {"queue": queues.work.url.rsplit("/", 1)[1]}

    def sample(metric: str, labels: dict[str, str]) -> float:
        return REGISTRY.get_sample_value(metric, labels) or 0.0

    deleted_before = sample("recstore_sqs_deleted_messages_total", label)
    await queues.work.send("finished, then SQS went down")
    await run_until(
        worker,
        lambda: sample("recstore_jobs_total", {"worker": name, "outcome": "done_undeleted"}) == 1,
    )
    assert done == ["finished, then SQS went down"]
    assert sample("recstore_jobs_total", {"worker": name, "outcome": "done"}) == 0
    assert sample("recstore_sqs_deleted_messages_total", label) == deleted_before
    assert "job done but its message could not be deleted" in caplog.text
    assert "job done" not in [record.getMessage() for record in caplog.records]
    assert await queues.work.depth() == (0, 1)  # still there: it comes back


def test_each_queue_worker_takes_its_retry_delays_from_its_section() -> None:
    """``retryDelay`` / ``retryDelayMax`` of the transfer and archive pools reach their
    consumers (the defaults stay 30 s doubling up to 900 s)."""
    workers = WorkersSettings.model_validate(
        {
            "FileTransferer": {"retryDelay": 2, "retryDelayMax": 5, "count": 3},
            "ArchiveActions": {"retryDelay": 7, "visibilityTimeout": 60},
        }
    )
    transfers = ConsumerSettings.of(workers.file_transferer)
    assert [retry_delay(n, transfers) for n in (1, 2, 3)] == [2, 4, 5]
    assert transfers.concurrency == 3
    archive = ConsumerSettings.of(workers.archive_actions)
    assert (archive.retry_delay_base, archive.retry_delay_max) == (7, 900)
    assert archive.visibility_timeout == 60
    default = ConsumerSettings.of(WorkersSettings().file_transferer)
    assert (default.retry_delay_base, default.retry_delay_max) == (30, 900)


def test_retry_delay_grows_and_is_capped() -> None:
    settings = ConsumerSettings(concurrency=1, retry_delay_base=30, retry_delay_max=900)
    assert [retry_delay(n, settings) for n in (1, 2, 3, 4, 5, 6, 50)] == [
        30,
        60,
        120,
        240,
        480,
        900,
        900,
    ]


async def test_an_idle_consumer_stops_at_once_and_its_abandoned_poll_hides_nothing_long(
    queues: Queues,
) -> None:
    """Stopping cancels the open long poll; SQS still serves it, but what it takes then is
    claimed for ``claim_seconds`` only, not for the visibility window."""

    async def never(message: Message) -> None:
        raise AssertionError("no job may start once stopping")

    worker = consumer(queues, never, wait_seconds=4, visibility_timeout=600, claim_seconds=2)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await asyncio.sleep(0.5)  # the poll is open
    stopped = asyncio.get_running_loop().time()
    stop.set()
    await asyncio.wait_for(task, 10)
    assert asyncio.get_running_loop().time() - stopped < 0.5  # not the poll's 4 s
    await queues.work.send("arrives after the stop")  # the abandoned poll takes it server-side
    await asyncio.sleep(0.5)
    [message] = await queues.work.receive(10, wait_seconds=5)  # back after 2 s, not 600
    assert message.body == "arrives after the stop"


async def test_a_job_handed_back_at_the_end_of_the_grace_is_not_taken_by_our_own_poll(
    queues: Queues,
) -> None:
    """The grace period shorter than the poll's wait: the hand-back happens while the
    abandoned poll is still open at SQS; it may take the message, but only for the claim."""
    started = asyncio.Event()

    async def forever(message: Message) -> None:
        started.set()
        await asyncio.sleep(3600)

    await queues.work.send("interrupted")
    worker = consumer(
        queues, forever, concurrency=2, wait_seconds=10, visibility_timeout=600, claim_seconds=2
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await asyncio.wait_for(started.wait(), 10)
    await asyncio.sleep(0.5)  # the next poll (one free slot) is open
    stop.set()
    await asyncio.sleep(0.5)  # the grace period
    task.cancel()  # as the supervisor does when it ends: the job is handed back
    with pytest.raises(asyncio.CancelledError):
        await task
    # SQS gives a visible message to an open poll at once; moto's poll looks again each second
    await asyncio.sleep(1.5)
    [back] = await queues.work.receive(10, wait_seconds=6)  # by another consumer, in seconds
    assert back.body == "interrupted"


async def test_what_a_poll_brings_is_extended_to_the_window_before_its_claim_ends(
    queues: Queues,
) -> None:
    """The short claim of a poll never lets a running job's message go to another consumer."""
    starts: list[str] = []

    async def slow(message: Message) -> None:
        starts.append(message.message_id)
        await asyncio.sleep(3)  # past the 1 s claim, well inside the 30 s window

    await queues.work.send("long")
    async with running(consumer(queues, slow, claim_seconds=1, visibility_timeout=30)):
        async with asyncio.timeout(10):
            while not starts:
                await asyncio.sleep(0.05)
        assert await queues.work.receive(10, wait_seconds=3) == []  # another consumer's poll
    assert len(starts) == 1


def test_the_receive_backoff_is_short_by_default() -> None:
    """After an SQS outage the next poll comes within seconds of SQS being back."""
    assert ConsumerSettings(concurrency=1).poll_backoff_max <= 5


async def test_the_file_transferers_probe_asks_the_instances_dracoon_account(
    devstack: StackProcess,
) -> None:
    from recstore.devstack.appconfig import DEMO_INSTANCE, app_config
    from recstore.settings import Settings
    from recstore.workers.file_transferer import TransferService
    from tests.dracoon_helpers import admin

    state = devstack.state
    settings = Settings.model_validate(app_config(state, http_port=0))
    async with TransferService(settings) as service:
        assert await service.probe(DEMO_INSTANCE, "dracoon")
        assert not await service.probe(DEMO_INSTANCE, "s3")  # no job yet: no bucket to ask
        down = {"error_rate": 1, "error_status": [401], "path_pattern": "^/api/v4/user/account$"}
        await admin(state, "faults", down)
        try:
            with pytest.raises(RemoteError):
                await service.probe(DEMO_INSTANCE, "dracoon")
        finally:
            await admin(state, "faults", {})
        assert await service.probe(DEMO_INSTANCE, "dracoon")


async def test_the_file_transferers_probe_heads_the_latest_jobs_source(
    devstack: StackProcess,
) -> None:
    """Jobs of an instance failed on S3: the probe asks S3 about the object they read, so
    health recovers once S3 answers, not only with the next job's success. A refusal is an
    answer (the pool may not list its sources, and a deleted source reads as 403)."""
    from recstore.devstack.appconfig import DEMO_INSTANCE, app_config
    from recstore.settings import Settings
    from recstore.transfer.job import parse_job
    from recstore.workers.file_transferer import TransferService
    from tests.conftest import set_faults
    from tests.transfer_helpers import job

    proxy = devstack.state["s3_proxy_url"]
    settings = Settings.model_validate(app_config(devstack.through_s3_proxy(), http_port=0))
    transfer = parse_job(json.dumps(job(DEMO_INSTANCE, ["probe/talk.mp4"])))
    async with TransferService(settings) as service:
        # S3 fails every call (501: final, so no retries slow the test down)
        await set_faults(proxy, {"error_rate": 1, "error_status": 501})
        try:
            with pytest.raises(RemoteError):
                await service.run_job(transfer)
            with pytest.raises(RemoteError):
                await service.probe(DEMO_INSTANCE, "s3")
            await set_faults(proxy, {"error_rate": 1, "error_status": 403})  # it answers
            assert await service.probe(DEMO_INSTANCE, "s3")
        finally:
            await set_faults(proxy, {})
        assert await service.probe(DEMO_INSTANCE, "s3")


async def test_the_file_transferers_probe_asks_the_configurator_afresh(
    devstack: StackProcess,
) -> None:
    """The configurator's answers are cached: the probe fetches the instance again, so a
    configurator that is down is not taken for up, and one that is back is seen at once."""
    import aiohttp

    from recstore.devstack.appconfig import (
        ANY_TYPE_DEMO_TARGET,
        DEMO_INSTANCE,
        app_config,
        instance_document,
    )
    from recstore.settings import Settings
    from recstore.workers.file_transferer import TransferService
    from tests.conftest import set_faults

    state = devstack.state
    configurator = state["configurator_url"]
    domain = f"probe-{next(_names)}-{id(devstack)}.example.org"
    document = {"instances": {domain: instance_document(state, [ANY_TYPE_DEMO_TARGET])}}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{configurator}/_devstack/seed", json=document) as answer,
    ):
        assert answer.status == 200, await answer.text()
    doc = app_config(state, http_port=0)
    doc["configurator"]["cacheTtl"] = "1h"
    async with TransferService(Settings.model_validate(doc)) as service:
        assert service.resolver is not None
        await service.resolver.resolve(domain)  # in the cache now
        await set_faults(configurator, {"error_rate": 1, "error_status": 403})
        try:
            with pytest.raises(RemoteError):
                await service.probe(domain, "configurator")
        finally:
            await set_faults(configurator, {})
        assert await service.probe(domain, "configurator")
        assert not await service.probe(DEMO_INSTANCE, "configurator")  # configured locally


async def test_a_job_done_within_half_the_claim_costs_no_visibility_change(
    devstack: StackProcess,
) -> None:
    """Short jobs are most jobs: a message whose job ends before its claim needs extending
    is received and deleted, two requests (counted at the dev stack's proxy). Each was
    extended to the window as it came: a third request per job."""
    import aiohttp

    proxy = devstack.state["s3_proxy_url"]
    counted = aws_settings_from_state({**devstack.state, "sqs_endpoint": proxy})

    async def requests() -> dict[str, int]:
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{proxy}/_devstack/requests") as answer,
        ):
            counts: dict[str, int] = await answer.json()
        return {label: n for label, n in counts.items() if label.startswith("SQS ")}

    async with aws_client(counted, "sqs") as client:
        n = next(_names)
        work = await client.create_queue(QueueName=f"consumer-short-{n}")
        dead = await client.create_queue(QueueName=f"consumer-short-dead-{n}")
        queues = Queues(
            client,
            SqsQueue(client, work["QueueUrl"], FAST),
            SqsQueue(client, dead["QueueUrl"], FAST),
        )
        for i in range(3):
            await queues.work.send(f"short {i}")
        seen: list[str] = []

        async def quick(message: Message) -> None:
            seen.append(message.body)

        await requests()
        await run_until(
            consumer(queues, quick, concurrency=1, claim_seconds=10), lambda: len(seen) == 3
        )
        counts = await requests()
    assert counts.get("SQS ChangeMessageVisibility", 0) == 0
    assert counts["SQS DeleteMessage"] == 3
