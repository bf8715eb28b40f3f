"""Scale-out crash safety, proven: N replicas of ``recstore run`` on one dev stack take a batch
of jobs while replicas are killed at random, with SIGKILL or SIGTERM, from a seeded RNG (the
seed is printed, so a run's kill schedule can be replayed). Then every job is checked:

* each of its files is in each of its target rooms exactly once, and decrypts, for every
  member of the room, to the source's SHA-256;
* every source is deleted, the work queue and the dead-letter queue are empty;
* no replica exited unless it was told to, and no worker crashed;
* the singleton sharer started at most once per period, across all replicas.

``bench/chaos.py`` runs it at size (a few hundred jobs); ``tests/test_chaos.py`` runs a short
variant in the suite.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from recstore.devstack.appconfig import DEMO_INSTANCE
from tests.conftest import StackProcess
from tests.dracoon_helpers import client, downloaded_sha256, stand_in_state
from tests.transfer_helpers import MiB, Setup, job

#: A message is received again after every kill of the replica that held it; the redrive
#: policy must not take it to the dead-letter queue for that.
MAX_RECEIVE_COUNT = 50
#: The sharer's period in the chaos configuration (``jobDelayMinutes: 1``).
SHARER_PERIOD = 60.0


@dataclass(frozen=True)
class ChaosPlan:
    """What one run does; the same plan and seed give the same jobs and kill schedule."""

    replicas: int = 3
    jobs: int = 300
    kills: int = 20
    seed: int = 0
    #: Seconds between two kills, drawn uniformly.
    kill_gap: tuple[float, float] = (2.0, 6.0)
    #: Share of jobs with a source larger than the chunk size (several parts).
    multi_chunk: float = 0.05
    #: Share of jobs with several keys, and with several targets.
    several: float = 0.25
    small_size: tuple[int, int] = (64 * 1024, 2 * MiB)
    large_size: int = 13 * MiB
    patience: float = 1800.0


@dataclass
class ChaosResult:
    seed: int
    jobs: int
    files: int
    kills: dict[str, int]
    seconds: float
    sharer_runs: int
    problems: list[str] = field(default_factory=list)

    @property
    def jobs_per_minute(self) -> float:
        return self.jobs / self.seconds * 60 if self.seconds else 0.0

    def summary(self) -> str:
        kills = ", ".join(f"{name} {count}" for name, count in sorted(self.kills.items()))
        return (
            f"seed={self.seed} jobs={self.jobs} files={self.files} kills: {kills or 'none'}; "
            f"{self.jobs_per_minute:.1f} jobs/min ({self.seconds:.1f} s), "
            f"sharer runs {self.sharer_runs}, problems {len(self.problems)}"
        )


@dataclass(frozen=True)
class PlannedJob:
    meeting: int
    keys: list[str]
    targets: list[str]


class Replica:
    """One slot of the deployment: a daemon process, restarted after each kill."""

    def __init__(self, setup: Setup, config: Path) -> None:
        self._setup = setup
        self._config = config
        self.proc = self._start()
        #: Exits we did not ask for: (return code, log file).
        self.unexpected: list[str] = []

    def check(self) -> None:
        """Note a process that exited on its own, and start the slot again."""
        code = self.proc.poll()
        if code is not None:
            self.unexpected.append(f"replica pid {self.proc.pid} exited {code} on its own")
            self.proc = self._start()

    def kill(self, sig: signal.Signals) -> None:
        """Send ``sig`` once the daemon runs (not while it imports), wait for the exit, start
        a fresh daemon in its place."""
        self.check()
        self.wait_started()
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=60)
        # SIGTERM: 0 after a clean drain, 1 when the grace period cancelled a job; -15 when
        # it came before the daemon had its handlers (still importing: nothing to drain).
        if sig == signal.SIGTERM and code not in (0, 1, -signal.SIGTERM):
            self.unexpected.append(f"replica pid {self.proc.pid} exited {code} after SIGTERM")
        self.proc = self._start()

    def _start(self) -> subprocess.Popen[str]:
        self.log = self._setup.tmp / f"daemon-{len(self._setup.daemons)}.log"
        return self._setup.start(self._config)

    def wait_started(self, patience: float = 60) -> None:
        """Until the daemon has its signal handlers (it logs 15000 right after)."""
        deadline = time.monotonic() + patience
        while " 15000 " not in self.log.read_text() and self.proc.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"replica pid {self.proc.pid} did not start")
            time.sleep(0.1)


def plan_jobs(
    setup: Setup, plan: ChaosPlan, rng: random.Random
) -> tuple[list[PlannedJob], dict[str, str]]:
    """Create the sources in S3; the jobs and each source key's SHA-256."""
    sizes: dict[str, int] = {}
    jobs: list[PlannedJob] = []
    rooms = [f"Chaos {setup.tag}/{name}" for name in ("a", "b", "c")]
    for meeting in range(1, plan.jobs + 1):
        keys = 1 + (rng.random() < plan.several) * rng.randint(1, 2)
        targets = 1 + (rng.random() < plan.several) * rng.randint(1, 2)
        names = []
        for k in range(keys):
            name = f"j{meeting:04d}-{k}.mp4"
            large = rng.random() < plan.multi_chunk
            sizes[name] = plan.large_size + meeting if large else rng.randint(*plan.small_size)
            names.append(f"{setup.tag}/{name}")
        jobs.append(PlannedJob(meeting, names, rng.sample(rooms, targets)))
    created = setup.objects(sizes)
    return jobs, {key: spec["sha256"] for key, spec in created.items()}


def run_chaos(stack: StackProcess, tmp: Path, plan: ChaosPlan, echo: Any = print) -> ChaosResult:
    """Run ``plan`` on ``stack``; the result lists every broken guarantee in ``problems``."""
    rng = random.Random(plan.seed)
    echo(f"chaos: seed={plan.seed} (replay with --seed {plan.seed})")
    setup = Setup(stack, tmp, max_receive_count=MAX_RECEIVE_COUNT)
    jobs, sha256 = plan_jobs(setup, plan, rng)
    config = setup.config()
    doc = yaml.safe_load(config.read_text())
    doc["workers"]["DracoonGlobalSharer"]["jobDelayMinutes"] = int(SHARER_PERIOD // 60)
    config.write_text(yaml.safe_dump(doc))
    # The producer keeps sending while replicas die: a batch before the first kill and one
    # after each, so every kill meets work (a batch finished before its kill proves nothing).
    bodies = [json_job(setup, planned) for planned in jobs]
    batch = -(-len(bodies) // (plan.kills + 1))
    batches = [bodies[i : i + batch] for i in range(0, len(bodies), batch)]
    setup.send(*batches.pop(0))
    kills: dict[str, int] = {}
    started = time.monotonic()
    replicas = [Replica(setup, config) for _ in range(plan.replicas)]
    try:
        for _ in range(plan.kills):
            wait_checking(replicas, rng.uniform(*plan.kill_gap))
            victim = rng.randrange(len(replicas))
            sig = rng.choice((signal.SIGKILL, signal.SIGTERM))
            echo(f"chaos: {sig.name} replica {victim} at {time.monotonic() - started:.1f} s")
            replicas[victim].kill(sig)
            kills[sig.name] = kills.get(sig.name, 0) + 1
            if batches:
                setup.send(*batches.pop(0))
        for rest in batches:
            setup.send(*rest)
        while not drained(setup):
            if time.monotonic() - started > plan.patience:
                raise AssertionError(f"not drained in {plan.patience} s:\n{setup.logs()[-3000:]}")
            wait_checking(replicas, 0.25)
        seconds = time.monotonic() - started
    finally:
        stopped = stop_replicas(replicas)
        setup.stop_all()  # none is left running: this closes the log files
    problems = [p for r in replicas for p in r.unexpected] + stopped
    problems += verify(setup, stack.state, jobs, sha256)
    runs = sharer_starts(setup.logs())
    problems += [
        f"the sharer ran twice within its period: {b - a:.1f} s apart"
        for a, b in itertools.pairwise(runs)
        if b - a < SHARER_PERIOD - 1
    ]
    files = sum(len(p.keys) * len(p.targets) for p in jobs)
    return ChaosResult(plan.seed, len(jobs), files, kills, seconds, len(runs), problems)


def wait_checking(replicas: list[Replica], seconds: float) -> None:
    """Let ``seconds`` pass (the kill schedule), noting any replica that exits on its own."""
    deadline = time.monotonic() + seconds
    while True:
        for replica in replicas:
            replica.check()
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.25))


def json_job(setup: Setup, planned: PlannedJob) -> str:
    targets = [{"path": path} for path in planned.targets]
    return json.dumps(job(DEMO_INSTANCE, planned.keys, targets, meeting=planned.meeting))


def drained(setup: Setup) -> bool:
    """Every message deleted: none waiting, none in flight (a killed replica's comes back)."""
    return setup.depth() == (0, 0)


def stop_replicas(replicas: list[Replica]) -> list[str]:
    """SIGTERM every replica; idle now, each must drain clean (exit 0)."""
    problems = []
    for replica in replicas:  # one restarted a moment ago may still be importing
        replica.wait_started()
    for replica in replicas:
        if replica.proc.poll() is None:
            replica.proc.send_signal(signal.SIGTERM)
    for replica in replicas:
        try:
            code = replica.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            replica.proc.kill()
            replica.proc.wait()
            code = -9
        if code != 0:
            problems.append(f"replica pid {replica.proc.pid} exited {code} at the final stop")
    return problems


def verify(
    setup: Setup, state: dict[str, Any], jobs: list[PlannedJob], sha256: dict[str, str]
) -> list[str]:
    """Every guarantee about what landed; one line per broken one."""
    problems: list[str] = []
    nodes = asyncio.run(stand_in_state(state))["nodes"]
    by_room: dict[str, list[dict[str, Any]]] = {}
    for node in nodes:
        if node["type"] == "file":
            by_room.setdefault(node["path"].rsplit("/", 1)[0], []).append(node)
    members = [m["login"] for m in state["dracoon_members"]]
    to_check: list[tuple[int, str, str]] = []
    for planned in jobs:
        for target in planned.targets:
            room = by_room.get(f"/Recordings/{target}", [])
            for key in planned.keys:
                name = key.rsplit("/", 1)[1]
                copies = [n for n in room if n["name"] == name]
                if len(copies) != 1:
                    problems.append(f"{target}/{name}: {len(copies)} copies")
                    continue
                to_check.extend((copies[0]["id"], key, login) for login in members)
    problems += asyncio.run(_decrypt_all(state, to_check, sha256))
    problems += [f"source {key} not deleted" for key in sha256 if setup.source_exists(key)]
    if setup.depth() != (0, 0):
        problems.append(f"work queue not empty: {setup.depth()}")
    if setup.depth(dead=True) != (0, 0):
        problems.append(f"dead-letter queue not empty: {setup.dead_letters()}")
    logs = setup.logs()
    for crash in ("crashed", "failed unexpectedly", "Traceback"):
        if crash in logs:
            line = next(line for line in logs.splitlines() if crash in line)
            problems.append(f"a replica logged {crash!r}: {line}")
    return problems


async def _decrypt_all(
    state: dict[str, Any], checks: list[tuple[int, str, str]], sha256: dict[str, str]
) -> list[str]:
    problems: list[str] = []
    for login in sorted({login for _, _, login in checks}):
        async with client(state, login) as reader:
            for file_id, key, _ in (c for c in checks if c[2] == login):
                try:
                    got = await downloaded_sha256(reader, file_id, True)
                except Exception as exc:
                    problems.append(f"{key} (file {file_id}) for {login}: {exc}")
                    continue
                if got != sha256[key]:
                    problems.append(f"{key} (file {file_id}) for {login}: wrong SHA-256")
    return problems


_RUN_ENDED = re.compile(
    r"^(\S+) .*dracoon_global_sharer run ended \(\w+\).* seconds=([\d.]+)", re.MULTILINE
)


def sharer_starts(logs: str) -> list[float]:
    """When each sharer run started (Unix seconds), across every replica's log, in order."""
    starts = []
    for stamp, seconds in _RUN_ENDED.findall(logs):
        ended = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        starts.append(ended - float(seconds))
    return sorted(starts)
