"""The Kaltura stand-in speaks the real wire format: the official ``kalturaapiclient`` (XML
answers, JSON and multipart requests) and raw ``format=1`` JSON requests see the same data.

The official client is synchronous (requests), so its calls run in a thread while the stand-in
serves on the test's event loop.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web
from KalturaClient import KalturaClient, KalturaConfiguration
from KalturaClient.exceptions import KalturaException
from KalturaClient.Plugins.Core import (
    KalturaBaseEntry,
    KalturaFilterPager,
    KalturaFlavorAssetFilter,
    KalturaMediaEntry,
    KalturaMediaEntryFilter,
    KalturaMediaType,
    KalturaSessionType,
    KalturaUploadedFileTokenResource,
    KalturaUploadToken,
    KalturaUrlResource,
)
from KalturaClient.Plugins.Metadata import (
    KalturaMetadataFilter,
    KalturaMetadataObjectType,
    KalturaMetadataProfile,
    KalturaMetadataProfileFilter,
)

from recstore.devstack.kaltura import ADMIN_SECRET, PARTNER_ID, KalturaStandIn
from recstore.devstack.kaltura_ks import make_ks

T = TypeVar("T")
DAY = 86400
BASE_TIME = 1_600_000_000  # well past the ten-year "relative time" threshold
CONTENT = b"original video bytes " * 100

XSD = """<?xml version="1.0" encoding="UTF-8"?>
<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema">
  <xsd:element name="metadata">
    <xsd:complexType>
      <xsd:sequence>
        <xsd:element name="RecordingId" type="xsd:string" minOccurs="0"/>
        <xsd:element name="RecordingGuid" type="xsd:string" minOccurs="0"/>
        <xsd:element name="DateCreated" type="xsd:long" minOccurs="0"/>
      </xsd:sequence>
    </xsd:complexType>
  </xsd:element>
</xsd:schema>"""


class Kaltura:
    """The running stand-in plus helpers for both kinds of client."""

    def __init__(self, stand_in: KalturaStandIn, base: str, http: aiohttp.ClientSession) -> None:
        self.stand_in = stand_in
        self.base = base
        self.http = http
        self.ks = make_ks(ADMIN_SECRET, PARTNER_ID, "admin", 2, privileges="disableentitlement")

    def official(self, ks: str | None = None) -> Any:
        client = KalturaClient(KalturaConfiguration(serviceUrl=self.base))
        client.setKs(ks if ks is not None else self.ks)
        return client

    async def raw(self, service: str, action: str, **params: Any) -> Any:
        body = {"format": 1, "ks": self.ks, **params}
        url = f"{self.base}/api_v3/service/{service}/action/{action}"
        async with self.http.post(url, json=body) as response:
            assert response.status == 200
            return await response.json()

    async def seed(self, document: dict[str, Any]) -> dict[str, Any]:
        async with self.http.post(f"{self.base}/_devstack/seed", json=document) as response:
            assert response.status == 200, await response.text()
            result: dict[str, Any] = await response.json()
            return result


async def in_thread(func: Callable[[], T]) -> T:
    return await asyncio.to_thread(func)


@pytest.fixture
async def kaltura(tmp_path: Path) -> AsyncIterator[Kaltura]:
    stand_in = KalturaStandIn(tmp_path / "kaltura", conversion_delay=0.3)
    runner = web.AppRunner(stand_in.make_app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    stand_in.set_base_url(base)
    async with aiohttp.ClientSession() as http:
        yield Kaltura(stand_in, base, http)
    await runner.cleanup()


def lectures() -> dict[str, Any]:
    return {
        "entries": [
            {
                "id": f"0_lec{i}",
                "name": f"Lecture {i}",
                "createdAt": BASE_TIME + i * DAY,
                "lastPlayedAt": None if i == 0 else BASE_TIME + 100 * DAY,
                "plays": i,
                "tags": "lecture,physics" if i % 2 == 0 else "lecture",
                "categories": ["MediaSpace>site>Lectures"],
                "userId": "alice",
                "flavors": [
                    {
                        "id": f"0_fl{i}",
                        "isOriginal": True,
                        "content": base64.b64encode(CONTENT).decode(),
                    },
                    {"isOriginal": False, "size": 10},
                ],
            }
            for i in range(6)
        ]
        + [{"id": "0_other", "name": "Other", "createdAt": BASE_TIME, "tags": "archived_to_s3"}]
    }


async def test_official_client_session_list_and_same_data_as_json(kaltura: Kaltura) -> None:
    await kaltura.seed(lectures())
    anonymous = kaltura.official(ks="")
    ks = await in_thread(
        lambda: anonymous.session.start(ADMIN_SECRET, "admin", KalturaSessionType.ADMIN, PARTNER_ID)
    )
    client = kaltura.official(ks=ks)

    flt = KalturaMediaEntryFilter()
    flt.tagsLike = "lecture"
    flt.createdAtGreaterThanOrEqual = BASE_TIME + 1 * DAY
    flt.createdAtLessThanOrEqual = BASE_TIME + 4 * DAY
    flt.orderBy = "+createdAt"
    pager = KalturaFilterPager(pageSize=2, pageIndex=2)
    page = await in_thread(lambda: client.media.list(flt, pager))
    assert page.totalCount == 4
    assert [e.id for e in page.objects] == ["0_lec3", "0_lec4"]
    entry = page.objects[0]
    assert (entry.name, entry.plays, entry.tags) == ("Lecture 3", 3, "lecture")
    assert entry.status.getValue() == "2"
    assert entry.createdAt == BASE_TIME + 3 * DAY

    flt.orderBy = "-createdAt"
    flt.tagsMultiLikeOr = "physics"
    newest = await in_thread(lambda: client.media.list(flt, KalturaFilterPager(pageSize=10)))
    assert [e.id for e in newest.objects] == ["0_lec4", "0_lec2"]

    raw = await kaltura.raw(
        "media",
        "list",
        filter={
            "objectType": "KalturaMediaEntryFilter",
            "tagsLike": "lecture",
            "createdAtGreaterThanOrEqual": BASE_TIME + DAY,
            "createdAtLessThanOrEqual": BASE_TIME + 4 * DAY,
            "orderBy": "+createdAt",
        },
        pager={"objectType": "KalturaFilterPager", "pageSize": 2, "pageIndex": 2},
    )
    assert raw["objectType"] == "KalturaMediaListResponse"
    assert raw["totalCount"] == 4
    assert [e["id"] for e in raw["objects"]] == [e.id for e in page.objects]
    for mine, theirs in zip(raw["objects"], page.objects, strict=True):
        for name in ("name", "tags", "plays", "lastPlayedAt", "createdAt", "userId", "categories"):
            assert mine[name] == getattr(theirs, name), name

    count = await in_thread(lambda: client.media.count(flt))
    assert count == 2
    base = await in_thread(lambda: client.baseEntry.list(flt))
    assert [e.id for e in base.objects] == ["0_lec4", "0_lec2"]
    assert isinstance(base.objects[0], KalturaMediaEntry)


async def test_flavors_download_and_tag_update(kaltura: Kaltura) -> None:
    await kaltura.seed(lectures())
    client = kaltura.official()
    flt = KalturaFlavorAssetFilter()
    flt.entryIdEqual = "0_lec1"
    flavors = await in_thread(lambda: client.flavorAsset.list(flt))
    assert flavors.totalCount == 2
    original = next(f for f in flavors.objects if f.isOriginal)
    assert original.id == "0_fl1"
    assert original.sizeInBytes == len(CONTENT)
    assert original.size == (len(CONTENT) + 1023) // 1024
    assert original.status.getValue() == 2
    url = await in_thread(lambda: client.flavorAsset.getUrl(original.id))
    async with kaltura.http.get(url) as response:
        assert await response.read() == CONTENT
    derived = next(f for f in flavors.objects if not f.isOriginal)
    url = await in_thread(lambda: client.flavorAsset.getUrl(derived.id))
    async with kaltura.http.get(url) as response:
        assert len(await response.read()) == 10 * 1024

    update = KalturaBaseEntry()
    update.tags = "lecture, archived_to_s3"
    updated = await in_thread(lambda: client.baseEntry.update("0_lec1", update))
    assert updated.tags == "lecture,archived_to_s3"
    assert updated.name == "Lecture 1"  # a partial update
    raw = await kaltura.raw("baseentry", "get", entryId="0_lec1")
    assert raw["tags"] == "lecture,archived_to_s3"
    tagged = await kaltura.raw("media", "list", filter={"tagsMultiLikeAnd": "archived_to_s3"})
    assert sorted(e["id"] for e in tagged["objects"]) == ["0_lec1", "0_other"]

    await in_thread(lambda: client.flavorAsset.delete(original.id))
    left = await in_thread(lambda: client.flavorAsset.list(flt))
    assert [f.id for f in left.objects] == [derived.id]
    with pytest.raises(KalturaException) as missing:
        await in_thread(lambda: client.flavorAsset.getUrl(original.id))
    assert missing.value.code == "FLAVOR_ASSET_ID_NOT_FOUND"


async def test_multirequest_with_references_and_independent_errors(kaltura: Kaltura) -> None:
    await kaltura.seed(lectures())
    client = kaltura.official()
    profile = KalturaMetadataProfile()
    profile.metadataObjectType = KalturaMetadataObjectType.ENTRY
    profile.name = profile.systemName = "vidyoreplaymetadata00"
    profile.createMode = 1
    created = await in_thread(lambda: client.metadata.metadataProfile.add(profile, XSD))

    async with kaltura.http.post(
        f"{kaltura.base}/api_v3/service/flavorasset/action/getUrl",
        data={"ks": kaltura.ks, "id": "0_fl2", "format": "1"},
    ) as response:
        source_url = await response.json()  # form-encoded request, JSON answer

    def batch() -> list[Any]:
        client.startMultiRequest()
        entry = KalturaMediaEntry()
        entry.mediaType = KalturaMediaType.VIDEO
        entry.name = "Recording 7"
        entry.referenceId = "guid-7"
        entry.partnerSortValue = 7
        entry.tags = "vidyo,meeting"
        added = client.media.add(entry)
        client.media.addContent(added.id, KalturaUrlResource(url=source_url))
        xml = (
            "<metadata><RecordingId>7</RecordingId><RecordingGuid>guid-7</RecordingGuid></metadata>"
        )
        client.metadata.metadata.add(created.id, KalturaMetadataObjectType.ENTRY, added.id, xml)
        client.media.get("0_missing")
        client.baseEntry.get(added.id)
        results: list[Any] = client.doMultiRequest()
        return results

    results = await in_thread(batch)
    assert len(results) == 5
    new_id = results[0].id
    assert results[0].referenceId == "guid-7"
    assert results[0].status.getValue() == "7"  # NO_CONTENT until content is added
    assert results[1].id == new_id
    assert results[2].objectId == new_id
    assert isinstance(results[3], KalturaException)
    assert results[3].code == "ENTRY_ID_NOT_FOUND"
    assert results[4].id == new_id

    ready = await wait_ready(kaltura, new_id)
    assert ready["referenceId"] == "guid-7"
    by_ref = await kaltura.raw("media", "list", filter={"referenceIdIn": "guid-7,guid-x"})
    assert [e["id"] for e in by_ref["objects"]] == [new_id]
    flavors = await kaltura.raw("flavorasset", "list", filter={"entryIdEqual": new_id})
    original = next(f for f in flavors["objects"] if f["isOriginal"])
    assert original["sizeInBytes"] == len(CONTENT)

    # the PHP client's form encoding: "N:param", 1-based, a failed reference fails its call
    form = {
        "ks": kaltura.ks,
        "format": "1",
        "1:service": "media",
        "1:action": "get",
        "1:entryId": "0_lec0",
        "2:service": "baseentry",
        "2:action": "update",
        "2:entryId": "{1:result:id}",
        "2:baseEntry:objectType": "KalturaBaseEntry",
        "2:baseEntry:description": "first of {1:result:name}",
        "3:service": "media",
        "3:action": "get",
        "3:entryId": "0_nope",
        "4:service": "media",
        "4:action": "get",
        "4:entryId": "{3:result:id}",
    }
    async with kaltura.http.post(
        f"{kaltura.base}/api_v3/service/multirequest", data=form
    ) as response:
        answers = await response.json()
    assert answers[1]["description"] == "first of Lecture 0"
    assert answers[2]["code"] == "ENTRY_ID_NOT_FOUND"
    assert answers[3]["code"] == "MISSING_MANDATORY_PARAMETER"


async def wait_ready(kaltura: Kaltura, entry_id: str, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        entry: dict[str, Any] = await kaltura.raw("media", "get", entryId=entry_id)
        if entry["status"] == "2":
            return entry
        assert time.monotonic() < deadline, entry
        await asyncio.sleep(0.05)


async def test_ks_errors(kaltura: Kaltura) -> None:
    await kaltura.seed(lectures())
    expired = make_ks(ADMIN_SECRET, PARTNER_ID, "admin", 2, expiry=-60)
    with pytest.raises(KalturaException) as error:
        await in_thread(lambda: kaltura.official(ks=expired).media.list())
    assert error.value.code == "INVALID_KS"

    kaltura.ks = expired
    answer = await kaltura.raw("media", "list")
    assert answer["objectType"] == "KalturaAPIException"
    assert answer["args"]["ERR_DESC"] == "EXPIRED"
    kaltura.ks = "not-a-ks"
    assert (await kaltura.raw("media", "list"))["args"]["ERR_DESC"] == "INVALID_STR"
    kaltura.ks = make_ks(ADMIN_SECRET, PARTNER_ID + 1, "admin", 2)
    assert (await kaltura.raw("media", "list"))["args"]["ERR_DESC"] == "INVALID_PARTNER"
    kaltura.ks = make_ks("wrong-secret", PARTNER_ID, "admin", 2)
    assert (await kaltura.raw("media", "list"))["code"] == "INVALID_KS"
    kaltura.ks = ""
    assert (await kaltura.raw("media", "list"))["code"] == "MISSING_KS"
    user_ks = make_ks(ADMIN_SECRET, PARTNER_ID, "bob", 0)
    with pytest.raises(KalturaException) as forbidden:
        await in_thread(lambda: kaltura.official(ks=user_ks).flavorAsset.delete("0_fl1"))
    assert forbidden.value.code == "SERVICE_FORBIDDEN"
    with pytest.raises(KalturaException) as bad_secret:
        await in_thread(lambda: kaltura.official(ks="").session.start("nope", "x", 2, PARTNER_ID))
    assert bad_secret.value.code == "START_SESSION_ERROR"

    # format=2 (the default) renders errors as <error> under <result>, still with HTTP 200
    async with kaltura.http.post(
        f"{kaltura.base}/api_v3/service/media/action/list", data={"ks": "x"}
    ) as response:
        assert response.status == 200
        text = await response.text()
    assert "<result><error><code>INVALID_KS</code>" in text
    assert "<objectType>KalturaAPIException</objectType>" in text


async def test_chunked_upload_then_content_turns_ready(kaltura: Kaltura, tmp_path: Path) -> None:
    client = kaltura.official()
    first, second = CONTENT[:1000], CONTENT[1000:]
    chunks = []
    for i, data in enumerate((first, second)):
        path = tmp_path / f"chunk{i}.mp4"
        path.write_bytes(data)
        chunks.append(path)

    def upload() -> Any:
        token = client.uploadToken.add(
            KalturaUploadToken(fileName="placeholder.mp4", fileSize=len(CONTENT))
        )
        with chunks[0].open("rb") as f:
            partial = client.uploadToken.upload(token.id, f, False, False)
        assert partial.status.getValue() == 1  # PARTIAL_UPLOAD
        with chunks[0].open("rb") as f:  # a retried chunk overwrites at resumeAt
            client.uploadToken.upload(token.id, f, True, False, 0)
        with chunks[1].open("rb") as f:
            done = client.uploadToken.upload(token.id, f, True, True, len(first))
        assert done.status.getValue() == 2  # FULL_UPLOAD
        assert done.uploadedFileSize == len(CONTENT)
        entry = KalturaMediaEntry()
        entry.mediaType = KalturaMediaType.VIDEO
        entry.name = "placeholder"
        added = client.media.add(entry)
        return client.media.addContent(added.id, KalturaUploadedFileTokenResource(token=token.id))

    entry = await in_thread(upload)
    assert entry.status.getValue() == "1"  # PRECONVERT
    flt = KalturaFlavorAssetFilter()
    flt.entryIdEqual = entry.id
    converting = await in_thread(lambda: client.flavorAsset.list(flt))
    assert {f.status.getValue() for f in converting.objects} == {1}  # CONVERTING
    with pytest.raises(KalturaException):
        await in_thread(lambda: client.flavorAsset.getUrl(converting.objects[0].id))

    await wait_ready(kaltura, entry.id)
    ready = await in_thread(lambda: client.flavorAsset.list(flt))
    assert {f.status.getValue() for f in ready.objects} == {2}
    original = next(f for f in ready.objects if f.isOriginal)
    url = await in_thread(lambda: client.flavorAsset.getUrl(original.id))
    async with kaltura.http.get(url) as response:
        assert await response.read() == CONTENT
    with pytest.raises(KalturaException) as again:
        await in_thread(lambda: client.media.addContent(entry.id, KalturaUrlResource(url=url)))
    assert again.value.code == "ENTRY_ALREADY_WITH_CONTENT"


async def test_metadata_profile_and_objects(kaltura: Kaltura) -> None:
    await kaltura.seed(lectures())
    client = kaltura.official()
    profile = KalturaMetadataProfile()
    profile.metadataObjectType = KalturaMetadataObjectType.ENTRY
    profile.name = profile.systemName = "vidyoreplaymetadata00"
    added = await in_thread(lambda: client.metadata.metadataProfile.add(profile, XSD))
    pflt = KalturaMetadataProfileFilter()
    pflt.systemNameEqual = "vidyoreplaymetadata00"
    found = await in_thread(lambda: client.metadata.metadataProfile.list(pflt))
    assert [p.id for p in found.objects] == [added.id]
    assert "RecordingGuid" in found.objects[0].xsd

    good = "<metadata><RecordingId>1</RecordingId><DateCreated>1600000000</DateCreated></metadata>"
    item = await in_thread(lambda: client.metadata.metadata.add(added.id, "1", "0_lec1", good))
    assert item.objectId == "0_lec1"
    assert item.version == 1
    out_of_order = "<metadata><DateCreated>1</DateCreated><RecordingId>1</RecordingId></metadata>"
    with pytest.raises(KalturaException) as invalid:
        await in_thread(lambda: client.metadata.metadata.add(added.id, "1", "0_lec2", out_of_order))
    assert invalid.value.code == "INVALID_METADATA_DATA"
    with pytest.raises(KalturaException) as twice:
        await in_thread(lambda: client.metadata.metadata.add(added.id, "1", "0_lec1", good))
    assert twice.value.code == "METADATA_ALREADY_EXISTS"

    newer = good.replace(">1<", ">2<")
    updated = await in_thread(lambda: client.metadata.metadata.update(item.id, newer))
    assert updated.version == 2
    mflt = KalturaMetadataFilter()
    mflt.metadataProfileIdEqual = added.id
    mflt.objectIdEqual = "0_lec1"
    listed = await in_thread(lambda: client.metadata.metadata.list(mflt))
    assert [m.xml for m in listed.objects] == [newer]

    async with kaltura.http.get(f"{kaltura.base}/_devstack/state") as response:
        state = await response.json()
    assert [m["objectId"] for m in state["metadata"]] == ["0_lec1"]
    assert len(state["entries"]) == 7


async def test_fifty_thousand_entries_and_the_paging_cap(kaltura: Kaltura) -> None:
    answer = await kaltura.seed({"generate": {"count": 50_000, "seed": 7}})
    assert answer["generated"] == 50_000
    client = kaltura.official()
    flt = KalturaMediaEntryFilter()
    flt.orderBy = "+createdAt"
    last_full = await in_thread(
        lambda: client.media.list(flt, KalturaFilterPager(pageSize=500, pageIndex=20))
    )
    assert last_full.totalCount == 50_000
    assert len(last_full.objects) == 500
    # SphinxCriteria::applyFilters: an offset of 10,000 or more is refused, a page that
    # crosses it is cut at it
    with pytest.raises(KalturaException) as past_cap:
        await in_thread(
            lambda: client.media.list(flt, KalturaFilterPager(pageSize=500, pageIndex=21))
        )
    assert past_cap.value.code == "QUERY_EXCEEDED_MAX_MATCHES_ALLOWED"
    crossing = await in_thread(
        lambda: client.media.list(flt, KalturaFilterPager(pageSize=300, pageIndex=34))
    )
    assert len(crossing.objects) == 100  # rows 9,900 to 9,999

    # the documented way past the cap: move a createdAt window forward
    boundary = last_full.objects[-1].createdAt
    flt.createdAtGreaterThanOrEqual = boundary
    moved = await in_thread(
        lambda: client.media.list(flt, KalturaFilterPager(pageSize=500, pageIndex=1))
    )
    assert moved.objects[0].createdAt == boundary
    assert moved.totalCount > 40_000

    unplayed = await kaltura.raw(
        "media",
        "count",
        filter={"lastPlayedAtLessThanOrEqualOrNull": int(time.time()) - 365 * DAY},
    )
    assert 0 < unplayed < 50_000


async def test_faults_are_injected(kaltura: Kaltura) -> None:
    plan = {"error_rate": 1.0, "error_status": 503, "count": 1}
    async with kaltura.http.post(f"{kaltura.base}/_devstack/faults", json=plan) as response:
        assert response.status == 200
    url = f"{kaltura.base}/api_v3/service/media/action/list"
    async with kaltura.http.post(url, json={"ks": kaltura.ks, "format": 1}) as response:
        assert response.status == 503
    assert (await kaltura.raw("media", "list"))["totalCount"] == 0


async def test_form_notations_replacement_and_plays(kaltura: Kaltura) -> None:
    await kaltura.seed(lectures())
    # bracket notation in a form body, service and action in the query (index.php form)
    form = {
        "ks": kaltura.ks,
        "format": "1",
        "filter[objectType]": "KalturaMediaEntryFilter",
        "filter[idIn]": "0_lec1,0_lec2,0_other",
        # plays is compared through advancedSearch (GREATER_THAN_OR_EQUAL is 3)
        "filter[advancedSearch][objectType]": "KalturaMediaEntryCompareAttributeCondition",
        "filter[advancedSearch][attribute]": "plays",
        "filter[advancedSearch][comparison]": "3",
        "filter[advancedSearch][value]": "2",
        "pager[pageSize]": "500",
    }
    async with kaltura.http.post(
        f"{kaltura.base}/api_v3/index.php?service=media&action=list", data=form
    ) as response:
        listed = await response.json()
    assert [e["id"] for e in listed["objects"]] == ["0_lec2"]
    # no plays* filter field exists: the server drops it unread, so it filters nothing
    # (KalturaRequestDeserializer::buildObject)
    made_up = await kaltura.raw(
        "media", "list", filter={"idIn": "0_lec1,0_lec2,0_other", "playsGreaterThanOrEqual": 2}
    )
    assert len(made_up["objects"]) == 3

    async with kaltura.http.post(
        f"{kaltura.base}/_devstack/play", json={"entryId": "0_lec0", "at": BASE_TIME + 500 * DAY}
    ) as response:
        assert (await response.json())["plays"] == 1
    played = await kaltura.raw(
        "media", "list", filter={"lastPlayedAtGreaterThanOrEqual": BASE_TIME + 400 * DAY}
    )
    assert [e["id"] for e in played["objects"]] == ["0_lec0"]

    # replace_video: delete every flavor, then updateContent from a URL; READY after the delay
    flavors = await kaltura.raw("flavorasset", "list", filter={"entryIdEqual": "0_lec3"})
    for flavor in flavors["objects"]:
        assert await kaltura.raw("flavorasset", "delete", id=flavor["id"]) is None
    source = await kaltura.raw("flavorasset", "getUrl", id="0_fl4")
    replaced = await kaltura.raw(
        "media",
        "updateContent",
        entryId="0_lec3",
        resource={"objectType": "KalturaUrlResource", "url": source},
    )
    assert replaced["replacementStatus"] == "1"
    await wait_ready(kaltura, "0_lec3")
    deadline = time.monotonic() + 10
    while True:
        now = await kaltura.raw("flavorasset", "list", filter={"entryIdEqual": "0_lec3"})
        if now["objects"] and all(f["status"] == 2 for f in now["objects"]):
            break
        assert time.monotonic() < deadline, now
        await asyncio.sleep(0.05)
    assert {f["id"] for f in now["objects"]}.isdisjoint(f["id"] for f in flavors["objects"])

    refused = await kaltura.raw(
        "media",
        "updateContent",
        entryId="0_lec3",
        resource={"objectType": "KalturaUrlResource", "url": "http://example.com/a.mp4"},
    )
    assert refused["code"] == "RESOURCE_TYPE_NOT_SUPPORTED"
    unknown = await kaltura.raw("media", "explode")
    assert unknown["code"] == "ACTION_DOES_NOT_EXISTS"
