"""The archive actions end to end: a Kaltura stand-in on this loop, S3 in the dev stack's moto.

The full cycle of seed 001 (initial → archived → place_holder → played → Glacier restore →
original back), the checks that keep an original from being lost (wrong-size copies, an
original edited after archival), exemptions, the streamed restore, and idempotency.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from recstore.archive import health, inventory
from recstore.archive.actions import (
    REPAIR,
    REPLACE_VIDEO,
    RESTORE,
    S3COPY,
    ArchiveRules,
    Archivist,
    Outcome,
    Placeholder,
)
from recstore.archive.filters import Selection
from recstore.archive.states import ArchiveTags, SizeRule
from recstore.clients.aws import aws_client
from recstore.clients.kaltura import KalturaClient, token_resource
from recstore.clients.kaltura_types import KalturaMediaEntry
from recstore.clients.s3 import S3Store
from recstore.devstack.seed import aws_settings_from_state
from recstore.workers.leases import EntryLocks
from tests.archive_helpers import (
    ARCHIVE_BUCKET,
    FAST,
    MiB,
    StandIn,
    bucket_snapshot,
    entry,
    moto_restore_transition,
    original_bytes,
    stand_in,
    tags_of,
    video,
)
from tests.conftest import StackProcess, faults_injected, set_faults

PLACEHOLDER = b"placeholder video " * 171  # 3078 bytes, unlike any original here


class World:
    """A Kaltura stand-in, moto's S3, and an Archivist over both."""

    def __init__(
        self, kaltura: StandIn, client: KalturaClient, s3: S3Store, raw_s3: Any, rules: ArchiveRules
    ) -> None:
        self.kaltura = kaltura
        self.client = client
        self.s3 = s3
        self.raw_s3 = raw_s3
        self.rules = rules
        self.archivist = Archivist(client, s3, rules)

    def with_rules(self, **changes: Any) -> Archivist:
        return Archivist(self.client, self.s3, replace(self.rules, **changes))

    async def run(self, action: str, entry_id: str, apply: bool = True) -> Any:
        return await self.archivist.run(action, entry_id, apply=apply)

    async def entry(self, entry_id: str) -> KalturaMediaEntry:
        return await self.client.get_entry(entry_id)


@pytest.fixture
async def world(devstack: StackProcess, tmp_path: Path) -> AsyncIterator[World]:
    placeholder = tmp_path / "placeholder.mp4"
    placeholder.write_bytes(PLACEHOLDER)
    rules = ArchiveRules(
        bucket=ARCHIVE_BUCKET,
        tags=ArchiveTags(),
        sizes=SizeRule(),
        storage_class="GLACIER",
        part_size=5 * MiB,
        exempt_tag="legal_hold",
        placeholder=Placeholder.of(placeholder),
        ready_timeout=20,
        ready_poll=0.05,
    )
    async with (
        stand_in(tmp_path / "kaltura") as kaltura,
        aiohttp.ClientSession() as http,
        aws_client(aws_settings_from_state(devstack.state), "s3") as raw_s3,
    ):
        client = KalturaClient(kaltura.settings(), http, FAST)
        yield World(kaltura, client, S3Store(raw_s3, FAST), raw_s3, rules)


@pytest.fixture
async def slow_glacier(devstack: StackProcess) -> AsyncIterator[None]:
    """Glacier restores in moto that stay "ongoing" for a few lookups, as real ones do."""
    await moto_restore_transition(devstack.state["s3_endpoint"], 3)
    yield
    await moto_restore_transition(devstack.state["s3_endpoint"], None)


async def test_the_full_cycle_keeps_the_original_byte_for_byte(
    world: World, slow_glacier: None, request: pytest.FixtureRequest
) -> None:
    entry_id = "0_cycle01"
    content = video(11 * MiB + 12345)  # three parts of 5 MiB
    await world.kaltura.seed([entry(entry_id, content)])

    copied = await world.run(S3COPY, entry_id)
    assert copied.outcome is Outcome.DONE, copied
    assert copied.bytes == len(content)
    stored = await world.s3.head(ARCHIVE_BUCKET, entry_id)
    assert stored.size == len(content)
    assert stored.storage_class == "GLACIER"
    assert stored.checksum_sha256  # moto records S3's SHA-256 of the parts
    assert stored.metadata["kaltura-entry-id"] == entry_id
    assert tags_of(await world.entry(entry_id)) == {"lecture", "archived_to_s3"}
    assert (await world.run(S3COPY, entry_id)).outcome is Outcome.DONE_BEFORE

    replaced = await world.run(REPLACE_VIDEO, entry_id)
    assert replaced.outcome is Outcome.DONE, replaced
    now = await world.entry(entry_id)
    assert tags_of(now) == {"lecture", "archived_to_s3", "flavors_deleted"}
    assert await original_bytes(world.client, entry_id) == PLACEHOLDER
    assert str(now.status) == "2"
    assert (await world.run(REPLACE_VIDEO, entry_id)).outcome is Outcome.DONE_BEFORE
    assert (await world.run(S3COPY, entry_id)).outcome is Outcome.DONE_BEFORE

    await world.kaltura.play(entry_id)
    outcomes = []
    for _ in range(10):
        result = await world.run(RESTORE, entry_id)
        outcomes.append(result.outcome)
        if result.outcome not in (Outcome.WAIT_GLACIER, Outcome.WAIT):
            break
    assert outcomes[0] is Outcome.WAIT_GLACIER
    assert Outcome.WAIT in outcomes  # moto's restore was still running at least once
    assert outcomes[-1] is Outcome.DONE, result
    assert await original_bytes(world.client, entry_id) == content
    assert tags_of(await world.entry(entry_id)) == {"lecture", "archived_to_s3"}
    assert (await world.run(RESTORE, entry_id)).outcome is Outcome.DONE_BEFORE

    views = inventory.inspect(
        inventory.select(world.client, Selection(ids=(entry_id,)), _now()),
        world.client,
        objects=world.s3,
        bucket=ARCHIVE_BUCKET,
    )
    checked = [health.check(view, world.rules.tags, world.rules.sizes) async for view in views]
    assert [c.healthy for c in checked] == [True], checked


async def test_dry_runs_change_nothing(world: World) -> None:
    entries = {
        "0_dryinit": entry("0_dryinit", video(MiB)),
        "0_dryarch": entry("0_dryarch", video(MiB)),
        "0_dryplace": entry("0_dryplace", video(MiB)),
    }
    await world.kaltura.seed(list(entries.values()))
    for entry_id in ("0_dryarch", "0_dryplace"):
        assert (await world.run(S3COPY, entry_id)).outcome is Outcome.DONE
    assert (await world.run(REPLACE_VIDEO, "0_dryplace")).outcome is Outcome.DONE
    await world.kaltura.play("0_dryplace")

    kaltura_before = await world.kaltura.snapshot()
    s3_before = await bucket_snapshot(world.raw_s3, ARCHIVE_BUCKET)
    seen = {}
    for action in (S3COPY, REPLACE_VIDEO, RESTORE, REPAIR):
        for entry_id in entries:
            result = await world.run(action, entry_id, apply=False)
            assert not result.applied
            seen[(action, entry_id)] = result.outcome
    assert await world.kaltura.snapshot() == kaltura_before
    assert await bucket_snapshot(world.raw_s3, ARCHIVE_BUCKET) == s3_before
    assert seen[(S3COPY, "0_dryinit")] is Outcome.WOULD_DO
    assert seen[(S3COPY, "0_dryarch")] is Outcome.DONE_BEFORE
    assert seen[(REPLACE_VIDEO, "0_dryinit")] is Outcome.SKIPPED
    assert seen[(REPLACE_VIDEO, "0_dryarch")] is Outcome.WOULD_DO
    assert seen[(RESTORE, "0_dryplace")] is Outcome.WOULD_DO  # would ask Glacier
    assert seen[(RESTORE, "0_dryarch")] is Outcome.DONE_BEFORE


async def test_a_copy_of_the_wrong_size_blocks_replace_video(world: World) -> None:
    entry_id = "0_wrongsz"
    content = video(2 * MiB)
    await world.kaltura.seed([entry(entry_id, content)])
    assert (await world.run(S3COPY, entry_id)).outcome is Outcome.DONE
    await world.raw_s3.put_object(Bucket=ARCHIVE_BUCKET, Key=entry_id, Body=content[:-1])

    blocked = await world.run(REPLACE_VIDEO, entry_id)
    assert blocked.outcome is Outcome.SKIPPED
    assert "S3 copy has 2097151 bytes" in blocked.reason
    assert await original_bytes(world.client, entry_id) == content
    assert "flavors_deleted" not in tags_of(await world.entry(entry_id))
    # s3copy does not overwrite it either; repair copies the original again
    assert (await world.run(S3COPY, entry_id)).outcome is Outcome.SKIPPED
    repaired = await world.run(REPAIR, entry_id)
    assert repaired.outcome is Outcome.DONE, repaired
    assert (await world.s3.head(ARCHIVE_BUCKET, entry_id)).size == len(content)
    assert (await world.run(REPLACE_VIDEO, entry_id)).outcome is Outcome.DONE


@pytest.mark.parametrize("same_size", [True, False])
async def test_an_original_edited_after_archival_is_not_lost(world: World, same_size: bool) -> None:
    entry_id = f"0_edited{int(same_size)}"
    first = video(3 * MiB)
    await world.kaltura.seed([entry(entry_id, first)])
    assert (await world.run(S3COPY, entry_id)).outcome is Outcome.DONE

    edited = video(len(first) if same_size else len(first) + 4096)
    await _replace_content(world.client, entry_id, edited)
    blocked = await world.run(REPLACE_VIDEO, entry_id)
    assert blocked.outcome is Outcome.SKIPPED, blocked
    assert ("SHA-256" if same_size else "S3 copy has") in blocked.reason
    assert await original_bytes(world.client, entry_id) == edited

    repaired = await world.run(REPAIR, entry_id)
    assert repaired.outcome is Outcome.DONE, repaired
    assert (await world.run(REPLACE_VIDEO, entry_id)).outcome is Outcome.DONE
    await world.kaltura.play(entry_id)
    restored = await world.with_rules(restore_mode="stream").run(RESTORE, entry_id, apply=True)
    assert restored.outcome is Outcome.WAIT_GLACIER  # GLACIER: asked, not readable yet


@pytest.mark.parametrize(
    ("tier", "restore_tier", "terms"),
    [
        ("ARCHIVE_ACCESS", "Bulk", "Bulk, back to Frequent Access"),
        (
            "DEEP_ARCHIVE_ACCESS",
            "Expedited",
            "Standard: Expedited is not offered there, back to Frequent Access",
        ),
    ],
)
async def test_an_intelligent_tiering_copy_comes_back_from_its_archive_tier(
    world: World, devstack: StackProcess, tier: str, restore_tier: str, terms: str
) -> None:
    """With ``archive.storageClass: INTELLIGENT_TIERING`` and the bucket's archive tiers on, S3
    moves a copy nobody read into an archive tier. The Restorer asks for it back without a
    number of days (S3 refuses one for these tiers), waits, and puts the original back. S3
    refuses an Expedited restore from Deep Archive Access every time, so the Restorer asks for
    the fastest tier offered there."""
    settings = aws_settings_from_state(devstack.through_s3_proxy())
    entry_id = f"0_tiered_{tier.lower()}"
    content = video(6 * MiB + 7)
    await world.kaltura.seed([entry(entry_id, content)])
    async with aws_client(settings, "s3") as raw:
        rules = replace(world.rules, storage_class="INTELLIGENT_TIERING", restore_tier=restore_tier)
        archivist = Archivist(world.client, S3Store(raw, FAST), rules)
        for action in (S3COPY, REPLACE_VIDEO):
            assert (await archivist.run(action, entry_id, apply=True)).outcome is Outcome.DONE
        await devstack.move_to_archive_tier(ARCHIVE_BUCKET, entry_id, tier, restore_lookups=2)
        await world.kaltura.play(entry_id)
        results = []
        for _ in range(10):
            results.append(await archivist.run(RESTORE, entry_id, apply=True))
            if results[-1].outcome not in (Outcome.WAIT_GLACIER, Outcome.WAIT):
                break
    asked = results[0]
    assert asked.outcome is Outcome.WAIT_GLACIER, asked
    assert asked.reason == f"restore from INTELLIGENT_TIERING ({tier}) requested ({terms})"
    assert Outcome.WAIT in [r.outcome for r in results]  # the restore ran for a while
    assert results[-1].outcome is Outcome.DONE, results[-1]
    assert await original_bytes(world.client, entry_id) == content
    assert tags_of(await world.entry(entry_id)) == {"lecture", "archived_to_s3"}


async def test_streamed_restore_from_a_standard_copy(world: World) -> None:
    archivist = world.with_rules(storage_class="STANDARD_IA", restore_mode="stream")
    entry_id = "0_stream1"
    content = video(7 * MiB + 3)
    await world.kaltura.seed([entry(entry_id, content)])
    for action in (S3COPY, REPLACE_VIDEO):
        assert (await archivist.run(action, entry_id, apply=True)).outcome is Outcome.DONE
    assert (await world.s3.head(ARCHIVE_BUCKET, entry_id)).storage_class == "STANDARD_IA"
    restored = await archivist.run(RESTORE, entry_id, apply=True)
    assert restored.outcome is Outcome.DONE, restored
    back = await original_bytes(world.client, entry_id)
    assert hashlib.sha256(back).digest() == hashlib.sha256(content).digest()


async def test_states_an_action_cannot_work_with_are_refused(world: World) -> None:
    await world.kaltura.seed(
        [
            entry("0_exempt", video(MiB), tags="lecture,legal_hold"),
            entry("0_noorig", video(MiB), flavors=[]),
            entry(
                "0_notready",
                video(MiB),
                flavors=[{"isOriginal": True, "sizeInBytes": MiB, "status": 1}],
            ),
            entry("0_big", video(10), flavors=[{"isOriginal": True, "size": 11_000_000}]),
            entry("0_deltag", video(MiB), tags="flavors_deleted"),
        ]
    )
    expect = {
        ("0_exempt", S3COPY): "exempt: tagged legal_hold",
        ("0_noorig", S3COPY): "no original flavor",
        ("0_notready", S3COPY): "CONVERTING, not READY",
        ("0_big", S3COPY): "above the archive limit",
        ("0_deltag", S3COPY): "the original is the placeholder",
        ("0_noorig", REPLACE_VIDEO): "not archived",
        ("0_noorig", RESTORE): "not archived",
        ("0_nothere", S3COPY): "no such entry",
    }
    for (entry_id, action), reason in expect.items():
        result = await world.run(action, entry_id)
        assert result.outcome is Outcome.SKIPPED, (entry_id, action, result)
        assert reason in result.reason, (entry_id, action, result)
    assert await world.s3.find(ARCHIVE_BUCKET, "0_exempt") is None
    # restore of a placeholder entry without S3 copy: a failure, not a guess
    lost = await world.run(RESTORE, "0_deltag")
    assert lost.outcome is Outcome.FAILED
    assert not lost.transient


async def test_a_placeholder_upload_that_is_interrupted_is_finished_next_time(
    world: World,
) -> None:
    """replace-video tags first: a run cut after the flavors went is completed by the next."""
    entry_id = "0_cutrun1"
    await world.kaltura.seed([entry(entry_id, video(MiB))])
    assert (await world.run(S3COPY, entry_id)).outcome is Outcome.DONE
    facts = await world.archivist.look(entry_id)
    assert facts is not None
    # what an interrupted run leaves: tagged, flavors deleted, no new content yet
    await world.client.update_tags(entry_id, ["lecture", "archived_to_s3", "flavors_deleted"])
    for flavor in facts.flavors:
        await world.client.delete_flavor(flavor.id)
    finished = await world.run(REPLACE_VIDEO, entry_id)
    assert finished.outcome is Outcome.DONE, finished
    assert await original_bytes(world.client, entry_id) == PLACEHOLDER


async def _replace_content(client: KalturaClient, entry_id: str, data: bytes) -> None:
    async def once() -> AsyncIterator[bytes]:
        yield data

    token = await client.add_upload_token("edit.mp4", len(data))
    await client.upload(token.id, once())
    await client.update_content(entry_id, token_resource(token.id))
    for _ in range(200):
        # a replacement: over when the entry names no replacing entry any more
        replaced = not (await client.get_entry(entry_id)).replacing_entry_id
        flavors = await client.flavors(entry_id)
        if replaced and flavors and all(f.status == 2 for f in flavors):
            return
        import asyncio

        await asyncio.sleep(0.05)
    raise AssertionError("the edited content never became READY")


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


async def test_an_entry_busy_with_another_action_waits_and_dry_runs_take_no_lock(
    world: World,
) -> None:
    await world.kaltura.seed([entry("0_busy", video(MiB))])
    prefix = f"locks-{uuid.uuid4().hex}/"
    theirs = EntryLocks(world.s3, ARCHIVE_BUCKET, prefix, ttl=30)  # another replica
    archivist = Archivist(
        world.client,
        world.s3,
        world.rules,
        guard=EntryLocks(world.s3, ARCHIVE_BUCKET, prefix, ttl=30),
    )
    async with theirs.hold("0_busy", REPLACE_VIDEO):
        busy = await archivist.run(S3COPY, "0_busy", apply=True)
        dry = await archivist.run(S3COPY, "0_busy", apply=False)
    assert busy.outcome is Outcome.FAILED
    assert busy.transient  # handed back to the queue, tried again later:
    assert busy.retry_after == 30  # once their lock is let go, or has run out (its TTL)
    assert "replace-video is running on another worker" in busy.reason
    assert dry.outcome is Outcome.WOULD_DO
    assert "archived_to_s3" not in tags_of(await world.entry("0_busy"))
    assert (await archivist.run(S3COPY, "0_busy", apply=True)).outcome is Outcome.DONE


async def test_a_part_damaged_in_flight_fails_the_copy_and_leaves_nothing(
    world: World, devstack: StackProcess
) -> None:
    """moto echoes the SHA-256 a part was sent with whatever bytes arrived, and states none at
    completion: the upload vouches for nothing, so the HEAD after it (whose checksum moto
    computes from the stored bytes) tells the damaged copy, which is removed."""
    entry_id = f"0_dmg{uuid.uuid4().hex[:6]}"
    content = video(7 * MiB + 5)
    await world.kaltura.seed([entry(entry_id, content)])
    proxy = devstack.state["s3_proxy_url"]
    async with aws_client(aws_settings_from_state(devstack.through_s3_proxy()), "s3") as client:
        archivist = Archivist(world.client, S3Store(client, FAST), world.rules)
        # the first part's PUT damaged in flight: one byte flipped, its length kept
        await set_faults(
            proxy, {"damage_at": 1000, "methods": ["PUT"], "path_pattern": entry_id, "count": 1}
        )
        try:
            copied = await archivist.run(S3COPY, entry_id, apply=True)
            assert await faults_injected(proxy) == 1
        finally:
            await set_faults(proxy, {})
    assert copied.outcome is Outcome.FAILED, copied
    assert "another SHA-256" in copied.reason
    assert await world.s3.find(ARCHIVE_BUCKET, entry_id) is None
    assert "archived_to_s3" not in tags_of(await world.entry(entry_id))


class _NoHead(S3Store):
    """A store whose uploads are confirmed (as real S3's and rclone's are) and that counts the
    HEADs asked of it."""

    def __init__(self, client: Any, confirmed: bool) -> None:
        super().__init__(client, FAST)
        self.confirmed = confirmed
        self.heads = 0

    async def upload_stream(self, *args: Any, **kwargs: Any) -> Any:
        result = await super().upload_stream(*args, **kwargs)
        return replace(result, confirmed=self.confirmed)

    async def find(self, bucket: str, key: str) -> Any:
        self.heads += 1
        return await super().find(bucket, key)


@pytest.mark.parametrize("confirmed", [True, False])
async def test_a_copy_the_upload_vouched_for_is_not_headed_again(
    world: World, confirmed: bool
) -> None:
    entry_id = f"0_nohead{int(confirmed)}"
    content = video(6 * MiB)
    await world.kaltura.seed([entry(entry_id, content)])
    store = _NoHead(world.raw_s3, confirmed)
    copied = await Archivist(world.client, store, world.rules).run(S3COPY, entry_id, apply=True)
    assert copied.outcome is Outcome.DONE, copied
    # one HEAD in the look before the copy; a second after it only when unconfirmed
    assert store.heads == (1 if confirmed else 2)
    assert (await world.s3.head(ARCHIVE_BUCKET, entry_id)).size == len(content)
