"""Scale-out crash safety, proven: N replicas of ``recstore run`` on one dev stack take a batch
of jobs while replicas are killed at random, with SIGKILL or SIGTERM, from a seeded RNG (the
seed is printed, so a run's kill schedule can be replayed). Then every job is checked:

* each of its files is in each of its target rooms exactly once, and decrypts, for every
  member of the room, to the source's SHA-256;
* every source is deleted, the work queue and the dead-letter queue are empty;
* no replica exited unless it was told to, and no worker crashed;
* the singleton sharer started at most once per period, across all replicas.

The archive fan-out (:func:`run_archive_chaos`) is the same kill schedule over another work:
the Archiver planner (a singleton) enqueues an s3copy for each of a few dozen old Kaltura
entries, and the ArchiveActions pools of every replica copy and then replace each. Then every
entry is checked: archived exactly once (one S3 copy, one version of it in a versioned bucket,
with the original's bytes; the placeholder put in once; one original and one web flavor;
both tags once, no replacement left over), the archive queue and its dead-letter queue empty,
no replica crashed on its own.

:func:`kill_at_random` is what both share: the replicas, the seeded kills, the wait for the
work to be done, the final clean stop.

``bench/chaos.py`` runs both at size (a few hundred jobs, a hundred entries);
``tests/test_chaos.py`` runs short variants in the suite.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import random
import re
import signal
import subprocess
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import yaml

from recstore.archive.actions import DEFAULT_PLACEHOLDER
from recstore.archive.states import tag_words
from recstore.devstack.appconfig import DEMO_INSTANCE
from tests.archive_helpers import (
    entry,
    kaltura_settings,
    kaltura_snapshot,
    seed_entries,
    sync_s3,
)
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
    feed = JobFeed(setup, [json_job(setup, planned) for planned in jobs], plan.kills)
    killed = kill_at_random(setup, config, plan, rng, feed, echo)
    problems = killed.problems + verify(setup, stack.state, jobs, sha256)
    runs = sharer_starts(setup.logs())
    problems += [
        f"the sharer ran twice within its period: {b - a:.1f} s apart"
        for a, b in itertools.pairwise(runs)
        if b - a < SHARER_PERIOD - 1
    ]
    files = sum(len(p.keys) * len(p.targets) for p in jobs)
    return ChaosResult(
        plan.seed, len(jobs), files, killed.kills, killed.seconds, len(runs), problems
    )


class Workload(Protocol):
    """What the replicas work on while :func:`kill_at_random` kills them."""

    def after_kill(self) -> None:
        """Called after each kill (a producer sends more work here)."""

    def done(self) -> bool:
        """Whether all the work is done (no kill comes after: it would prove nothing)."""


class Schedule(Protocol):
    """The kill schedule's part of a plan."""

    @property
    def replicas(self) -> int: ...
    @property
    def kills(self) -> int: ...
    @property
    def kill_gap(self) -> tuple[float, float]: ...
    @property
    def patience(self) -> float: ...


@dataclass
class Killed:
    """How a run of :func:`kill_at_random` went."""

    #: Kills by signal name.
    kills: dict[str, int]
    #: From the first replica's start until the work was done.
    seconds: float
    #: Replicas that exited on their own, or did not drain clean at the final stop.
    problems: list[str]


def kill_at_random(
    setup: Setup,
    config: Path,
    schedule: Schedule,
    rng: random.Random,
    work: Workload,
    echo: Any = print,
) -> Killed:
    """Run ``schedule.replicas`` daemons on ``config``; every ``kill_gap`` kill one at random
    (SIGKILL or SIGTERM, from ``rng``) and start it again, ``schedule.kills`` times or until
    ``work`` is done; then wait for it to be done and stop every replica (each must drain
    clean)."""
    kills: dict[str, int] = {}
    started = time.monotonic()
    replicas = [Replica(setup, config) for _ in range(schedule.replicas)]
    try:
        for _ in range(schedule.kills):
            wait_checking(replicas, rng.uniform(*schedule.kill_gap))
            if work.done():
                break
            victim = rng.randrange(len(replicas))
            sig = rng.choice((signal.SIGKILL, signal.SIGTERM))
            echo(f"chaos: {sig.name} replica {victim} at {time.monotonic() - started:.1f} s")
            replicas[victim].kill(sig)
            kills[sig.name] = kills.get(sig.name, 0) + 1
            work.after_kill()
        while not work.done():
            if time.monotonic() - started > schedule.patience:
                raise AssertionError(f"not done in {schedule.patience} s:\n{setup.logs()[-3000:]}")
            wait_checking(replicas, 0.25)
        seconds = time.monotonic() - started
    finally:
        stopped = stop_replicas(replicas)
        setup.stop_all()  # none is left running: this closes the log files
    return Killed(kills, seconds, [p for r in replicas for p in r.unexpected] + stopped)


class JobFeed:
    """The transfer producer: it keeps sending while replicas die, a batch before the first
    kill and one after each, so every kill meets work (a batch finished before its kill
    proves nothing)."""

    def __init__(self, setup: Setup, bodies: list[str], kills: int) -> None:
        self._setup = setup
        size = -(-len(bodies) // (kills + 1))
        self._batches = [bodies[i : i + size] for i in range(0, len(bodies), size)]
        self.after_kill()

    def after_kill(self) -> None:
        if self._batches:
            self._setup.send(*self._batches.pop(0))

    def done(self) -> bool:
        return not self._batches and drained(self._setup)


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
    return problems + queues_left(setup) + crashes(setup.logs())


def queues_left(setup: Setup) -> list[str]:
    """The work queue and its dead-letter queue must both be empty at the end."""
    problems = []
    if setup.depth() != (0, 0):
        problems.append(f"work queue not empty: {setup.depth()}")
    if setup.depth(dead=True) != (0, 0):
        problems.append(f"dead-letter queue not empty: {setup.dead_letters()}")
    return problems


def crashes(logs: str) -> list[str]:
    """A worker that crashed or an action that failed unexpectedly, in any replica's log."""
    problems = []
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


# -- the archive fan-out ------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchiveChaosPlan:
    """An archive fan-out run: the planner and the pools of every replica archive ``entries``
    Kaltura entries while replicas are killed; the same plan and seed give the same entries
    and kill schedule."""

    replicas: int = 3
    entries: int = 120
    kills: int = 12
    seed: int = 0
    kill_gap: tuple[float, float] = (1.0, 4.0)
    #: Bytes of each entry's original, drawn uniformly (above 5 MiB: a multipart upload).
    sizes: tuple[int, int] = (64 * 1024, 6 * MiB)
    #: Seconds Kaltura takes to convert the placeholder (``replace-video`` waits for it).
    conversion: float = 1.0
    #: ``leases.ttl``: how long a SIGKILLed worker's entry lock outlives it.
    lock_ttl: str = "20s"
    patience: float = 1800.0


@dataclass
class ArchiveChaosResult:
    seed: int
    entries: int
    #: Kills by signal name, while entries were being archived (no more come after).
    kills: dict[str, int]
    seconds: float
    #: Litter a SIGKILL leaves, which nothing reads: upload tokens never used, S3 multipart
    #: uploads never completed. Reported, not a broken guarantee.
    litter: dict[str, int]
    problems: list[str] = field(default_factory=list)

    @property
    def entries_per_minute(self) -> float:
        return self.entries / self.seconds * 60 if self.seconds else 0.0

    def summary(self) -> str:
        kills = ", ".join(f"{name} {count}" for name, count in sorted(self.kills.items()))
        litter = ", ".join(f"{name} {count}" for name, count in sorted(self.litter.items()))
        return (
            f"seed={self.seed} entries={self.entries} kills: {kills or 'none'}; "
            f"{self.entries_per_minute:.1f} entries/min ({self.seconds:.1f} s), "
            f"litter: {litter}, problems {len(self.problems)}"
        )


class ArchiveWork:
    """The planner enqueues the work itself; done once every entry carries the placeholder
    and the archive queue is empty (no message in flight either)."""

    def __init__(self, setup: Setup, ids: list[str]) -> None:
        self._setup = setup
        self._ids = set(ids)

    def after_kill(self) -> None:
        pass

    def done(self) -> bool:
        state = asyncio.run(kaltura_snapshot(self._setup.state["kaltura_url"]))
        replaced = {
            e["id"] for e in state["entries"] if "flavors_deleted" in tag_words(e.get("tags"))
        }
        return self._ids <= replaced and drained(self._setup)


def run_archive_chaos(
    stack: StackProcess, tmp: Path, plan: ArchiveChaosPlan, echo: Any = print
) -> ArchiveChaosResult:
    """Run the archive fan-out of ``plan`` on ``stack``, which must be the run's alone (the
    planner archives every old entry its Kaltura stand-in holds); the result lists every
    broken guarantee in ``problems``."""
    rng = random.Random(plan.seed)
    echo(f"archive chaos: seed={plan.seed} (replay with --seed {plan.seed})")
    state = stack.state
    setup = Setup(stack, tmp, max_receive_count=MAX_RECEIVE_COUNT)
    contents = {
        f"0_{setup.tag}{n:03d}": rng.randbytes(rng.randint(*plan.sizes))
        for n in range(plan.entries)
    }
    asyncio.run(seed_entries(state["kaltura_url"], [entry(i, c) for i, c in contents.items()]))
    asyncio.run(kaltura_settings(state["kaltura_url"], conversionDelay=plan.conversion))
    bucket = state["archive_bucket"]
    s3 = sync_s3(state)
    # Every write of a copy is kept: a second s3copy of an entry is a second version.
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    config = setup.config(
        queues={"archive": setup.work_url, "archive-dlq": setup.dead_url},
        # STANDARD: the copies are read back below (moto keeps GLACIER objects unreadable).
        archive={"storageClass": "STANDARD", "partSize": "5MiB", "readyPoll": 0.1},
        leases={"ttl": plan.lock_ttl},
    )
    doc = yaml.safe_load(config.read_text())
    doc["workers"] = {
        "FileTransferer": {"enabled": False},
        "DracoonGlobalSharer": {"count": 0},
        # Once a day, as deployed: what a run's kills lose is not planned again in this run.
        "Archiver": {"enabled": True, "apply": True, "unplayedFor": 1},
        "ArchiveActions": {
            "enabled": True,
            "count": 2,
            "visibilityTimeout": 10,
            "waitTimeSeconds": 1,
        },
    }
    config.write_text(yaml.safe_dump(doc))
    work = ArchiveWork(setup, list(contents))
    killed = kill_at_random(setup, config, plan, rng, work, echo)
    problems = killed.problems + verify_archive(setup, contents)
    problems += queues_left(setup) + crashes(setup.logs())
    kaltura = asyncio.run(kaltura_snapshot(state["kaltura_url"]))
    uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    litter = {
        "unused upload tokens": sum(t["status"] != TOKEN_CLOSED for t in kaltura["uploadTokens"]),
        "open S3 uploads": len(uploads),
    }
    return ArchiveChaosResult(
        plan.seed,
        len(contents),
        killed.kills,
        killed.seconds,
        litter,
        problems,
    )


#: ``KalturaUploadTokenStatus.CLOSED``: the token's file became an entry's content.
TOKEN_CLOSED = 3
FLAVOR_DELETED = 3


def verify_archive(setup: Setup, contents: dict[str, bytes]) -> list[str]:
    """Every entry archived exactly once; one line per broken guarantee."""
    problems: list[str] = []
    state = setup.state
    kaltura = asyncio.run(kaltura_snapshot(state["kaltura_url"]))
    entries = {e["id"]: e for e in kaltura["entries"]}
    placeholder = DEFAULT_PLACEHOLDER.read_bytes()
    s3 = sync_s3(state)
    bucket = state["archive_bucket"]
    # One listing: moto copies every object's bytes on each ListObjectVersions call (and keeps
    # them a while), so one call per entry took the dev stack to gigabytes.
    written: Counter[str] = Counter()
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        written.update(v["Key"] for v in page.get("Versions", []))
        written.update(f"{m['Key']} (deleted)" for m in page.get("DeleteMarkers", []))
    for entry_id, content in contents.items():
        found = entries.get(entry_id)
        if found is None:
            problems.append(f"{entry_id}: gone from Kaltura")
            continue
        words = tag_words(found.get("tags"))
        for tag in ("archived_to_s3", "flavors_deleted"):
            if words.count(tag) != 1:
                problems.append(f"{entry_id}: tagged {tag} {words.count(tag)} times ({words})")
        if str(found.get("replacementStatus") or "0") != "0" or found.get("replacingEntryId"):
            problems.append(f"{entry_id}: a content replacement is left over ({found})")
        live = [
            f
            for f in kaltura["flavors"]
            if f["entryId"] == entry_id and f["status"] != FLAVOR_DELETED
        ]
        originals = [f for f in live if f["isOriginal"]]
        if len(originals) != 1 or originals[0]["sizeInBytes"] != len(placeholder):
            problems.append(f"{entry_id}: originals are not the one placeholder: {originals}")
        if len(live) - len(originals) != 1:
            problems.append(f"{entry_id}: {len(live) - len(originals)} other flavors, not one")
        if written[entry_id] != 1 or written[f"{entry_id} (deleted)"]:
            problems.append(f"{entry_id}: {written[entry_id]} S3 copies written, not one")
        if written[entry_id]:
            body = s3.get_object(Bucket=bucket, Key=entry_id)["Body"].read()
            if hashlib.sha256(body).digest() != hashlib.sha256(content).digest():
                problems.append(f"{entry_id}: the S3 copy is not the original")
    # Each use of a token made an entry's content of its file: the placeholder went in once
    # per entry, not again over one already in place.
    used = [
        t
        for t in kaltura["uploadTokens"]
        if t["status"] == TOKEN_CLOSED and t["fileName"] == DEFAULT_PLACEHOLDER.name
    ]
    if len(used) != len(contents):
        problems.append(f"the placeholder was put in {len(used)} times for {len(contents)} entries")
    return problems


def wait_for_line(log: Path, text: str, patience: float = 60) -> None:
    deadline = time.monotonic() + patience
    while not (log.exists() and text in log.read_text()):
        assert time.monotonic() < deadline, f"{text!r} not in {log.name} after {patience} s"
        time.sleep(0.1)


def daemon_status(log: Path) -> dict[str, Any]:
    port = re.search(r" 15000 .*http_port=(\d+)", log.read_text())
    assert port is not None
    with urllib.request.urlopen(f"http://127.0.0.1:{port.group(1)}/status.json") as answer:
        result: dict[str, Any] = json.loads(answer.read())
    return result
