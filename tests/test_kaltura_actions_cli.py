"""``recstore kaltura s3copy|replace-video|restore|repair`` as operators run them (dev stack).

Dry runs first (nothing changes anywhere, every row says what would happen), then the
archive cycle with ``--apply``, checked by ``recstore kaltura health``.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from recstore.devstack.appconfig import app_config
from recstore.devstack.seed import seed_stand_in
from tests.archive_helpers import ARCHIVE_BUCKET, entry, sync_s3, video
from tests.conftest import StackProcess, run_cli

PREFIX = "9_act"
OUTCOME_HEADER = "entry_id\taction\toutcome\treason\tmode\tbytes\tseconds"


def ids(*names: str) -> list[str]:
    return [arg for name in names for arg in ("--id", f"{PREFIX}_{name}")]


@pytest.fixture(scope="module")
def setup(devstack: StackProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    state = devstack.state
    tmp = tmp_path_factory.mktemp("kaltura-actions")
    placeholder = tmp / "placeholder.mp4"
    placeholder.write_bytes(b"placeholder " * 300)
    entries = [
        entry(f"{PREFIX}_a", video(6 * 1024 * 1024 + 5)),
        entry(f"{PREFIX}_b", video(1024 * 1024)),
        entry(f"{PREFIX}_lost", video(1024), tags="flavors_deleted,archived_to_s3"),
    ]
    asyncio.run(seed_stand_in(state, "kaltura", {"entries": entries}))
    doc = app_config(state)
    doc["archive"].update(
        placeholderVideo=str(placeholder),
        partSize="5MiB",
        readyPoll=0.1,
        readyTimeout=60,
    )
    config = tmp / "app.yaml"
    config.write_text(yaml.safe_dump(doc))
    s3 = sync_s3(state)
    return {"config": config, "s3": s3, "state": state}


def kaltura(setup: dict[str, Any], *args: str) -> Any:
    return run_cli("kaltura", *args, "--config", str(setup["config"]), timeout=180)


def rows(stdout: str) -> dict[str, dict[str, str]]:
    return {
        r["entry_id"].removeprefix(f"{PREFIX}_"): r
        for r in csv.DictReader(io.StringIO(stdout), delimiter="\t")
    }


def kaltura_state(state: dict[str, Any]) -> Any:
    """This module's entries and their flavors as the stand-in holds them: other tests share
    the dev stack, and its conversions of their entries finish whenever they do."""
    import json
    import urllib.request

    with urllib.request.urlopen(f"{state['kaltura_url']}/_devstack/state") as answer:  # noqa: S310
        whole = json.load(answer)
    ours = f"{PREFIX}_"
    return {
        "entries": [e for e in whole["entries"] if str(e["id"]).startswith(ours)],
        "flavors": [f for f in whole["flavors"] if str(f["entryId"]).startswith(ours)],
    }


def bucket_state(s3: Any) -> Any:
    """This module's archived copies (the runs' reports under log/ aside: every run writes
    one)."""
    listing = s3.list_objects_v2(Bucket=ARCHIVE_BUCKET).get("Contents", [])
    return sorted(
        (o["Key"], o["Size"], o["ETag"], o.get("StorageClass"))
        for o in listing
        if o["Key"].startswith(f"{PREFIX}_")
    )


def reports(s3: Any, prefix: str = "log/") -> list[str]:
    listing = s3.list_objects_v2(Bucket=ARCHIVE_BUCKET, Prefix=prefix).get("Contents", [])
    return sorted(o["Key"] for o in listing)


def test_dry_runs_print_what_would_happen_and_change_nothing(setup: dict[str, Any]) -> None:
    before = (kaltura_state(setup["state"]), bucket_state(setup["s3"]))
    copy = kaltura(setup, "s3copy", *ids("a", "b", "lost"))
    assert copy.returncode == 0, copy.stderr
    assert copy.stdout.splitlines()[0] == OUTCOME_HEADER
    found = rows(copy.stdout)
    assert found["a"]["outcome"] == "WOULD_DO"
    assert found["a"]["mode"] == "dry-run"
    assert f"s3://{ARCHIVE_BUCKET}/{PREFIX}_a" in found["a"]["reason"]
    assert found["lost"]["outcome"] == "SKIPPED"
    assert "s3copy: 3 entries: 2 WOULD_DO, 1 SKIPPED (dry run" in copy.stderr
    for command in ("replace-video", "restore", "repair"):
        result = kaltura(setup, command, *ids("a", "b"), "--format", "json")
        assert result.returncode == 0, result.stderr
        assert "dry run" in result.stderr
    assert (kaltura_state(setup["state"]), bucket_state(setup["s3"])) == before


def test_apply_runs_the_cycle_and_health_agrees(setup: dict[str, Any]) -> None:
    copy = kaltura(setup, "s3copy", "--apply", *ids("a", "b"))
    assert copy.returncode == 0, copy.stderr
    assert {r["outcome"] for r in rows(copy.stdout).values()} == {"DONE"}
    assert rows(copy.stdout)["a"]["bytes"] == str(6 * 1024 * 1024 + 5)
    replace = kaltura(setup, "replace-video", "--apply", "--concurrency", "2", *ids("a", "b"))
    assert replace.returncode == 0, replace.stderr
    assert {r["outcome"] for r in rows(replace.stdout).values()} == {"DONE"}
    again = kaltura(setup, "replace-video", "--apply", *ids("a", "b"))
    assert {r["outcome"] for r in rows(again.stdout).values()} == {"DONE_BEFORE"}

    healthy = kaltura(setup, "health", *ids("a", "b"))
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr

    # restore (moto restores at once unless told otherwise): ask Glacier, then put back
    first = kaltura(setup, "restore", "--apply", *ids("a"))
    assert rows(first.stdout)["a"]["outcome"] == "WAIT_GLACIER", first.stdout
    second = kaltura(setup, "restore", "--apply", *ids("a"))
    assert rows(second.stdout)["a"]["outcome"] == "DONE", second.stdout
    assert kaltura(setup, "health", *ids("a", "b")).returncode == 0


def test_a_failed_entry_is_its_row_and_the_exit_code(setup: dict[str, Any]) -> None:
    result = kaltura(setup, "restore", "--apply", *ids("lost", "b"))
    assert result.returncode == 1
    found = rows(result.stdout)
    assert found["lost"]["outcome"] == "FAILED"
    assert "no S3 copy" in found["lost"]["reason"]
    assert found["b"]["outcome"] in {"WAIT_GLACIER", "WOULD_DO", "DONE", "WAIT"}
    assert "1 FAILED" in result.stderr


def test_missing_placeholder_and_bucket_are_named(setup: dict[str, Any], tmp_path: Path) -> None:
    doc = yaml.safe_load(setup["config"].read_text())
    doc["archive"]["placeholderVideo"] = str(tmp_path / "nope.mp4")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    result = run_cli("kaltura", "replace-video", "--config", str(bad), *ids("a"))
    assert result.returncode == 2
    assert "archive.placeholderVideo" in result.stderr


def test_each_run_writes_its_report_to_s3_as_the_daemons_runs_do(setup: dict[str, Any]) -> None:
    """Seed 002's scheduled runs left their logs in the bucket under log/YYYY/MM; a CLI run
    writes the daemon's report there, unless --report-to none."""
    s3 = setup["s3"]
    result = kaltura(setup, "s3copy", *ids("a", "b"))
    assert result.returncode == 0, result.stderr
    [where] = [line for line in result.stderr.splitlines() if line.startswith("report: ")]
    prefix = where.removeprefix(f"report: s3://{ARCHIVE_BUCKET}/")
    assert re.fullmatch(r"log/\d{4}/\d{2}/cli-s3copy-\d{8}T\d{6}Z/", prefix), prefix
    rows_written = []
    for key in reports(s3, prefix):
        body = s3.get_object(Bucket=ARCHIVE_BUCKET, Key=key)["Body"].read().decode()
        rows_written += list(csv.DictReader(io.StringIO(body), delimiter="\t"))
    assert sorted(r["entry_id"] for r in rows_written) == [f"{PREFIX}_a", f"{PREFIX}_b"]
    assert {r["run"] for r in rows_written} == {prefix.rstrip("/").rsplit("/", 1)[1]}
    assert {r["mode"] for r in rows_written} == {"dry-run"}
    before = reports(s3)
    off = kaltura(setup, "s3copy", *ids("a"), "--report-to", "none")
    assert off.returncode == 0, off.stderr
    assert "report: " not in off.stderr
    assert reports(s3) == before
