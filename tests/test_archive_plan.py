"""The archive queue's messages and the planners' steps (pure: no remote involved)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import pytest

from recstore.archive.actions import REPLACE_VIDEO, RESTORE, S3COPY
from recstore.archive.filters import Selection
from recstore.archive.plan import (
    ArchiveJob,
    archive_steps,
    parse_job,
    plan,
    report_prefix,
    restore_steps,
    run_id,
)
from recstore.archive.states import ArchiveTags
from recstore.clients.kaltura_types import KalturaMediaEntry
from recstore.common.errors import PermanentJobError


def test_a_job_survives_the_queue_and_chains() -> None:
    job = ArchiveJob("archive-x", S3COPY, "0_a", True, "log/2026/11/archive-x/", REPLACE_VIDEO)
    again = parse_job(job.to_json())
    assert again == job
    follow = again.follow_up()
    assert follow is not None
    assert (follow.action, follow.entry_id, follow.then) == (REPLACE_VIDEO, "0_a", None)
    assert follow.follow_up() is None


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("{", "not JSON"),
        ("[]", "not a JSON object"),
        ('{"version": 2}', "version 2"),
        (
            json.dumps({"version": 1, "run": "r", "action": "delete", "entryId": "e"}),
            "action must be one of",
        ),
        (
            json.dumps(
                {"version": 1, "run": "r", "action": "restore", "entryId": "", "report": "x/"}
            ),
            "entryId must be a non-empty string",
        ),
    ],
)
def test_malformed_messages_are_permanent_failures(body: str, fragment: str) -> None:
    with pytest.raises(PermanentJobError, match=fragment):
        parse_job(body)


def test_the_seed_002_steps() -> None:
    tags = ArchiveTags()
    replace, copy = archive_steps(tags, 2.0)
    assert (replace.action, copy.action, copy.then) == (REPLACE_VIDEO, S3COPY, REPLACE_VIDEO)
    assert copy.selection.tags == ("!archived_to_s3",)
    assert replace.selection.tags == (
        "archived_to_s3",
        "!flavors_deleted",
        "!place_holder_video",
        "!deleted_flavors",
    )
    assert copy.selection.unplayed_for == replace.selection.unplayed_for == 2.0
    restores = restore_steps(tags, 1.0, max_entries=5)
    assert [s.selection.tags for s in restores] == [
        ("flavors_deleted",),
        ("place_holder_video",),
        ("deleted_flavors",),
    ]
    assert {s.action for s in restores} == {RESTORE}
    assert restores[0].selection.max_entries == 5


def test_run_ids_and_report_places() -> None:
    at = datetime(2026, 1, 31, 23, 59, 58, tzinfo=UTC)
    assert run_id("restore", at) == "restore-20260131T235958Z"
    assert report_prefix("log/", "restore-20260131T235958Z", at) == (
        "log/2026/01/restore-20260131T235958Z/"
    )


class Recorder:
    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    async def send_batch(self, bodies: Sequence[str]) -> None:
        assert 1 <= len(bodies) <= 10
        self.batches.append(list(bodies))


async def test_plan_batches_and_plans_an_entry_once_per_action() -> None:
    listed: dict[tuple[str, ...], list[str]] = {
        ("flavors_deleted",): [f"0_{i}" for i in range(23)],
        ("place_holder_video",): ["0_5", "0_99"],  # 0_5 carries both names
        ("deleted_flavors",): ["0_7"],  # seed 001 README's name, also both
    }

    async def select(selection: Selection) -> AsyncIterator[KalturaMediaEntry]:
        for entry_id in listed[selection.tags]:
            yield KalturaMediaEntry(id=entry_id)

    sender = Recorder()
    summary = await plan(
        restore_steps(ArchiveTags(), 1.0), select, sender, run="r1", apply=False, report="log/x/"
    )
    assert summary.planned == {RESTORE: 24}
    assert [len(b) for b in sender.batches] == [10, 10, 3, 1]
    jobs = [parse_job(body) for batch in sender.batches for body in batch]
    assert sorted(j.entry_id for j in jobs) == sorted({*listed[("flavors_deleted",)], "0_99"})
    assert {(j.run_id, j.apply, j.report_prefix) for j in jobs} == {("r1", False, "log/x/")}
    assert summary.rows()[0] == {"run": "r1", "action": RESTORE, "planned": 24, "apply": False}
