"""Scale-out crash safety at size: N replicas of ``recstore run`` on one dev stack take a few
hundred jobs (some multi-chunk, some with several keys and targets) while replicas are killed
with SIGKILL or SIGTERM at random from a seeded RNG; then every job is checked (each file in
each target room exactly once, decrypting to the source's SHA-256 for every member, sources
deleted, queue and dead-letter queue empty, no replica crashed on its own, the singleton sharer
at most once per period). Prints the seed (replay a run's kill schedule with ``--seed``),
jobs/min and the kill count; exits 1 when a guarantee broke. The checks are those of the
suite's short variant, ``tests/test_chaos.py`` (``tests/chaos_helpers.py``).

    python bench/chaos.py                          # 3 replicas, 300 jobs, 20 kills
    python bench/chaos.py --replicas 4 --jobs 500 --kills 40 --seed 1234
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the suite's helpers: one way to check what landed

from tests.chaos_helpers import ChaosPlan, run_chaos  # noqa: E402
from tests.conftest import StackProcess  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=None, help="replay a run (default: random)")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    plan = ChaosPlan(replicas=args.replicas, jobs=args.jobs, kills=args.kills, seed=seed)
    with tempfile.TemporaryDirectory(prefix="recstore-chaos-") as tmp:
        stack = StackProcess(Path(tmp))
        try:
            result = run_chaos(stack, Path(tmp), plan)
        finally:
            stack.stop()
    print(result.summary())
    for problem in result.problems:
        print(f"  {problem}")
    sys.exit(1 if result.problems else 0)


if __name__ == "__main__":
    main()
