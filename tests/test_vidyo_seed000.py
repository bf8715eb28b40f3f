"""Taking over from seed 000 (the PHP syncer, ``kaltura/VidyoReplayToKaltura``): a partner as
that syncer left it is not imported again, and a metadata profile that cannot take what
recstore writes is reported at start instead of failing every ``metadata.add``.

The partner is seeded through the Kaltura stand-in's own seed route and API, with the marks the
seed's ``syncv2k.php`` gave each entry: ``referenceId`` = the recording's GUID,
``partnerSortValue`` = its id, tags = ``VIDYO_KALTURA_TAGS`` + the recording's tags, the
configured category, and metadata on the ``vidyoreplaymetadata00`` profile that its
``setupMetadata.php`` created (the same 13 elements, under its own lower-case keys).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from recstore.clients.kaltura import KalturaClient
from recstore.common import events
from recstore.sync.metadata import PROFILE_SYSTEM_NAME, profile_xsd
from recstore.workers.vidyo_sync import VidyoSync, open_sync
from tests.archive_helpers import stand_in
from tests.conftest import until
from tests.test_vidyo_sync import Env
from tests.vidyo_helpers import FAST, recording, vidyo_stand_in

#: The seed's VIDYO_KALTURA_TAGS and KALTURA_VIDYO_RECORDINGS_CATEGORY (Vidyo2KalturaConfig.php).
SEED_TAG = "vidyorecording"
SEED_CATEGORY = "MediaSpace>site>galleries>Vidyo Recordings"


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with (
        vidyo_stand_in(tmp_path / "vidyo") as vidyo,
        stand_in(tmp_path / "kaltura") as kaltura,
    ):
        yield Env(vidyo, kaltura)


def seed_profile_xsd() -> str:
    """A profile as ``setupMetadata.php`` made it: the same elements, in the same order, of the
    same types, but the seed's keys (``recordingId``...) and two more unused type definitions."""
    xsd = re.sub(
        r"<key>(\w)(\w*)</key>", lambda m: f"<key>{m[1].lower()}{m[2]}</key>", profile_xsd()
    )
    extra = (
        '<xsd:complexType name="objectType"><xsd:simpleContent>'
        '<xsd:extension base="xsd:string"/></xsd:simpleContent></xsd:complexType>'
        '<xsd:simpleType name="listType"><xsd:restriction base="xsd:string"/></xsd:simpleType>'
    )
    return xsd.replace("</xsd:schema>", extra + "</xsd:schema>")


def seed_metadata(seed: dict[str, Any]) -> str:
    """The XML ``syncv2k.php`` wrote: every element, PHP's ``false`` as an empty ``Locked``."""
    values = {
        "RecordingId": seed["id"],
        "RecordingGuid": seed["guid"],
        "TenantName": seed["tenantName"],
        "UserName": seed["userName"],
        "UserFullName": seed["userFullName"],
        "DateCreated": seed["dateCreated"],
        "EndTime": seed["endTime"],
        "DateCreatedString": seed["dateCreatedString"],
        "Pin": "",
        "RecordScope": seed["recordScope"],
        "RoomName": seed["roomName"],
        "RecorderId": seed["recorderId"],
        "Locked": "",
    }
    return "<metadata>" + "".join(f"<{k}>{v}</{k}>" for k, v in values.items()) + "</metadata>"


def seed_entry(seed: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """The entry ``copyVidyoRecording2Kaltura`` made for a recording, its import done."""
    return {
        "id": f"0_php{seed['id']:04d}",
        "name": seed["title"],
        "description": seed["comments"],
        "referenceId": seed["guid"],
        "partnerSortValue": seed["id"],
        "userId": seed["userName"],
        "tags": f"{SEED_TAG},{seed['tags']}",
        "categories": SEED_CATEGORY,
        "createdAt": seed["dateCreated"] + 3600,
        **fields,
    }


def config_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if getattr(r, "event", None) is not None and r.event.code == events.CONFIG_LOAD_FAILED.code
    ]


async def test_a_partner_the_php_syncer_left_is_not_imported_again(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    seeds = [recording(n) for n in range(1, 6)]
    await env.vidyo.seed(seeds)
    one, two, three, four, five = seeds
    await env.kaltura.seed(
        [
            seed_entry(one),
            seed_entry(two),  # its metadata.add failed under the seed
            seed_entry(three, status=3),  # deleted in the KMC since
            seed_entry(four, referenceId=None),  # an editor cleared its reference id
            # recording 5 came after the seed's last cycle
        ]
    )
    settings = env.settings(tag=SEED_TAG, categories=[SEED_CATEGORY], batchSize=5)
    async with aiohttp.ClientSession() as http:
        kaltura = KalturaClient(settings.kaltura, http, FAST)
        profile = await kaltura.add_metadata_profile(
            PROFILE_SYSTEM_NAME, PROFILE_SYSTEM_NAME, seed_profile_xsd()
        )
        for seed in (one, four):
            await kaltura.call(
                "metadata_metadata",
                "add",
                metadataProfileId=profile.id,
                objectType=1,
                objectId=seed_entry(seed)["id"],
                xmlData=seed_metadata(seed),
            )
    with caplog.at_level(logging.INFO):
        first = await env.cycle(settings)
    assert (first.new, first.imported, first.failed) == (1, 1, 0)
    assert [w.record.id for w in first.planned if w.is_new] == [5]
    assert (first.complete, first.deleted, first.by_id) == (2, 1, 1)
    assert [(w.record.id, w.steps) for w in first.planned if not w.is_new] == [(2, ("metadata",))]
    assert first.profile_id == profile.id
    assert config_errors(caplog) == []  # the seed's own profile takes recstore's metadata
    entries = await env.entries()
    assert len(entries[five["guid"]]) == 1
    assert [e["id"] for e in entries[""]] == ["0_php0004"]  # no second entry for recording 4
    for seed in (one, two, three):
        assert [e["id"] for e in entries[seed["guid"]]] == [seed_entry(seed)["id"]]
    assert (await env.vidyo.snapshot())["downloads"] == {five["guid"]: 1}
    metadata = await env.metadata()
    assert len(metadata["0_php0002"]) == 1  # completed, not duplicated
    assert metadata["0_php0001"] == [seed_metadata(one)]  # the seed's own, left as it was

    again = await env.cycle(settings)
    assert (again.new, again.repairs, again.complete, again.deleted) == (0, 0, 4, 1)


def lacking(*fields: str) -> str:
    """recstore's profile XSD without the elements ``fields``."""
    xsd = profile_xsd()
    for name in fields:
        xsd = re.sub(rf'\s*<xsd:element id="md_vidyo_{name}".*?</xsd:element>', "", xsd, flags=re.S)
    return xsd


async def test_a_profile_that_lacks_a_field_is_reported_at_start_not_by_each_write(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    seeds = [recording(n) for n in (1, 2)]
    await env.vidyo.seed(seeds)
    settings = env.settings()
    async with aiohttp.ClientSession() as http:
        kaltura = KalturaClient(settings.kaltura, http, FAST)
        bad = await kaltura.add_metadata_profile(
            PROFILE_SYSTEM_NAME, PROFILE_SYSTEM_NAME, lacking("RecordScope", "Locked")
        )
    worker = VidyoSync(settings, interval=3600, policy=FAST)
    stop = asyncio.Event()
    with caplog.at_level(logging.INFO):
        running = asyncio.create_task(worker.run(stop))
        try:

            async def reported() -> bool:
                return bool(config_errors(caplog)) and worker.last_report is not None

            await until(reported)
        finally:
            stop.set()
            await asyncio.wait_for(running, 30)
    [error] = config_errors(caplog)  # at start, once: not again by the cycle
    assert "workers.VidyoSync.metadataProfileSystemName" in error
    assert f"(id {bad.id})" in error
    assert "it lacks the field(s) RecordScope, Locked" in error
    report = worker.last_report
    assert report is not None
    assert (report.imported, report.failed, report.profile_id) == (2, 0, None)
    assert events.VIDYO_SYNC_ERROR.code not in [
        r.event.code for r in caplog.records if hasattr(r, "event")
    ]
    assert await env.metadata() == {}

    # Pointed at a profile that takes it, the next cycle adds what was left out.
    async with aiohttp.ClientSession() as http:
        good = await KalturaClient(settings.kaltura, http, FAST).add_metadata_profile(
            "VidyoReplay recording", "vidyoreplaymetadata01", profile_xsd()
        )
    fixed = env.settings(metadataProfileId=good.id)
    async with open_sync(fixed, FAST) as service:
        repaired = await service.cycle()
    assert (repaired.repairs, repaired.repaired, repaired.failed) == (2, 2, 0)
    assert len(await env.metadata()) == 2


async def test_recordings_the_seed_left_out_on_purpose_stay_out_with_import_after_id(
    env: Env,
) -> None:
    """The seed's Connexus variant (syncv2k.connexus.php) kept its last synced recording id in
    LastVidyoUpload.log and skipped recordings tagged VIDYO_BLOCK_UPLOAD_TAG, which therefore
    have no entry; ``importAfterId`` = that id keeps them out, and completes what exists."""
    one, two, blocked, four = (recording(n) for n in range(1, 5))
    blocked["tags"] = "lecture,noupload"
    await env.vidyo.seed([one, two, blocked, four])
    await env.kaltura.seed([seed_entry(one), seed_entry(two, status=7)])  # 2: content failed
    settings = env.settings(tag=SEED_TAG, metadata=False, importAfterId=3)
    first = await env.cycle(settings)
    assert (first.new, first.imported, first.held_back, first.complete) == (1, 1, 1, 1)
    assert [(w.record.id, w.steps) for w in first.planned] == [
        (2, ("content",)),
        (4, ("entry", "content")),
    ]
    entries = await env.entries()
    assert blocked["guid"] not in entries
    assert len(entries[four["guid"]]) == 1
