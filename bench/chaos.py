"""Scale-out crash safety at size, for transfers and for the archive fan-out. N replicas of
``recstore run`` on one dev stack work while replicas are killed with SIGKILL or SIGTERM at
random from a seeded RNG; then everything is checked. The checks are those of the suite's
short variants, ``tests/test_chaos.py`` (``tests/chaos_helpers.py``).

Transfers: a few hundred jobs (some multi-chunk, some with several keys and targets); each
file in each target room exactly once, decrypting to the source's SHA-256 for every member,
sources deleted, queue and dead-letter queue empty, no replica crashed on its own, the
singleton sharer at most once per period.

Archive fan-out (a dev stack of its own): the Archiver planner (a singleton) enqueues an
s3copy per eligible Kaltura entry, the ArchiveActions pools of every replica copy and replace
each; every entry is archived exactly once (one S3 copy, one version, with the original's
bytes; the placeholder put in once; one original and one web flavor; both tags once), the
archive queue and its dead-letter queue empty, no replica crashed on its own.

Prints the seed (replay a run's kill schedule with ``--seed``), jobs/min or entries/min and
the kill count; exits 1 when a guarantee broke.

    python bench/chaos.py                          # 300 jobs, then 120 entries; 3 replicas
    BENCH_QUICK=1 python bench/chaos.py            # 60 jobs (6 kills), then 30 entries (4)
    python bench/chaos.py --replicas 4 --jobs 500 --kills 40 --seed 1234
    python bench/chaos.py --jobs 0 --archive 120   # the archive fan-out alone
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the suite's helpers: one way to check what landed

from tests.chaos_helpers import (  # noqa: E402
    ArchiveChaosPlan,
    ChaosPlan,
    run_archive_chaos,
    run_chaos,
)
from tests.conftest import StackProcess  # noqa: E402

T = TypeVar("T")


def on_own_stack(prefix: str, run: Callable[[StackProcess, Path], T]) -> T:
    """``run`` on a dev stack of its own, stopped afterwards, in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        stack = StackProcess(Path(tmp))
        try:
            return run(stack, Path(tmp))
        finally:
            stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")  # the smoke run's sizes
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument(
        "--jobs", type=int, default=60 if quick else 300, help="transfer jobs (0: none)"
    )
    parser.add_argument(
        "--archive",
        type=int,
        default=30 if quick else 120,
        metavar="ENTRIES",
        help="entries to archive (0: none)",
    )
    parser.add_argument(
        "--kills", type=int, default=6 if quick else 20, help="kills in the transfer run"
    )
    parser.add_argument("--archive-kills", type=int, default=4 if quick else 12)
    parser.add_argument("--seed", type=int, default=None, help="replay a run (default: random)")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    broken = False
    if args.jobs:
        plan = ChaosPlan(replicas=args.replicas, jobs=args.jobs, kills=args.kills, seed=seed)
        result = on_own_stack("recstore-chaos-", lambda stack, tmp: run_chaos(stack, tmp, plan))
        print(result.summary())
        broken = report(result.problems) or broken
    if args.archive:
        archive = ArchiveChaosPlan(
            replicas=args.replicas, entries=args.archive, kills=args.archive_kills, seed=seed
        )
        outcome = on_own_stack(
            "recstore-chaos-archive-", lambda stack, tmp: run_archive_chaos(stack, tmp, archive)
        )
        print(outcome.summary())
        broken = report(outcome.problems) or broken
    sys.exit(1 if broken else 0)


def report(problems: list[str]) -> bool:
    for problem in problems:
        print(f"  {problem}")
    return bool(problems)


if __name__ == "__main__":
    main()
