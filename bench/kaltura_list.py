"""Listing every entry that matches a filter, side by side in one run:

  (a) ``recstore kaltura list`` (a real process): the windowed ``+createdAt`` iterator
  (b) the official ``kalturaapiclient`` paging by ``pageIndex``, as the seed tools did

against the Kaltura stand-in (``recstore devstack up``) seeded with 50,000 matching entries
plus 5,000 that do not match. Prints entries/s and how many each returned, and recstore's
peak RSS. (b) stops at 10,000: Kaltura refuses a page past that with
``QUERY_EXCEEDED_MAX_MATCHES_ALLOWED`` (as kaltura/server does; docs/fidelity.md).

    python bench/kaltura_list.py              # 50,000 entries
    BENCH_ENTRIES=20000 python bench/kaltura_list.py
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from _stack import setting, start_devstack
from KalturaClient import KalturaClient, KalturaConfiguration
from KalturaClient.exceptions import KalturaException
from KalturaClient.Plugins.Core import KalturaFilterPager, KalturaMediaEntryFilter

from recstore.devstack.appconfig import app_config
from recstore.devstack.kaltura_ks import make_ks

ROOT = Path(__file__).resolve().parents[1]
ENTRIES = int(setting("BENCH_ENTRIES", "50000", "2000"))
TAG = "bench_match"
RECSTORE = (sys.executable, "-m", "recstore")


def seed(state: dict[str, Any], work: Path) -> None:
    start = 1_400_000_000
    entries = [
        {
            "id": f"0_b{i:06d}",
            "name": f"Recording {i}",
            "createdAt": start + i // 3,  # three per second: windows meet ties
            "tags": TAG if i % 11 else "other",
            "plays": i % 7,
            "userId": f"user{i % 300}",
            "flavors": [],
        }
        for i in range(ENTRIES + ENTRIES // 10)
    ]
    seed_file = work / "seed.json"
    seed_file.write_text(json.dumps({"entries": entries}))
    state_file = work / "state.json"
    subprocess.run(
        [
            *RECSTORE,
            "devstack",
            "seed",
            "kaltura",
            "--state-file",
            str(state_file),
            "--file",
            str(seed_file),
        ],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def expected_matches() -> int:
    return sum(1 for i in range(ENTRIES + ENTRIES // 10) if i % 11)


def recstore_list(config: Path) -> tuple[int, float, float]:
    """Entries listed, seconds, peak RSS in MiB of the ``recstore kaltura list`` process."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*RECSTORE, "kaltura", "list", "--tag", TAG, "--config", str(config)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    rows = sum(1 for _ in proc.stdout) - 1  # minus the header
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"recstore kaltura list failed ({status})")
    return rows, elapsed, usage.ru_maxrss / 1024


def official_list(state: dict[str, Any]) -> tuple[int, float, str]:
    """Entries listed, seconds and why it stopped: paging by pageIndex until a page comes back
    short, or Kaltura refuses the next page."""
    client = KalturaClient(KalturaConfiguration(serviceUrl=state["kaltura_url"]))
    client.setKs(
        make_ks(
            state["kaltura_admin_secret"],
            state["kaltura_partner_id"],
            "bench",
            2,
            privileges="disableentitlement",
        )
    )
    flt = KalturaMediaEntryFilter()
    flt.tagsLike = TAG
    flt.orderBy = "+createdAt"
    seen = 0
    started = time.perf_counter()
    index = 1
    while True:
        try:
            page = client.media.list(flt, KalturaFilterPager(pageSize=500, pageIndex=index))
        except KalturaException as exc:
            if exc.code != "QUERY_EXCEEDED_MAX_MATCHES_ALLOWED":
                raise
            return seen, time.perf_counter() - started, f"page {index} refused: {exc.code}"
        seen += len(page.objects)
        if len(page.objects) < 500:
            return seen, time.perf_counter() - started, f"page {index} short"
        index += 1


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-kaltura-") as tmp:
        work = Path(tmp)
        proc, state = start_devstack(work)
        try:
            seed(state, work)
            config = work / "app.yaml"
            doc = app_config(state)
            doc["workers"] = {
                "FileTransferer": {"enabled": False},
                "DracoonGlobalSharer": {"count": 0},
            }
            config.write_text(yaml.safe_dump(doc))
            wanted = expected_matches()
            ours, ours_s, rss = recstore_list(config)
            theirs, theirs_s, stop = official_list(state)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    ours_rate, theirs_rate = ours / ours_s, theirs / theirs_s
    print(f"matching entries seeded:              {wanted:>8,}")
    print(
        f"(a) recstore kaltura list:            {ours:>8,} in {ours_s:6.2f} s = {ours_rate:8,.0f}/s"
    )
    print(
        f"(b) kalturaapiclient by pageIndex:    {theirs:>8,} in {theirs_s:6.2f} s"
        f" = {theirs_rate:8,.0f}/s ({stop})"
    )
    print(f"entries/s (a) / (b):                  {ours_rate / theirs_rate:8.2f}")
    print(f"recstore returned every match:        {ours == wanted}")
    print(f"recstore peak RSS:                    {rss:8.1f} MiB")


if __name__ == "__main__":
    main()
