"""recstore's Kaltura client against the Kaltura stand-in over loopback."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr

from recstore.clients.kaltura import Call, KalturaClient, KalturaError, token_resource
from recstore.common.errors import NotFound, Throttled, Unauthorised
from recstore.common.retry import RetryPolicy
from recstore.devstack.kaltura import KalturaStandIn
from recstore.settings import KalturaSettings

FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02)
T0 = 1_600_000_000


@pytest.fixture
async def stand_in(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    server = KalturaStandIn(tmp_path, conversion_delay=0.1)
    runner = web.AppRunner(server.make_app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.set_base_url(f"http://127.0.0.1:{runner.addresses[0][1]}")
    yield server.state_entries()
    await runner.cleanup()


def settings(state: dict[str, Any], **extra: Any) -> KalturaSettings:
    return KalturaSettings(
        service_url=state["kaltura_url"],
        partner_id=state["kaltura_partner_id"],
        admin_secret=SecretStr(state["kaltura_admin_secret"]),
        **extra,
    )


async def seed(state: dict[str, Any], entries: list[dict[str, Any]]) -> None:
    async with aiohttp.ClientSession() as session:
        body = io.BytesIO(json.dumps({"entries": entries}).encode())  # large: stream it
        answer = await session.post(
            f"{state['kaltura_url']}/_devstack/seed",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        assert answer.status == 200, await answer.text()


async def test_listing_returns_every_entry_once_past_ten_thousand(stand_in: dict[str, Any]) -> None:
    entries = []
    for i in range(25_000):
        # bursts of many entries in one second, one burst larger than a page
        created = T0 + (i // 7 if i < 24_000 else 10_000)
        entries.append(
            {
                "id": f"0_{i:06d}",
                "name": f"e{i}",
                "createdAt": created,
                "tags": "bulk",
                "flavors": [],
            }
        )
    entries.append({"id": "0_other", "name": "x", "createdAt": T0, "tags": "other", "flavors": []})
    await seed(stand_in, entries)
    async with aiohttp.ClientSession() as session:
        client = KalturaClient(settings(stand_in), session, FAST)
        seen = [e.id async for e in client.iter_entries({"tagsMultiLikeOr": "bulk"}, page_size=500)]
        assert (
            await client.count({"objectType": "KalturaMediaEntryFilter", "tagsMultiLikeOr": "bulk"})
            == 25_000
        )
    assert len(seen) == 25_000
    assert set(seen) == {e["id"] for e in entries[:-1]}


async def test_multirequest_keeps_each_elements_outcome(stand_in: dict[str, Any]) -> None:
    await seed(stand_in, [{"id": "0_present", "name": "here", "createdAt": T0, "flavors": []}])
    async with aiohttp.ClientSession() as session:
        client = KalturaClient(settings(stand_in), session, FAST)
        results = await client.multirequest(
            [
                Call("media", "get", {"entryId": "0_present"}),
                Call("media", "get", {"entryId": "0_missing"}),
                Call(
                    "media",
                    "add",
                    {
                        "entry": {
                            "objectType": "KalturaMediaEntry",
                            "name": "new",
                            "mediaType": 1,
                            "referenceId": "guid-1",
                        }
                    },
                ),
                Call("media", "get", {"entryId": "{3:result:id}"}),
            ]
        )
    assert results[0]["name"] == "here"
    assert isinstance(results[1], KalturaError)
    assert results[1].code == "ENTRY_ID_NOT_FOUND"
    assert not results[1].transient
    assert results[3]["referenceId"] == "guid-1"


async def test_an_expired_session_is_renewed_once(stand_in: dict[str, Any]) -> None:
    await seed(stand_in, [{"id": "0_a", "name": "a", "createdAt": T0, "flavors": []}])
    times = iter([time.time() - 10 * 86400])  # the first session is made long ago, so expired

    def clock() -> float:
        return next(times, time.time())

    async with aiohttp.ClientSession() as session:
        client = KalturaClient(
            settings(stand_in, session_lifetime=3600), session, FAST, clock=clock
        )
        entry = await client.get_entry("0_a")
    assert entry.id == "0_a"


def wrong_secret_client(stand_in: dict[str, Any], session: aiohttp.ClientSession) -> KalturaClient:
    """A client whose sessions Kaltura refuses: made with another admin secret."""
    wrong = settings(stand_in).model_copy(update={"admin_secret": SecretStr("not-the-secret")})
    return KalturaClient(wrong, session, FAST)


async def test_errors_are_typed_and_the_secret_stays_out(stand_in: dict[str, Any]) -> None:
    async with aiohttp.ClientSession() as session:
        client = KalturaClient(settings(stand_in), session, FAST)
        with pytest.raises(KalturaError) as caught:
            await client.get_entry("0_nothing")
        assert caught.value.code == "ENTRY_ID_NOT_FOUND"
        assert stand_in["kaltura_admin_secret"] not in repr(client)
        wrong = wrong_secret_client(stand_in, session)
        with pytest.raises(KalturaError) as refused:
            await wrong.count({"objectType": "KalturaMediaEntryFilter"})
        assert refused.value.code == "INVALID_KS"
        assert "not-the-secret" not in str(refused.value)


async def test_each_answer_is_raised_as_its_kind(stand_in: dict[str, Any]) -> None:
    """The caller tells a missing object, a refused session and throttling apart by class."""
    async with aiohttp.ClientSession() as session:
        client = KalturaClient(settings(stand_in), session, FAST)
        for missing in (
            client.get_entry("0_nothing"),
            client.flavor_url("0_no_flavor"),
            client.upload_token("0_no_token"),
        ):
            with pytest.raises(NotFound) as caught:
                await missing
            assert isinstance(caught.value, KalturaError)
            assert not caught.value.transient
        [_, failed] = await client.multirequest(
            [Call("media", "count"), Call("media", "get", {"entryId": "0_nothing"})]
        )
        assert isinstance(failed, NotFound)  # in a multirequest, each failed element its kind
        wrong = wrong_secret_client(stand_in, session)
        with pytest.raises(Unauthorised) as refused:
            await wrong.count({"objectType": "KalturaMediaEntryFilter"})
        assert isinstance(refused.value, KalturaError)
        assert refused.value.code == "INVALID_KS"
        await fault(stand_in, error_rate=1, error_status=429, retry_after=0, path_pattern="media")
        try:
            with pytest.raises(Throttled) as throttled:
                await client.count({"objectType": "KalturaMediaEntryFilter"})
        finally:
            await fault(stand_in)
        assert throttled.value.status == 429
        assert throttled.value.retry_after == 0  # the server's Retry-After, read
        assert throttled.value.transient


async def test_flavors_tags_and_download_urls(stand_in: dict[str, Any]) -> None:
    entry = {
        "id": "0_v",
        "name": "v",
        "createdAt": T0,
        "tags": "a, b",
        "flavors": [{"isOriginal": True, "sizeInBytes": 4096}],
    }
    await seed(stand_in, [entry])
    async with aiohttp.ClientSession() as session:
        client = KalturaClient(settings(stand_in), session, FAST)
        [flavor] = await client.flavors("0_v")
        url = await client.flavor_url(flavor.id)
        async with session.get(url) as answer:
            assert len(await answer.read()) == 4096
        updated = await client.update_tags("0_v", ["a", "b", "archived_to_s3"])
    assert {t.strip() for t in (updated.tags or "").split(",")} == {"a", "b", "archived_to_s3"}


async def fault(state: dict[str, Any], **plan: Any) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{state['kaltura_url']}/_devstack/faults", json=plan) as answer,
    ):
        assert answer.status == 200, await answer.text()


async def chunks_of(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def wait_ready(client: KalturaClient, entry_id: str) -> None:
    """Until the entry and every flavor are READY and no replacement is under way (a
    replacement converts in a temporary entry behind the READY entry and its old flavors)."""
    for _ in range(200):
        entry = await client.get_entry(entry_id)
        flavors = await client.flavors(entry_id)
        replaced = not entry.replacing_entry_id
        ready = str(entry.status) == "2" and flavors and all(f.status == 2 for f in flavors)
        if ready and replaced:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{entry_id} never became READY")


async def test_entry_from_a_chunked_upload_that_resumes(stand_in: dict[str, Any]) -> None:
    data = bytes(range(256)) * 4000  # 1,024,000 bytes in 5 chunks
    async with aiohttp.ClientSession() as session:
        client = KalturaClient(settings(stand_in), session, FAST)
        entry = await client.add_media({"name": "uploaded", "tags": "x"})
        assert str(entry.status) == "7"  # NO_CONTENT
        token = await client.add_upload_token("video.mp4", len(data))
        # the second and third upload calls break: each resumes where the server stands
        await fault(stand_in, error_rate=1, error_status=503, path_pattern="uploadtoken", count=2)
        done = await client.upload(token.id, chunks_of(data, 250_000))
        assert done.uploaded_file_size == len(data)
        await client.add_content(entry.id, token_resource(token.id))
        await wait_ready(client, entry.id)
        [original] = [f for f in await client.flavors(entry.id) if f.is_original]
        async with session.get(await client.flavor_url(original.id)) as answer:
            assert await answer.read() == data

        # replace the content through a URL, a new thumbnail, flavors deleted, fields updated
        other = b"replacement" * 1000
        token2 = await client.add_upload_token("other.mp4", len(other))
        await client.upload(token2.id, chunks_of(other, 4096))
        await client.update_content(entry.id, token_resource(token2.id))
        await wait_ready(client, entry.id)
        await client.update_thumbnail(entry.id, 1.5)
        for flavor in await client.flavors(entry.id):
            if not flavor.is_original:
                await client.delete_flavor(flavor.id)
        [left] = await client.flavors(entry.id)
        async with session.get(await client.flavor_url(left.id)) as answer:
            assert await answer.read() == other
        renamed = await client.update_media(entry.id, {"name": "renamed"})
        assert renamed.name == "renamed"

        # an upload that does not add up to the announced size: the server takes it (it checks
        # fileSize only with autoFinalize), the client's own check after uploadToken.get does not
        short = await client.add_upload_token("short.mp4", 10)
        with pytest.raises(KalturaError) as refused:
            await client.upload(short.id, chunks_of(b"12345", 2))
        assert refused.value.code == "UPLOAD_INCOMPLETE"
        assert (await client.upload_token(short.id)).status == 2  # FULL_UPLOAD, 5 bytes


async def test_a_chunk_that_keeps_failing_is_tried_as_often_as_the_policy_says(
    stand_in: dict[str, Any],
) -> None:
    """One retry loop per chunk, the client's: a server that refuses every upload call gets
    the policy's attempts, each after asking the token how much arrived, not a resume loop of
    its own with retried questions inside it."""
    async with aiohttp.ClientSession() as session:
        client = KalturaClient(settings(stand_in), session, FAST)
        token = await client.add_upload_token("video.mp4", 10)
        async with session.post(f"{stand_in['kaltura_url']}/_devstack/requests"):
            pass
        await fault(stand_in, error_rate=1, error_status=503, path_pattern="uploadtoken/action")
        try:
            with pytest.raises(KalturaError) as caught:
                await client.upload(token.id, chunks_of(b"0123456789", 10))
        finally:
            await fault(stand_in)
        async with session.get(f"{stand_in['kaltura_url']}/_devstack/requests") as answer:
            served: dict[str, int] = await answer.json()
    assert caught.value.status == 503
    uploads = sum(n for endpoint, n in served.items() if "uploadtoken/action/upload" in endpoint)
    probes = sum(n for endpoint, n in served.items() if "uploadToken/action/get" in endpoint)
    assert (uploads, probes) == (FAST.attempts, FAST.attempts - 1)


async def test_metadata_profiles_and_metadata(stand_in: dict[str, Any]) -> None:
    xsd = (
        '<?xml version="1.0"?><xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema">'
        '<xsd:element name="metadata"><xsd:complexType><xsd:sequence>'
        '<xsd:element name="Title" type="xsd:string" minOccurs="0"/>'
        "</xsd:sequence></xsd:complexType></xsd:element></xsd:schema>"
    )
    await seed(stand_in, [{"id": "0_m", "createdAt": T0}])
    async with aiohttp.ClientSession() as session:
        client = KalturaClient(settings(stand_in), session, FAST)
        assert await client.metadata_profiles("sys_one") == []
        profile = await client.add_metadata_profile("One", "sys_one", xsd)
        [found] = await client.metadata_profiles("sys_one")
        assert found.id == profile.id
        added = await client.add_metadata(
            profile.id, "0_m", "<metadata><Title>a &amp; b</Title></metadata>"
        )
        await client.update_metadata(added.id, "<metadata><Title>c</Title></metadata>")
        [stored] = await client.list_metadata(profile.id, "0_m")
        assert "<Title>c</Title>" in (stored.xml or "")
        assert await client.list_metadata(profile.id, "0_other") == []
