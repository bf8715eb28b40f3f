"""The transfer rules in-process, against moto's S3 and the DRACOON stand-in."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from recstore.clients.aws import aws_client
from recstore.clients.dracoon import DracoonClient
from recstore.clients.dracoon_rooms import DracoonDestination, Room, RoomPaths, StoredFile
from recstore.clients.dracoon_wire import Node
from recstore.clients.s3 import OpenedObject, S3Store
from recstore.common.errors import PermanentJobError, RemoteError
from recstore.devstack.seed import aws_settings_from_state, seed_s3
from recstore.transfer.keys import AccountKeys
from recstore.transfer.rooms import RoomPlan, Target, plan_targets
from recstore.transfer.transferer import (
    Transferer,
    TransferReport,
    TransferRequest,
)
from tests.conftest import ManualClock, StackProcess, until
from tests.dracoon_helpers import admin, client, destination, downloaded_sha256

MiB = 1024 * 1024

NEWER = b"a newer recording, written while the job ran"


def job_request(tag: str, keys: list[str], room: str, parent: int) -> TransferRequest:
    """A job of instance ``acme.example`` for ``keys`` into one room below ``parent``."""
    return TransferRequest(
        job_id=f"acme.example/{tag}",
        bucket="recordings",
        keys=keys,
        rooms=rooms_of([Target(room)]) if room else (),
        parent_room_id=parent,
    )


def rooms_of(targets: list[Target]) -> tuple[RoomPlan, ...]:
    """The rooms the job's handler plans for ``targets`` of instance ``acme.example``."""
    return plan_targets(targets, instance="acme.example", meeting_type="talk")


async def recording(state: dict[str, Any], prefix: str, size: int) -> tuple[str, str, Any]:
    """A fresh tag, and a recording of ``size`` bytes seeded at ``<prefix>-<tag>/talk.mp4``:
    the tag, the key, and what the seeding says of it (its ``sha256``)."""
    tag = uuid.uuid4().hex[:8]
    key = f"{prefix}-{tag}/talk.mp4"
    (source,) = await seed_s3(state, {"objects": [{"key": key, "size": size}]})
    return tag, key, source


class Replacing(S3Store):
    """The real store, and a producer that writes a new recording under the key just before
    the job removes its source."""

    async def delete(self, bucket: str, key: str, etag: str | None = None) -> None:
        await self._client.put_object(Bucket=bucket, Key=key, Body=NEWER)
        await super().delete(bucket, key, etag=etag)


async def test_a_source_replaced_while_the_job_ran_is_kept(devstack: StackProcess) -> None:
    state: dict[str, Any] = devstack.state
    tag, key, _ = await recording(state, "replaced", 1_000_003)
    async with aws_client(aws_settings_from_state(state), "s3") as s3, client(state) as dracoon:
        request = job_request(tag, [key], f"Replaced {tag}", state["dracoon_parent_room_id"])
        transferer = Transferer(Replacing(s3), 8 * 1024 * 1024, remove_after_transferring=True)
        report = await transferer.run(request, destination(dracoon))
        assert [uploaded[0] for uploaded in report.uploaded] == [key]
        assert report.sources_removed == []
        kept = await S3Store(s3).head("recordings", key)
    assert kept.size == len(NEWER)  # the recording no target holds is still in S3


class AfterTheOther(DracoonDestination):
    """A daemon's destination whose upload begins only when the other run's does: both runs
    have then looked for a marked copy and found none, as two daemons running one job at
    once would, however the event loop happens to order them."""

    def __init__(self, client: DracoonClient, both: asyncio.Barrier) -> None:
        super().__init__(client, AccountKeys(client).private_keys)
        self._both = both

    async def upload(self, *args: Any, **kwargs: Any) -> StoredFile:
        await self._both.wait()
        return await super().upload(*args, **kwargs)


async def run_job(
    state: dict[str, Any],
    request: TransferRequest,
    runs: int = 1,
    remove: bool = False,
    store: Callable[[Any], S3Store] = S3Store,
) -> list[Any]:
    """The job run ``runs`` times at once, each with its own DRACOON client of the service
    account (the daemons a producer's re-send reached); each run's report, or its error.
    With ``remove``, the sources are removed after the transfer; ``store`` makes the source
    from the S3 client."""
    async with aws_client(aws_settings_from_state(state), "s3") as s3:
        transferer = Transferer(store(s3), 5 * MiB, remove_after_transferring=remove)
        both = asyncio.Barrier(runs)

        async def run() -> TransferReport:
            async with client(state) as dracoon:
                return await transferer.run(request, AfterTheOther(dracoon, both))

        return list(await asyncio.gather(*(run() for _ in range(runs)), return_exceptions=True))


async def files_in(state: dict[str, Any], parent: int, room_name: str) -> list[Node]:
    async with client(state) as dracoon:
        room = await dracoon.child_named(parent, room_name, "room")
        assert room is not None
        return [node async for node in dracoon.nodes(room.id)]


#: A job's message delivered for the first time (no look-up of a marked copy before the
#: upload), or again (the room listed first).
DELIVERIES = pytest.mark.parametrize("first_delivery", [False, True], ids=["again", "first"])


@DELIVERIES
async def test_two_runs_of_one_job_at_once_keep_only_the_first_copy(
    devstack: StackProcess, first_delivery: bool
) -> None:
    state: dict[str, Any] = devstack.state
    tag, key, source = await recording(state, "twins", 12 * MiB + 5)
    parent = state["dracoon_parent_room_id"]
    request = job_request(tag, [key], f"Twins {tag}", parent)
    reports = await run_job(state, replace(request, first_delivery=first_delivery), runs=2)

    files = await files_in(state, parent, f"Twins {tag}")
    assert [f.name for f in files] == ["talk.mp4"]  # no "talk (1).mp4" beside it
    kept = files[0].id
    # both runs uploaded; the one that finished later removed its own copy
    assert sorted(len(report.uploaded) for report in reports) == [0, 1]
    (removed,) = [twin for report in reports for twin in report.twins_removed]
    assert removed[2] > kept
    for report in reports:  # each run reports the file that stays
        assert [found[2] for found in report.uploaded + report.already_there] == [kept]
    async with client(state, "bob") as reader:  # and its key reached the room's members
        assert await downloaded_sha256(reader, kept, True) == source["sha256"]


async def test_a_resent_jobs_first_delivery_after_a_finished_copy_keeps_that_copy(
    devstack: StackProcess,
) -> None:
    """A producer re-sends a job that an earlier message finished, its source kept
    (``removeAfterTransferring: false``). The re-sent message comes for the first time, so it
    looks for no marked copy and uploads; DRACOON renames its copy (the name is taken), which
    shows it a twin: it removes its own and reports the earlier one."""
    state: dict[str, Any] = devstack.state
    tag, key, _ = await recording(state, "resent", MiB)
    parent = state["dracoon_parent_room_id"]
    request = job_request(tag, [key], f"Resent {tag}", parent)
    (first,) = await run_job(state, request)
    (resent,) = await run_job(state, replace(request, first_delivery=True))
    files = await files_in(state, parent, f"Resent {tag}")
    assert [(f.id, f.name) for f in files] == [(first.uploaded[0][2], "talk.mp4")]
    assert resent.uploaded == []
    assert resent.already_there == first.uploaded
    (removed,) = resent.twins_removed
    assert removed[2] > files[0].id  # its own, later copy


async def test_a_second_copy_that_cannot_be_removed_stays(
    devstack: StackProcess, caplog: pytest.LogCaptureFixture
) -> None:
    """Without the delete permission both copies stay: a duplicate, and both jobs succeed."""
    state: dict[str, Any] = devstack.state
    tag, key, _ = await recording(state, "twins", 6 * MiB)
    members = [{"login": state["dracoon_login"], "permissions": ["read", "create", "manage"]}]
    seed = {"rooms": [{"path": f"No delete {tag}", "encrypted": False, "members": members}]}
    parent = int((await admin(state, "seed", seed))["rooms"][f"No delete {tag}"])
    with caplog.at_level(logging.ERROR, logger="recstore.transfer.transferer"):
        reports = await run_job(state, job_request(tag, [key], f"Twins {tag}", parent), runs=2)

    files = await files_in(state, parent, f"Twins {tag}")
    assert sorted(f.name for f in files) == ["talk (1).mp4", "talk.mp4"]
    assert [len(report.uploaded) for report in reports] == [1, 1]
    assert not any(report.twins_removed for report in reports)
    assert "is a second copy of" in caplog.text
    assert "403" in caplog.text


async def test_a_removal_that_may_have_failed_leaves_the_report_to_a_retry(
    devstack: StackProcess,
) -> None:
    """DRACOON answers the removal of the second copy with 503s: whether it happened is not
    known, so that run fails as transient rather than report a file that may be gone, and its
    retry reports the first copy."""
    state: dict[str, Any] = devstack.state
    tag, key, _ = await recording(state, "twins", 6 * MiB)
    parent = state["dracoon_parent_room_id"]
    request = job_request(tag, [key], f"Twins {tag}", parent)
    faults = {"error_rate": 1, "methods": ["DELETE"], "path_pattern": r"^/api/v4/nodes/\d+$"}
    await admin(state, "faults", faults)
    try:
        outcomes = await run_job(state, request, runs=2)
    finally:
        await admin(state, "faults", {})
    (failed,) = [o for o in outcomes if isinstance(o, RemoteError)]
    assert failed.transient
    assert failed.status == 503
    files = sorted(f.id for f in await files_in(state, parent, f"Twins {tag}"))
    assert len(files) == 2  # the second copy stayed

    (retry,) = await run_job(state, request)
    assert retry.uploaded == []
    assert retry.already_there == [(key, f"Twins {tag}", files[0])]


async def test_an_empty_recording_lands_as_an_empty_file_members_can_open(
    devstack: StackProcess,
) -> None:
    """A meeting recorded nothing: the file is still made, encrypted, its key shared, and the
    source removed, like any other (a GCM tag over no bytes is a valid file)."""
    state: dict[str, Any] = devstack.state
    tag, key, source = await recording(state, "empty", 0)
    parent = state["dracoon_parent_room_id"]
    (report,) = await run_job(state, job_request(tag, [key], f"Empty {tag}", parent), remove=True)
    assert report.sources_removed == [key]
    async with aws_client(aws_settings_from_state(state), "s3") as s3:
        with pytest.raises(RemoteError) as gone:
            await S3Store(s3).head("recordings", key)
        assert gone.value.status == 404
    (stored,) = await files_in(state, parent, f"Empty {tag}")
    assert (stored.name, stored.size) == ("talk.mp4", 0)
    async with client(state, "bob") as reader:
        assert await downloaded_sha256(reader, stored.id, True) == source["sha256"]


@DELIVERIES
async def test_recordings_of_one_name_in_one_room_are_each_kept_once(
    devstack: StackProcess, first_delivery: bool
) -> None:
    """Two keys of a job end in the same file name (``morning/talk.mp4``, ``evening/talk.mp4``):
    DRACOON renames the second (on a first delivery, no twin: the other key's copy took the
    name), and a redelivered job still finds each by its own marker instead of uploading the
    renamed one again."""
    state: dict[str, Any] = devstack.state
    tag = uuid.uuid4().hex[:8]
    keys = [f"same-{tag}/morning/talk.mp4", f"same-{tag}/evening/talk.mp4"]
    sources = await seed_s3(state, {"objects": [{"key": k, "size": MiB + 3} for k in keys]})
    parent = state["dracoon_parent_room_id"]
    request = job_request(tag, keys, f"Same {tag}", parent)
    (first,) = await run_job(state, replace(request, first_delivery=first_delivery))
    (again,) = await run_job(state, request)
    assert first.twins_removed == []

    files = {f.id: f.name for f in await files_in(state, parent, f"Same {tag}")}
    assert sorted(files.values()) == ["talk (1).mp4", "talk.mp4"]
    assert again.uploaded == []
    assert again.already_there == first.uploaded
    async with client(state, "bob") as reader:
        for (key, _, file_id), source in zip(first.uploaded, sources, strict=True):
            assert key == source["key"]
            assert await downloaded_sha256(reader, file_id, True) == source["sha256"]


@pytest.mark.parametrize(
    ("storage_class", "tier", "what_to_do"),
    [
        ("GLACIER", None, "restore it (S3 restore-object), then redrive the job"),
        (
            "INTELLIGENT_TIERING",
            "ARCHIVE_ACCESS",
            "restore it (S3 restore-object without Days: it returns to the Frequent Access "
            "tier), then redrive the job",
        ),
    ],
)
async def test_an_archived_source_is_refused_with_what_to_do(
    devstack: StackProcess, storage_class: str, tier: str | None, what_to_do: str
) -> None:
    """A recording that a lifecycle rule moved to Glacier, or that Intelligent-Tiering moved to
    an archive tier (its class stays; only the HEAD's archive status tells), cannot be read
    until restored, which takes hours: the job fails for good at once, saying so, leaves the
    source where it is, and goes through once restored."""
    state = devstack.through_s3_proxy()
    tag = uuid.uuid4().hex[:8]
    key = f"cold-{tag}/talk.mp4"
    data = b"a recording nobody copied in time" * 1000
    parent = state["dracoon_parent_room_id"]
    request = job_request(tag, [key], f"Cold {tag}", parent)
    async with aws_client(aws_settings_from_state(state), "s3") as s3:
        await s3.put_object(Bucket="recordings", Key=key, Body=data, StorageClass=storage_class)
        if tier is not None:
            await devstack.move_to_archive_tier("recordings", key, tier)
        (refused,) = await run_job(state, request, remove=True)
        assert isinstance(refused, PermanentJobError)
        where = f"{storage_class} ({tier})" if tier else storage_class
        assert str(refused).endswith(
            f"s3://recordings/{key} is in {where} and not restored: {what_to_do}"
        )
        store = S3Store(s3)
        kept = await store.head("recordings", key)
        assert kept.archived  # the source stays, where it was
        assert await files_in(state, parent, f"Cold {tag}") == []

        await store.restore(kept, 1, "Bulk")  # what the reason says to do, then wait for it

        async def restored() -> bool:
            return (await store.head("recordings", key)).readable

        await until(restored)
    (done,) = await run_job(state, request)
    (stored,) = await files_in(state, parent, f"Cold {tag}")
    assert done.uploaded == [(key, f"Cold {tag}", stored.id)]
    async with client(state, "bob") as reader:
        assert await downloaded_sha256(reader, stored.id, True) == hashlib.sha256(data).hexdigest()


class ArchivedAfterOpen(S3Store):
    """The real store, and a lifecycle rule that moves each object to Glacier just after the
    job's first read of it: that read's answer says readable, the next range is refused."""

    async def open(self, bucket: str, key: str, length: int) -> OpenedObject | None:
        opened = await super().open(bucket, key, length)
        source = {"Bucket": bucket, "Key": key}
        await self._client.copy_object(
            Bucket=bucket, Key=key, CopySource=source, StorageClass="GLACIER"
        )
        return opened


async def test_a_source_archived_while_it_is_copied_is_refused_with_what_to_do(
    devstack: StackProcess,
) -> None:
    state: dict[str, Any] = devstack.state
    tag, key, _ = await recording(state, "cooling", 6 * MiB)
    parent = state["dracoon_parent_room_id"]
    request = job_request(tag, [key], f"Cooling {tag}", parent)
    (refused,) = await run_job(state, request, remove=True, store=ArchivedAfterOpen)
    assert isinstance(refused, PermanentJobError)
    assert f"s3://recordings/{key} went to an archive tier while it was copied" in str(refused)
    assert "restore it (S3 restore-object), then redrive the job" in str(refused)
    async with aws_client(aws_settings_from_state(state), "s3") as s3:
        kept = await S3Store(s3).head("recordings", key)
    assert kept.storage_class == "GLACIER"  # the source stays
    assert await files_in(state, parent, f"Cooling {tag}") == []  # no half file either


async def test_targets_that_name_one_room_get_one_file_kept_as_long_as_any_asks(
    devstack: StackProcess,
) -> None:
    """Two targets can render to one room (a list that repeats a path, ``$instance/x`` beside
    ``acme.example/x``). The room gets one file, and no target loses its copy early: the
    longer expiration wins, and none at all wins over any."""
    state: dict[str, Any] = devstack.state
    tag, key, _ = await recording(state, "shared", 1000)
    parent = state["dracoon_parent_room_id"]
    targets = [
        Target(f"Years {tag}", "1 year"),
        Target(f"Kept {tag}", "1 year"),
        Target(f"Years {tag}", "4 years"),
        Target(f"Kept {tag}"),
    ]
    request = replace(job_request(tag, [key], "", parent), rooms=rooms_of(targets))
    before = datetime.now(UTC)
    (report,) = await run_job(state, request)
    assert len(report.uploaded) == 2
    (years,) = await files_in(state, parent, f"Years {tag}")
    assert datetime.fromisoformat(str(years.expire_at)) > before + timedelta(days=4 * 365 - 1)
    (kept,) = await files_in(state, parent, f"Kept {tag}")
    assert kept.expire_at is None


class CountingLookups(DracoonDestination):
    """The daemon's destination, counting the room path lookups that reach DRACOON."""

    lookups = 0

    async def ensure_room_path(self, parent_id: int, names: Sequence[str]) -> Any:
        known = self.rooms.get((*self._account, parent_id, tuple(names)))
        if known is None:
            type(self).lookups += 1
        return await super().ensure_room_path(parent_id, names)


@DELIVERIES
async def test_room_paths_are_looked_up_once_and_a_deleted_room_is_created_anew(
    devstack: StackProcess, first_delivery: bool
) -> None:
    """A room a user deleted shows at the first call on it: the listing for a marked copy, or
    on a first delivery the upload channel's creation (DRACOON: 404 for the parent)."""
    state: dict[str, Any] = devstack.state
    parent = state["dracoon_parent_room_id"]
    room_name = f"Cached {uuid.uuid4().hex[:8]}"
    rooms = RoomPaths()
    CountingLookups.lookups = 0
    async with aws_client(aws_settings_from_state(state), "s3") as s3, client(state) as dracoon:
        transferer = Transferer(S3Store(s3), 5 * MiB, remove_after_transferring=False)

        async def job() -> TransferReport:
            tag, key, _ = await recording(state, "cached", 1000)
            request = job_request(tag, [key], room_name, parent)
            request = replace(request, first_delivery=first_delivery)
            keys = AccountKeys(dracoon).private_keys
            return await transferer.run(request, CountingLookups(dracoon, keys, rooms=rooms))

        first, second = await job(), await job()
        assert CountingLookups.lookups == 1  # the second job knew the room
        assert len(first.uploaded) == len(second.uploaded) == 1
        room = await dracoon.child_named(parent, room_name, "room")
        assert room is not None
        await dracoon.remove_node(room.id)  # a user deletes the room

        third = await job()
        assert len(third.uploaded) == 1
        assert CountingLookups.lookups == 2
        again = await dracoon.child_named(parent, room_name, "room")
        assert again is not None
        assert again.id != room.id
        assert [f.name for f in await files_in(state, parent, room_name)] == ["talk.mp4"]
        fourth = await job()  # the new room is remembered in turn
        assert len(fourth.uploaded) == 1
        assert CountingLookups.lookups == 2
        # no files left without keys for the users other modules' tests add to the parent
        await dracoon.remove_node(again.id)


def test_a_remembered_room_path_expires() -> None:
    clock = ManualClock()
    rooms = RoomPaths(ttl=300, clock=clock)
    key = ("https://dracoon.example", "svc", 1, ("a", "b"))
    rooms.put(key, Room(7, encrypted=True))
    assert rooms.get(key) == Room(7, encrypted=True)
    clock.advance(301)
    assert rooms.get(key) is None
    rooms.put(key, Room(7, encrypted=True))
    assert not rooms.forget_room("https://dracoon.example", "other", 7)  # another account's
    assert rooms.forget_room("https://dracoon.example", "svc", 7)
    assert rooms.get(key) is None
