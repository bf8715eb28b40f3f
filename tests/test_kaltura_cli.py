"""``recstore kaltura list|count|health|stats`` as operators run them, against the dev stack.

One seeded entry per health invariant it breaks (and healthy ones beside them), S3 copies put
into the dev stack's moto, the reports read back in each format.
"""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from recstore.devstack.appconfig import app_config
from recstore.devstack.seed import seed_stand_in
from tests.archive_helpers import sync_s3
from tests.conftest import StackProcess, clean_env, run_cli

LIST_HEADER = (
    "last_played_date\tplays\tentry_id\tstatus\tarchived_to_s3\tflavors_deleted\t"
    "created_date\tcreated\tcreator_id\tcategory_ids\tcategories"
)
HEALTH_HEADER = (
    "entry_id\tstatus-ok\toriginal\torig_status\tarchived_to_s3\tflavors_deleted\t"
    "created_date\ts3-size\torig_KB\tsize_match\tmessage"
)
MB = 1_000_000


def original(size: int | None = None, *, kb: int | None = None, status: int = 2) -> dict[str, Any]:
    if kb is not None:
        return {"isOriginal": True, "size": kb, "reportBytes": False, "status": status}
    return {"isOriginal": True, "sizeInBytes": size, "status": status}


#: entry id suffix → (tags, flavors, S3 object size or None, expected problem or None)
CASES: dict[str, tuple[str, list[dict[str, Any]], int | None, str | None]] = {
    "initial": ("lecture", [original(MB)], None, None),
    "archived": ("archived_to_s3", [original(MB)], MB, None),
    "placeholder": ("archived_to_s3,flavors_deleted", [original(2000)], MB, None),
    "alias": ("archived_to_s3,place_holder_video", [original(2000)], MB, None),
    "kb_close": ("archived_to_s3", [original(kb=1000)], 1000 * 1024 * 102 // 100, None),
    "word_only": ("archived_to_s3_old", [original(MB)], None, None),
    "big": ("", [original(kb=11_000_000)], None, None),
    "no_original": ("", [], None, "no original flavor"),
    "orig_error": ("", [original(MB, status=-1)], None, "original flavor is ERROR, not READY"),
    "s3_untagged": ("", [original(MB)], MB, "in S3 but not tagged archived_to_s3"),
    "tag_no_s3": ("archived_to_s3", [original(MB)], None, "tagged archived_to_s3 but not in S3"),
    "deleted_only": (
        "flavors_deleted",
        [original(MB)],
        None,
        "tagged flavors_deleted but not archived_to_s3",
    ),
    "size_off": ("archived_to_s3", [original(MB)], MB + 1, "S3 copy has 1000001 bytes"),
    "kb_far": ("archived_to_s3", [original(kb=1000)], 1000 * 1024 * 105 // 100, "S3 copy"),
}
PREFIX = "9_cli"
T0 = 1_400_000_000


@pytest.fixture(scope="module")
def kaltura_stack(devstack: StackProcess, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dev stack seeded with :data:`CASES`; a config file pointing at it."""
    import asyncio

    state = devstack.state
    entries = []
    for n, (name, (tags, flavors, _, _)) in enumerate(CASES.items()):
        entries.append(
            {
                "id": f"{PREFIX}_{name}",
                "name": f"case {name}",
                "createdAt": T0 + n * 86400,
                "lastPlayedAt": None if n % 2 else T0 + 400 * 86400,
                "plays": 0 if n % 2 else 3,
                "tags": tags,
                "categories": "MediaSpace>site>galleries>Lectures",
                "userId": f"netid{n}",
                "flavors": flavors,
            }
        )
    asyncio.run(seed_stand_in(state, "kaltura", {"entries": entries}))
    doc = app_config(state)
    bucket = doc["archive"]["bucket"]
    s3 = sync_s3(state)
    for name, (_, _, size, _) in CASES.items():
        if size is not None:
            s3.put_object(Bucket=bucket, Key=f"{PREFIX}_{name}", Body=b"\0" * size)
    config = tmp_path_factory.mktemp("kaltura-cli") / "app.yaml"
    config.write_text(yaml.safe_dump(doc))
    return config


def kaltura(config: Path, *args: str) -> Any:
    return run_cli("kaltura", *args, "--config", str(config), timeout=120)


def ids(*names: str) -> list[str]:
    return [arg for name in names for arg in ("--id", f"{PREFIX}_{name}")]


def test_health_names_each_broken_invariant(kaltura_stack: Path) -> None:
    result = kaltura(kaltura_stack, "health", *ids(*CASES))
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == HEALTH_HEADER
    rows = {r["entry_id"]: r for r in csv.DictReader(io.StringIO(result.stdout), delimiter="\t")}
    assert len(rows) == len(CASES)
    for name, (_, _, _, problem) in CASES.items():
        row = rows[f"{PREFIX}_{name}"]
        if problem is None:
            assert row["status-ok"] == "HEALTHY", (name, row)
        else:
            assert row["status-ok"] == "UNHEALTHY", (name, row)
            assert problem in row["message"], (name, row)
    assert rows[f"{PREFIX}_alias"]["flavors_deleted"] == "True"
    assert rows[f"{PREFIX}_word_only"]["archived_to_s3"] == "False"
    assert rows[f"{PREFIX}_archived"]["size_match"] == "True"
    assert rows[f"{PREFIX}_archived"]["s3-size"] == str(MB)
    assert rows[f"{PREFIX}_kb_close"]["size_match"] == "True"
    assert "above the archive limit" in rows[f"{PREFIX}_big"]["message"]
    unhealthy = sum(1 for c in CASES.values() if c[3])
    assert f"{len(CASES)} entries checked, {unhealthy} unhealthy" in result.stderr

    healthy = [n for n, c in CASES.items() if c[3] is None]
    assert kaltura(kaltura_stack, "health", *ids(*healthy)).returncode == 0


def test_list_columns_and_formats(kaltura_stack: Path) -> None:
    result = kaltura(kaltura_stack, "list", *ids("archived", "alias", "initial"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == LIST_HEADER
    assert len(lines) == 4
    row = dict(zip(LIST_HEADER.split("\t"), lines[2].split("\t"), strict=True))
    assert row["entry_id"] == f"{PREFIX}_archived"  # oldest first
    assert row["status"] == "READY"
    assert row["archived_to_s3"] == "True"
    assert row["flavors_deleted"] == "False"
    assert row["created"] == str(T0 + 86400)
    assert row["created_date"] == time.strftime("%Y-%m-%d", time.gmtime(T0 + 86400))
    assert row["last_played_date"] == ""  # never played
    assert row["plays"] == "0"
    assert row["creator_id"] == "netid1"
    assert row["categories"] == "MediaSpace>site>galleries>Lectures"
    assert row["category_ids"].isdigit()

    as_csv = kaltura(kaltura_stack, "list", *ids("archived"), "--format", "csv")
    first = next(iter(csv.DictReader(io.StringIO(as_csv.stdout))))
    assert first["entry_id"] == f"{PREFIX}_archived"
    as_json = kaltura(kaltura_stack, "list", *ids("archived", "alias"), "--format", "json")
    objects = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [o["entry_id"] for o in objects] == [f"{PREFIX}_archived", f"{PREFIX}_alias"]
    assert objects[1]["flavors_deleted"] is True

    flavors = kaltura(kaltura_stack, "list", *ids("no_original", "initial"), "--mode", "flavor")
    rows = list(csv.DictReader(io.StringIO(flavors.stdout), delimiter="\t"))
    assert [(r["entry_id"], r["is_original"], r["size_bytes"]) for r in rows] == [
        (f"{PREFIX}_initial", "True", str(MB))
    ]


def test_count_and_stats(kaltura_stack: Path) -> None:
    every = ids(*CASES)
    assert kaltura(kaltura_stack, "count", *every).stdout.strip() == str(len(CASES))
    untagged = kaltura(kaltura_stack, "count", *every, "--tag", "!archived_to_s3")
    expected = sum(1 for c in CASES.values() if "archived_to_s3" not in c[0].split(","))
    assert untagged.stdout.strip() == str(expected)

    result = kaltura(kaltura_stack, "stats", *every)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout), delimiter="\t"))
    total = rows[-1]
    assert total["year"] == "all"
    assert int(total["created"]) == len(CASES)
    assert int(total["place_holder"]) == 3  # placeholder, alias, deleted_only
    placeholder_words = {"flavors_deleted", "place_holder_video"}
    archived = sum(
        1
        for tags, *_ in CASES.values()
        if "archived_to_s3" in tags.split(",") and not placeholder_words & set(tags.split(","))
    )
    assert int(total["archived"]) == archived
    never = next(r for r in rows if r["year"] == "never")
    assert int(never["last_played"]) == len(CASES) // 2
    assert float(total["savable_TB"]) >= 0.011  # the 11,000,000 KB original alone


def test_bad_input_and_unreachable_kaltura(kaltura_stack: Path, tmp_path: Path) -> None:
    bad = kaltura(kaltura_stack, "count", "--status", "ready")
    assert bad.returncode == 2
    assert "--status" in bad.stderr

    idle = tmp_path / "idle.yaml"
    idle.write_text(
        yaml.safe_dump(
            {"workers": {"FileTransferer": {"enabled": False}, "DracoonGlobalSharer": {"count": 0}}}
        )
    )
    no_kaltura = run_cli("kaltura", "count", "--config", str(idle), env=clean_env())
    assert no_kaltura.returncode == 2
    assert "kaltura.serviceUrl" in no_kaltura.stderr

    doc = yaml.safe_load(kaltura_stack.read_text())
    doc["kaltura"]["serviceUrl"] = "http://127.0.0.1:9"  # nothing listens there
    broken = tmp_path / "app.yaml"
    broken.write_text(yaml.safe_dump(doc))
    down = run_cli(
        "kaltura", "count", "--config", str(broken), env=clean_env(RECSTORE_KALTURA__TIMEOUT="2")
    )
    assert down.returncode == 1
    assert "kaltura" in down.stderr
    assert doc["kaltura"]["adminSecret"] not in down.stderr + down.stdout


def test_progress_bar_only_on_a_terminal(kaltura_stack: Path) -> None:
    """stderr a terminal: a bar that reaches the total; stderr a pipe: no bar at all."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import sys
    import termios

    from tests.conftest import ROOT

    every = ids(*CASES)
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "recstore",
                "kaltura",
                "list",
                *every,
                "--config",
                str(kaltura_stack),
            ],
            stdout=subprocess.PIPE,
            stderr=follower,
            env=clean_env(COLUMNS="120"),
            cwd=ROOT,
            timeout=60,
            check=False,
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the other side is closed and drained
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(leader)
    assert proc.returncode == 0
    bar = b"".join(chunks).decode(errors="replace")
    assert f"{len(CASES)}/{len(CASES)}" in bar
    assert "entries" in bar
    assert proc.stdout.decode().count("\n") == len(CASES) + 1

    piped = kaltura(kaltura_stack, "list", *every)
    assert piped.stderr == ""
