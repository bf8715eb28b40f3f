"""The dev stack: every remote recstore talks to, on free loopback ports, in one process.

``recstore devstack up`` builds a :class:`DevStack`: moto's server (S3 + SQS, a real HTTP
endpoint) in a thread, and each stand-in (DRACOON, Kaltura, ...) as an aiohttp application on
the same event loop. Once everything answers it writes the state file (endpoints and
credentials as JSON), then serves until SIGTERM/SIGINT and removes the file on the way out.
Everything lives in this one process, so stopping it leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
import shutil
import signal
import ssl
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web
from pydantic import SecretStr

from recstore.clients.aws import aws_client
from recstore.common.secret_files import write_private
from recstore.settings import AwsSettings

log = logging.getLogger(__name__)

#: Credentials moto accepts; they are not secrets.
AWS_KEY = "testing"
REGION = "eu-central-1"


class StandIn(Protocol):
    """What the stack needs of a stand-in module's server object."""

    name: str

    def make_app(self) -> web.Application: ...

    def set_base_url(self, base_url: str) -> None: ...

    def state_entries(self) -> dict[str, Any]: ...


def up_command(
    state_file: Path, data_dir: Path | None = None, tls: tuple[Path, Path] | None = None
) -> list[str]:
    """``recstore devstack up`` as the tests and benchmarks start it, in a process of its own;
    ``tls`` is a certificate and its key to serve the stand-ins with (HTTPS)."""
    command = [sys.executable, "-m", "recstore", "devstack", "up", "--state-file", str(state_file)]
    if data_dir is not None:
        command += ["--data-dir", str(data_dir)]
    if tls is not None:
        command += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
    return command


async def serve(
    stand_in: StandIn, app: web.Application | None = None, tls: ssl.SSLContext | None = None
) -> web.AppRunner:
    """Serve a stand-in (or ``app``, its app with extra middleware) on a free loopback port,
    over HTTPS with ``tls``, and tell it its address. The caller cleans the runner up.

    At shutdown, requests still in a stand-in get a moment, not aiohttp's default minute: a
    fault plan may hold one (its body unread, so its client's departure goes unseen).
    """
    runner = web.AppRunner(app or stand_in.make_app(), access_log=None, shutdown_timeout=2)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls).start()
    scheme = "https" if tls is not None else "http"
    stand_in.set_base_url(f"{scheme}://127.0.0.1:{runner.addresses[0][1]}")
    return runner


@asynccontextmanager
async def serving(stand_in: StandIn, app: web.Application | None = None) -> AsyncIterator[None]:
    """:func:`serve` for the length of a block: a test's own stand-in on its event loop."""
    runner = await serve(stand_in, app)
    try:
        yield
    finally:
        await runner.cleanup()


#: Every stand-in the dev stack knows, as ``module:class``; imported only when started.
STAND_INS = {
    "configurator": "recstore.devstack.configurator:ConfiguratorStandIn",
    "dracoon": "recstore.devstack.dracoon:DracoonStandIn",
    "kaltura": "recstore.devstack.kaltura:KalturaStandIn",
    "vidyo": "recstore.devstack.vidyo:VidyoStandIn",
}


@dataclass
class StackOptions:
    """What to create in moto: buckets and a work queue with its dead-letter queue."""

    buckets: Sequence[str] = ("recordings",)
    queue: str = "recordings"
    dead_letter_queue: str = "recordings-dlq"
    max_receive_count: int = 5
    extra_queues: Sequence[str] = ()
    #: The Kaltura archive: its bucket, and its action queue with a dead-letter queue.
    archive_bucket: str | None = "kaltura-archive"
    archive_queue: str | None = "archive"
    archive_dead_letter_queue: str = "archive-dlq"
    #: recstore's leases, in a bucket of their own: a bucket recstore writes is never a
    #: source of transfers (issue 33), so it cannot be the recordings bucket.
    lease_bucket: str | None = "recstore-leases"
    data_dir: Path | None = None
    stand_ins: Sequence[str] = field(default_factory=lambda: tuple(STAND_INS))
    #: A certificate and its key (PEM): the stand-ins (not moto) serve HTTPS with them.
    tls: tuple[Path, Path] | None = None


def load_stand_in(name: str, data_dir: Path) -> StandIn | None:
    """The named stand-in, or None when this build does not ship it."""
    module_name, _, class_name = STAND_INS[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        return None
    stand_in: StandIn = getattr(module, class_name)(data_dir / name)
    return stand_in


class DevStack:
    """Starts and stops the whole stack; :attr:`state` is what the state file holds."""

    def __init__(self, options: StackOptions | None = None) -> None:
        self.options = options or StackOptions()
        self.state: dict[str, Any] = {}
        self._moto: Any = None
        self._runners: list[web.AppRunner] = []
        self._own_data_dir: Path | None = None

    async def start(self) -> dict[str, Any]:
        data_dir = self.options.data_dir
        if data_dir is None:
            data_dir = self._own_data_dir = Path(tempfile.mkdtemp(prefix="recstore-devstack-"))
        data_dir.mkdir(parents=True, exist_ok=True)
        moto_url = await asyncio.to_thread(self._start_moto)
        self.state = {
            "pid": os.getpid(),
            "region": REGION,
            "aws_access_key_id": AWS_KEY,
            "aws_secret_access_key": AWS_KEY,
            "s3_endpoint": moto_url,
            "sqs_endpoint": moto_url,
            "data_dir": str(data_dir),
        }
        await self._create_aws_resources()
        from recstore.devstack.s3proxy import S3FaultProxy

        self.state.update(await self._serve(S3FaultProxy(moto_url)))
        for name in self.options.stand_ins:
            stand_in = load_stand_in(name, data_dir)
            if stand_in is None:
                log.info("stand-in %s is not in this build; skipped", name)
                continue
            self.state.update(await self._serve(stand_in))
        return self.state

    def _start_moto(self) -> str:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per moto request
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        return f"http://{host}:{port}"

    def aws_settings(self) -> AwsSettings:
        return AwsSettings(
            region=REGION,
            endpoint_url=self.state["s3_endpoint"],
            access_key_id=AWS_KEY,
            secret_access_key=SecretStr(AWS_KEY),
        )

    async def _create_aws_resources(self) -> None:
        opts = self.options
        settings = self.aws_settings()
        buckets = list(opts.buckets)
        for own in (opts.archive_bucket, opts.lease_bucket):
            if own and own not in buckets:
                buckets.append(own)
        async with aws_client(settings, "s3") as s3:
            for bucket in buckets:
                await s3.create_bucket(
                    Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
                )
        self.state["bucket"] = opts.buckets[0] if opts.buckets else None
        self.state["buckets"] = buckets
        if opts.archive_bucket:
            self.state["archive_bucket"] = opts.archive_bucket
        if opts.lease_bucket:
            self.state["lease_bucket"] = opts.lease_bucket
        async with aws_client(settings, "sqs") as sqs:
            queue_url, dlq_url = await _queue_pair(
                sqs, opts.queue, opts.dead_letter_queue, opts.max_receive_count
            )
            queues = {opts.queue: queue_url, opts.dead_letter_queue: dlq_url}
            if opts.archive_queue:
                (
                    queues[opts.archive_queue],
                    queues[opts.archive_dead_letter_queue],
                ) = await _queue_pair(
                    sqs,
                    opts.archive_queue,
                    opts.archive_dead_letter_queue,
                    opts.max_receive_count,
                )
                self.state["archive_queue"] = opts.archive_queue
                self.state["archive_dead_letter_queue"] = opts.archive_dead_letter_queue
            for name in opts.extra_queues:
                queues[name] = (await sqs.create_queue(QueueName=name))["QueueUrl"]
        self.state.update(queue_url=queue_url, dlq_url=dlq_url, queues=queues)

    async def _serve(self, stand_in: StandIn) -> dict[str, Any]:
        tls = None
        if self.options.tls is not None:
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(*self.options.tls)
        self._runners.append(await serve(stand_in, tls=tls))
        return stand_in.state_entries()

    async def close(self) -> None:
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()
        if self._moto is not None:
            await asyncio.to_thread(self._moto.stop)
            self._moto = None
        if self._own_data_dir is not None:
            shutil.rmtree(self._own_data_dir, ignore_errors=True)
            self._own_data_dir = None


async def _queue_pair(sqs: Any, name: str, dead_letter: str, max_receives: int) -> tuple[str, str]:
    """A work queue whose messages move to its dead-letter queue after ``max_receives``."""
    dlq_url = (await sqs.create_queue(QueueName=dead_letter))["QueueUrl"]
    attrs = await sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])
    redrive = {
        "deadLetterTargetArn": attrs["Attributes"]["QueueArn"],
        "maxReceiveCount": str(max_receives),
    }
    queue_url = (
        await sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": json.dumps(redrive)})
    )["QueueUrl"]
    return str(queue_url), str(dlq_url)


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Write atomically, so a reader polling for the file never sees half of it; 0600 from
    the start in a directory of this user's, since it holds every stand-in's password."""
    data = json.dumps(state, indent=2, sort_keys=True) + "\n"
    write_private(path, data.encode("utf-8"))


def read_state(path: Path) -> dict[str, Any]:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(
            f"no dev stack state at {path}: is `devstack up` running?"
        ) from None
    if not isinstance(state, dict):
        raise ValueError(f"{path} is not a dev stack state file")
    return state


async def serve_until_signalled(stack: DevStack, state_file: Path) -> None:
    """Start, publish the state file, wait for SIGTERM/SIGINT, stop, remove the file."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        state = await stack.start()
        write_state(state_file, state)
        log.info("dev stack up; state in %s", state_file)
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await asyncio.to_thread(state_file.unlink, missing_ok=True)
        await stack.close()
