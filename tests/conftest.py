"""Shared fixtures: the CLI and the dev stack as real processes, over loopback."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import IO, Any

import aiohttp
import click
import pytest
from click.testing import CliRunner

from recstore.cli import main as cli_main
from recstore.devstack.stack import up_command
from recstore.settings import SEED_ENV

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"


def missing_tool(reason: str) -> None:
    """Skip locally, fail in CI: a CI run without a tool the tests need must not pass quietly
    (the scripts/ensure-* installers run first there)."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a child process: no stray RECSTORE_ overrides from the caller, nor
    the seed 001 variables that configure recstore too (``recstore.settings.SEED_ENV``)."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("RECSTORE_") and k not in SEED_ENV
    }
    env.update(extra)
    return env


#: Fixtures that several modules share, beside the helpers they use (``setup``: a transfer
#: test's queues and daemons).
pytest_plugins = ["tests.transfer_helpers"]

#: Its ``sitecustomize`` makes a child interpreter one without ``recstore[devstack]``.
WITHOUT_DEVSTACK = ROOT / "tests" / "without_devstack"


def daemon_env(**extra: str) -> dict[str, str]:
    """The environment of a daemon process as the image runs it: without the dev stack's
    extra (moto's server, Flask, Werkzeug), so a run-time need for it fails the test."""
    return clean_env(PYTHONPATH=str(WITHOUT_DEVSTACK), **extra)


def start_daemon(config: Path, log: Path) -> subprocess.Popen[str]:
    """``recstore run`` on ``config`` as the image runs it (:func:`daemon_env`), in the
    background, everything it prints going to ``log``."""
    with log.open("w") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "recstore", "run", "--config", str(config)],
            cwd=ROOT,
            env=daemon_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )


def run_cli_process(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python -m recstore ARGS`` in a process of its own: for what only a real process
    shows (its exit status as the shell sees it, signals, the interpreter's start)."""
    return subprocess.run(
        [sys.executable, "-m", "recstore", *args],
        capture_output=True,
        text=True,
        env=env if env is not None else clean_env(),
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``recstore ARGS`` run in this process by click's runner, as a process would see it.

    A new interpreter costs about a second of imports per call; this costs none. What a
    process would have is kept: only ``env`` in the environment (RECSTORE_ variables of the
    caller removed), the repository as working directory, stdout and stderr apart, the exit
    status, and a crash's traceback on stderr. Logging, which a command configures for itself,
    is put back afterwards. Called from inside a running event loop (an async test), the
    command runs in a thread of its own, since it starts its own loop.
    """
    code, stdout, stderr = run_cli_bytes(*args, env=env, timeout=timeout)
    text = stdout.decode("utf-8", "replace").replace("\r\n", "\n")  # as click's Result.stdout
    return subprocess.CompletedProcess(args, code, text, stderr)


def run_cli_bytes(
    *args: str, stdin: bytes = b"", env: dict[str, str] | None = None, timeout: float = 60
) -> tuple[int, bytes, str]:
    """:func:`run_cli` for a command that reads and writes bytes (``ldap-status``): ``stdin``
    as its standard input; its exit status, the exact bytes it wrote to stdout, its stderr."""
    environment = env if env is not None else clean_env()
    overrides: dict[str, str | None] = {k: None for k in os.environ if k not in environment}
    overrides.update(environment)

    def invoke() -> tuple[int, bytes, str]:
        with _logging_restored(), contextlib.chdir(ROOT):
            result = _Runner().invoke(cli_main, list(args), input=stdin, env=overrides)
        _assert_nothing_left_open(args)
        stderr = result.stderr
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            assert result.exc_info is not None
            stderr += "".join(traceback.format_exception(*result.exc_info))
        return result.exit_code, result.stdout_bytes, stderr

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return invoke()
    outcome: list[tuple[int, bytes, str]] = []
    worker = threading.Thread(target=lambda: outcome.append(invoke()), daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        raise subprocess.TimeoutExpired(["recstore", *args], timeout)
    return outcome[0]


def _assert_nothing_left_open(args: tuple[str, ...]) -> None:
    """Fail the command that left a connection or session unclosed.

    A process would drop it at exit; in this process the garbage collector finds it later,
    during some other test, whose failure would then name the wrong culprit.
    """
    found: list[str] = []
    previous = sys.unraisablehook
    sys.unraisablehook = lambda hook: found.append(f"{hook.exc_value!r} in {hook.object!r}")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            gc.collect()
    finally:
        sys.unraisablehook = previous
    found += [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert not found, f"recstore {' '.join(args)} left open: {found}"


class _Runner(CliRunner):
    """Click's runner, naming the program as the console script does."""

    def get_default_prog_name(self, cli: click.Command) -> str:
        return "recstore"


@contextlib.contextmanager
def _logging_restored() -> Iterator[None]:
    """The root logger and the library loggers as they were before a command set them."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    named = {name: logging.getLogger(name).level for name in logging.root.manager.loggerDict}
    for handler in handlers:  # as in a new interpreter: what is logged before a command
        root.removeHandler(handler)  # sets logging up reaches stderr (logging's last resort)
    root.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        for name, was in named.items():
            logging.getLogger(name).setLevel(was)


class LogLines:
    """A child process's log pipe, read line by line by one thread from start to end.

    Reading the first lines with the pipe's line reader and the rest with ``communicate()``
    loses whatever the line reader had buffered (``communicate`` reads the descriptor), and a
    pipe nobody reads blocks the child once it is full.
    """

    def __init__(self, pipe: IO[str]) -> None:
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._reader.start()

    def _read(self, pipe: IO[str]) -> None:
        with pipe:  # closed at its end, when the child has gone
            for line in pipe:
                self.lines.append(line)

    def wait_for(self, pattern: str, patience: float = 30) -> re.Match[str]:
        """The first line matching ``pattern``; an error when the pipe ends or time runs out."""
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            ended = not self._reader.is_alive()
            for line in list(self.lines):
                if (found := re.search(pattern, line)) is not None:
                    return found
            if ended:
                break
            time.sleep(0.02)
        raise AssertionError(f"no line matched {pattern!r}:\n" + "".join(self.lines))

    def finish(self, patience: float = 30) -> str:
        """Everything logged, once the pipe has ended (call it after the child exited)."""
        self._reader.join(timeout=patience)
        return "".join(self.lines)


async def until(check: Callable[[], Awaitable[bool]], patience: float = 20) -> None:
    """Wait for ``check`` to hold; a fixed sleep would be too short on a busy machine."""
    deadline = time.monotonic() + patience
    while not await check():
        assert time.monotonic() < deadline, "condition never held"
        await asyncio.sleep(0.05)


class ManualClock:
    """A monotonic clock that a test moves by hand, for code that takes a ``clock``.

    ``reads`` counts how often the code under test looked at it, so a test can wait for the
    code's next look (a poll, a check) instead of sleeping for one.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def looked_again(self, times: int = 1, patience: float = 20) -> None:
        """Return once the code under test has read the clock ``times`` more times."""
        target = self.reads + times

        async def looked() -> bool:
            return self.reads >= target

        await until(looked, patience)


async def set_faults(url: str, plan: dict[str, Any]) -> None:
    """Set the fault plan of the stand-in (or S3 proxy) at ``url``; ``{}`` ends it."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/_devstack/faults", json=plan) as answer,
    ):
        assert answer.status == 200, await answer.text()


async def faults_injected(url: str) -> int:
    """How many faults the current plan of the stand-in at ``url`` has injected."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{url}/_devstack/faults") as answer,
    ):
        return int((await answer.json())["injected"])


def wait_for_file(path: Path, proc: subprocess.Popen[Any], patience: float = 60) -> None:
    deadline = time.monotonic() + patience
    while not path.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before writing {path}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {patience} s")
        time.sleep(0.05)


class StackProcess:
    """``recstore devstack up`` running in the background, with its state."""

    def __init__(self, tmp: Path) -> None:
        self.state_file = tmp / "state.json"
        self.log_file = tmp / "devstack.log"
        with self.log_file.open("w") as log:
            self.proc = subprocess.Popen(
                up_command(self.state_file),
                env=clean_env(),
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for_file(self.state_file, self.proc)
        self.state: dict[str, Any] = json.loads(self.state_file.read_text())

    def through_s3_proxy(self) -> dict[str, Any]:
        """The state with S3 reached through the dev stack's proxy (its faults, and the
        archive tiers of Intelligent-Tiering)."""
        return {**self.state, "s3_endpoint": self.state["s3_proxy_url"]}

    async def move_to_archive_tier(
        self, bucket: str, key: str, tier: str = "ARCHIVE_ACCESS", restore_lookups: int = 1
    ) -> None:
        """Do what S3 does to an ``INTELLIGENT_TIERING`` object nobody read for months, as the
        proxy sees it (moto does not model the tiers); the restore runs ``restore_lookups``
        HEADs."""
        doc = {"bucket": bucket, "key": key, "tier": tier, "restoreLookups": restore_lookups}
        url = f"{self.state['s3_proxy_url']}/_devstack/tiering"
        async with aiohttp.ClientSession() as admin, admin.post(url, json=doc) as answer:
            assert answer.status == 200, await answer.text()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


@pytest.fixture(scope="session")
def devstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    """One dev stack for the whole session (starting it costs about a second)."""
    stack = StackProcess(tmp_path_factory.mktemp("devstack"))
    yield stack
    stack.stop()


#: Fixtures that bring up a server of the dev stack (or the directory) for the test.
_STACK_FIXTURES = frozenset({"devstack", "ldap_server"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs a stand-in server ``stack``: ``make check`` leaves them out.

    Then put the modules that take longest first: those marked ``long``, then the others that
    start processes (``e2e``), then the in-process ones, each group in file order. pytest-xdist
    hands out whole modules in this order (``--dist loadscope --no-loadscope-reorder``), so no
    long module is left to run alone at the end while the other workers idle (measured on
    2 cores: the busiest of six workers ran 153 s of tests, the least busy 111 s).
    """
    for item in items:
        if _STACK_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.stack)

    def weight(item: pytest.Item) -> int:
        return 0 if item.get_closest_marker("long") else 1 if item.get_closest_marker("e2e") else 2

    items.sort(key=weight)  # stable: file order within each group, a module's tests together


def pytest_collection_finish(session: pytest.Session) -> None:
    """Leave what the test process holds once collected (modules, classes, the collected tests)
    out of every later garbage collection: it stays for the session anyway, and each full
    collection after a command (``run_cli``) scanned it, 0.1 CPU-s each, 0.03 without it."""
    gc.collect()
    gc.freeze()
