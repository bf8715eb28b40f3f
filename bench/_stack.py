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
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from recstore.config import AwsSettings
from recstore.devstack.stack import up_command

ROOT = Path(__file__).resolve().parents[1]
KEY, SECRET = "bench", "bench-secret"
MB = 1e6
_TICKS = os.sysconf("SC_CLK_TCK")


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


@dataclass
class CpuMeter:
    """CPU seconds spent by named processes during one ``with`` block.

    ``"bench"`` is this process; ``"child"`` any child process that ended inside the block.
    """

    pids: Mapping[str, int]
    spent: dict[str, float] = field(default_factory=dict)
    wall: float = 0.0

    @contextmanager
    def measure(self) -> Iterator[None]:
        """Meter the block; dirty pages of earlier phases are written out first.

        The stand-ins and rclone keep what they receive on disk, so a phase would otherwise
        share the cores with the kernel writing back the gigabytes of the phase before.
        """
        os.sync()
        before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        own = os.times()
        started = time.perf_counter()
        try:
            yield
        finally:
            self.wall = time.perf_counter() - started
            done = os.times()
            self.spent = {name: cpu_seconds(pid) - before[name] for name, pid in self.pids.items()}
            self.spent["bench"] = done.user + done.system - own.user - own.system
            self.spent["child"] = (  # processes started and reaped inside the block
                done.children_user + done.children_system - own.children_user - own.children_system
            )

    def per_gb(self, size: int) -> str:
        """``name s/GB`` for each process, then the total and the cores kept busy."""
        gb = size / 1e9
        parts = [f"{name} {spent / gb:.2f}" for name, spent in self.spent.items() if spent > 0.01]
        total = sum(self.spent.values())
        return (
            f"{' + '.join(parts)} = {total / gb:.2f} CPU s/GB ({total / self.wall:.2f} cores busy)"
        )


def start_devstack(
    work: Path, data_dir: Path | None = None
) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """``recstore devstack up`` in the background; the process and its state once it answers."""
    state_file = work / "state.json"
    proc = subprocess.Popen(
        up_command(state_file, data_dir),
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
    """``rclone serve s3`` on a folder plus ``recstore devstack up``, stopped together."""

    def __init__(self, work: Path, buckets: tuple[str, ...]) -> None:
        self.work = work
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
        self.procs["rclone"] = subprocess.Popen(
            [self.rclone, "serve", "s3", "--addr", address, "--auth-key", auth, str(self.s3_root)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.procs["devstack"], self.state = start_devstack(self.work, self.work / "devstack")
        wait_port(self.s3_port)

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()

    def meter(self, **more: int) -> CpuMeter:
        """A CPU meter over rclone, the dev stack and ``more`` (name=pid), plus this process."""
        return CpuMeter({**{name: p.pid for name, p in self.procs.items()}, **more})

    @property
    def s3_settings(self) -> AwsSettings:
        return AwsSettings(
            region="us-east-1",
            s3_endpoint_url=f"http://127.0.0.1:{self.s3_port}",
            access_key_id=KEY,
            secret_access_key=SecretStr(SECRET),
        )

    def point_config_at_s3(self, doc: dict[str, Any]) -> None:
        """Make a recstore configuration (from ``app_config``) use this rclone for S3."""
        doc["aws"]["s3EndpointUrl"] = f"http://127.0.0.1:{self.s3_port}"
        doc["aws"]["accessKeyId"], doc["aws"]["secretAccessKey"] = KEY, SECRET
