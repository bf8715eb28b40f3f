"""What the throughput benchmarks share: ``rclone serve s3`` beside the dev stack, and meters.

Every process of a benchmark runs on this machine's cores, so a figure alone says little; the
CPU meter tells where the cores went during a phase (seconds of CPU per GB moved, per
process), which is what bounds a pipeline when three processes share two cores.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr

from recstore.clients.http import http_session
from recstore.devstack.stack import up_command
from recstore.devstack.tls import Certificates, throwaway_ca
from recstore.settings import AwsSettings

ROOT = Path(__file__).resolve().parents[1]
#: ``BENCH_QUICK=1``: every script runs small (a smoke run of a few minutes in all, which CI
#: can afford); it proves the scripts work and asserts nothing about speed.
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
KEY, SECRET = "bench", "bench-secret"
MB = 1e6
_TICKS = os.sysconf("SC_CLK_TCK")


def setting(name: str, full: str, quick: str) -> str:
    """``$name`` if set, else the quick run's value under ``BENCH_QUICK=1``, else the full one."""
    return os.environ.get(name) or (quick if QUICK else full)


def work_dir(prefix: str, need: int) -> Path:
    """A fresh folder for a run's files: ``$BENCH_DIR``, else ``/dev/shm`` when ``need`` bytes
    fit there, else the temporary folder.

    The stand-ins and rclone store every byte they receive. On a disk, once a few GB are
    dirty, each further write costs the writer about 2 CPU-seconds per GB of kernel
    writeback (measured here: 0.3 s/GB below the threshold, 2 s/GB above it, 0.4 s/GB on
    tmpfs), which would be charged to whichever phase happens to run then.
    """
    base = os.environ.get("BENCH_DIR")
    if base is None and Path("/dev/shm").is_dir() and shutil.disk_usage("/dev/shm").free > need:
        base = "/dev/shm"
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, patience: float = 30) -> None:
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {port}")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a running process (all its threads), from ``/proc``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


def stolen_seconds() -> float:
    """CPU time the host kept from this VM's cores while they had work (``steal``, all cores).

    On a shared host it comes in bursts (up to a fifth of a core in some seconds here): a phase
    that ran through one was slowed by the host, not by the code under test.
    """
    with open("/proc/stat") as stat:
        fields = stat.readline().split()  # "cpu user nice system idle iowait irq softirq steal"
    return int(fields[8]) / _TICKS


@dataclass
class CpuMeter:
    """CPU seconds spent by named processes during one ``with`` block.

    ``"bench"`` is this process; ``"child"`` any child process that ended inside the block.
    ``stolen`` is what the host took from the VM's cores meanwhile (not anyone's work).
    """

    pids: Mapping[str, int]
    spent: dict[str, float] = field(default_factory=dict)
    wall: float = 0.0
    stolen: float = 0.0

    @contextmanager
    def measure(self, stores: int = 0) -> Iterator[None]:
        """Meter the block, in which the processes write about ``stores`` bytes to fresh memory.

        Dirty pages of earlier phases are written out first: the stand-ins and rclone keep
        what they receive on disk, so a phase would otherwise share the cores with the kernel
        writing back the gigabytes of the phase before. Fresh memory comes from
        :class:`HotMemory`.
        """
        os.sync()
        with HotMemory(stores) as hot:
            before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
            own, stolen = os.times(), stolen_seconds()
            started = time.perf_counter()
            try:
                with hot.feeding():
                    yield
            finally:
                self.wall = time.perf_counter() - started
                self.stolen = stolen_seconds() - stolen
                done = os.times()
                self.spent = {
                    name: cpu_seconds(pid) - before[name] for name, pid in self.pids.items()
                }
                self.spent["bench"] = done.user + done.system - own.user - own.system
                self.spent["child"] = (  # processes started and reaped inside the block
                    done.children_user
                    + done.children_system
                    - own.children_user
                    - own.children_system
                )

    def per_gb(self, size: int) -> str:
        """``name s/GB`` for each process, the total and the cores kept busy, then the host's
        steal (as CPU s/GB, so it compares with the total)."""
        gb = size / 1e9
        parts = [f"{name} {spent / gb:.2f}" for name, spent in self.spent.items() if spent > 0.01]
        total = sum(self.spent.values())
        return (
            f"{' + '.join(parts)} = {total / gb:.2f} CPU s/GB ({total / self.wall:.2f} cores busy)"
            f"; host steal {self.stolen / gb:.2f}"
        )


def mem_free() -> int:
    """Free RAM in bytes (``MemFree``), whether or not the host still backs it."""
    with open("/proc/meminfo") as info:
        for line in info:
            if line.startswith("MemFree:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no MemFree in /proc/meminfo")


class HotMemory:
    """Hands a phase RAM that was freed a moment ago, so every phase pays the same for it.

    This machine is a VM whose kernel hands free RAM back to its host (virtio free page
    reporting, see ``/sys/module/page_reporting``) once more than about 1 GiB waits unused.
    The first write to a page handed back costs the writer about 2 CPU-seconds per GB in the
    kernel (measured with ``dd`` into tmpfs: 0.4 s per GiB into pages freed a moment ago,
    up to 2.5 s per GiB into pages handed back). Every phase of the throughput benchmarks
    stores what it receives, so which phase ran into handed-back pages, and how many, decided
    more of its figure than the code under test did: the same upload ran at 280 and at
    900 MB/s.

    So before a phase, a ballast file in ``/dev/shm`` of the phase's size is written (the
    slow first touch happens here, before the clock) and its first 768 MiB are freed; while
    the phase runs, a thread frees 64 MiB more whenever fewer than 256 MiB of what it freed
    are still unused. The phase's allocations then find pages freed moments ago, as they
    would on a machine that keeps its RAM. The thread's CPU (about 0.1 s per GB freed) is the
    ``bench`` process's and is counted. Without ``/dev/shm`` room, or with
    ``BENCH_HOT_MEMORY=0``, phases run without it.
    """

    STEP = 64 * 2**20
    PRIMED = 768 * 2**20
    POOL = 256 * 2**20

    def __init__(self, need: int) -> None:
        self.need = need + self.POOL if need else 0
        self.path: Path | None = None
        self._size = 0
        self._baseline = 0
        self._released = 0
        self._stop = threading.Event()

    def __enter__(self) -> HotMemory:
        shm = Path("/dev/shm")
        enabled = os.environ.get("BENCH_HOT_MEMORY", "1") != "0"
        if not (self.need and enabled and shm.is_dir()):
            return self
        if shutil.disk_usage(shm).free < self.need + 2**30:
            return self
        fd, name = tempfile.mkstemp(prefix="recstore-bench-hot-", dir=shm)
        self.path = Path(name)
        block = bytes(self.STEP)
        try:
            with os.fdopen(fd, "wb") as out:
                while self._size < self.need:
                    out.write(block)
                    self._size += len(block)
        except BaseException:  # interrupted: leave no ballast behind in RAM
            self.path.unlink()
            raise
        self._baseline = mem_free()
        self._release(self.PRIMED)
        return self

    def _release(self, amount: int) -> None:
        assert self.path is not None
        while amount > 0 and self._size:
            self._size = max(0, self._size - self.STEP)
            os.truncate(self.path, self._size)
            self._released += self.STEP
            amount -= self.STEP

    @contextmanager
    def feeding(self) -> Iterator[None]:
        """Free the ballast bit by bit, as the block's processes use up what was freed."""
        if self.path is None:
            yield
            return
        thread = threading.Thread(target=self._feed, name="hot-memory", daemon=True)
        thread.start()
        try:
            yield
        finally:
            self._stop.set()
            thread.join()

    def _feed(self) -> None:
        # The lowest priority (Linux gives each thread its own nice value): freeing pages costs
        # ~0.1 CPU-s per GB, and at normal priority it preempted the processes under test when
        # they kept both cores busy (measured, (c) at 1 GiB, five interleaved pairs: 568 → 616
        # MB/s median, every pair faster). The phases leave enough idle time for it to keep up.
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        while not self._stop.wait(0.02):
            taken = self._baseline + self._released - mem_free()
            self._release(self.POOL - (self._released - taken))

    def __exit__(self, *exc_info: object) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def start_daemon(config: Path, log: Path) -> subprocess.Popen[bytes]:
    """``recstore run --config CONFIG`` in the background, its log (stderr) written to ``log``."""
    with log.open("w") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "recstore", "run", "--config", str(config)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=out,
        )


def start_devstack(
    work: Path, data_dir: Path | None = None, tls: Certificates | None = None
) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """``recstore devstack up`` in the background (its stand-ins on HTTPS with ``tls``); the
    process and its state once it answers."""
    state_file = work / "state.json"
    proc = subprocess.Popen(
        up_command(state_file, data_dir, (tls.cert_file, tls.key_file) if tls else None),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    deadline = time.monotonic() + 60
    while not state_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("the dev stack did not start")
        time.sleep(0.1)
    return proc, json.loads(state_file.read_text())


class Stack:
    """``rclone serve s3`` on a folder plus ``recstore devstack up``, stopped together.

    With ``tls`` (``BENCH_TLS=1``), both serve HTTPS with a certificate of a CA made at start
    (:func:`recstore.devstack.tls.throwaway_ca`), which recstore trusts through its settings
    (``aws.caBundle``, ``dracoon.caFile``) and the bench's own clients through theirs.
    """

    def __init__(self, work: Path, buckets: tuple[str, ...], tls: bool = False) -> None:
        self.work = work
        self.tls = throwaway_ca(work / "tls") if tls else None
        self.scheme = "https" if tls else "http"
        self.s3_root = work / "s3"
        self.buckets = buckets
        self.rclone = shutil.which("rclone", path=str(Path(sys.executable).parent)) or "rclone"
        self.s3_port = free_port()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.state: dict[str, Any] = {}

    def start(self) -> None:
        for bucket in self.buckets:
            (self.s3_root / bucket).mkdir(parents=True, exist_ok=True)
        address, auth = f"127.0.0.1:{self.s3_port}", f"{KEY},{SECRET}"
        # No read-ahead buffer: it hides a slow remote's latency, but the files here are in
        # local RAM, and filling it is one more copy of every byte served, in another goroutine,
        # on the cores the benchmarked pipeline needs (measured, 1 GiB in 20 MB ranged GETs,
        # five interleaved pairs: 0.89 → 0.62 CPU-s per GB served, median). A real S3 spends
        # none of this machine's CPU.
        # An object's ETag is the MD5 of its file, which rclone computes on the first HEAD
        # (2 CPU-s per GiB) and forgets when its directory cache expires (5 min by default).
        # The next phase to HEAD the object then pays again: (c), whose job HEADs its source
        # inside the clock, lost half its rate in such a round; (a) HEADs before its clock.
        # S3 keeps the ETag with the object, so the cache lasts the whole run here.
        command = [self.rclone, "serve", "s3", "--addr", address, "--auth-key", auth]
        if self.tls is not None:
            command += ["--cert", str(self.tls.cert_file), "--key", str(self.tls.key_file)]
        self.procs["rclone"] = subprocess.Popen(
            [*command, "--buffer-size", "0", "--dir-cache-time", "24h", str(self.s3_root)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.procs["devstack"], self.state = start_devstack(
            self.work, self.work / "devstack", self.tls
        )
        wait_port(self.s3_port)

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()

    @property
    def s3_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.s3_port}"

    def http(self) -> aiohttp.ClientSession:
        """A session for the bench's own calls to the stand-ins (trusting the CA in TLS mode)."""
        return http_session(60, ca_file=self.tls.ca_file if self.tls else None)

    def meter(self, **more: int) -> CpuMeter:
        """A CPU meter over rclone, the dev stack and ``more`` (name=pid), plus this process."""
        return CpuMeter({**{name: p.pid for name, p in self.procs.items()}, **more})

    @property
    def s3_settings(self) -> AwsSettings:
        return AwsSettings(
            region="us-east-1",
            s3_endpoint_url=self.s3_url,
            ca_bundle=self.tls.ca_file if self.tls else None,
            access_key_id=KEY,
            secret_access_key=SecretStr(SECRET),
        )

    def point_config_at_s3(self, doc: dict[str, Any]) -> None:
        """Make a recstore configuration (from ``app_config``) use this rclone for S3."""
        doc["aws"]["s3EndpointUrl"] = self.s3_url
        if self.tls is not None:  # trusted through recstore's settings, checked as usual
            doc["aws"]["caBundle"] = str(self.tls.ca_file)
            doc.setdefault("dracoon", {})["caFile"] = str(self.tls.ca_file)
        doc["aws"]["accessKeyId"], doc["aws"]["secretAccessKey"] = KEY, SECRET
