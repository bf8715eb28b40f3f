"""recstore's Kaltura client against the Kaltura stand-in over loopback."""

from __future__ import annotations

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

from recstore.clients.kaltura import Call, KalturaClient, KalturaError
from recstore.config import KalturaSettings
from recstore.devstack.kaltura import KalturaStandIn
from recstore.retry import RetryPolicy

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
        seen = [
            e["id"] async for e in client.iter_entries({"tagsMultiLikeOr": "bulk"}, page_size=500)
        ]
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
    assert entry["id"] == "0_a"


async def test_errors_are_typed_and_the_secret_stays_out(stand_in: dict[str, Any]) -> None:
    async with aiohttp.ClientSession() as session:
        client = KalturaClient(settings(stand_in), session, FAST)
        with pytest.raises(KalturaError) as caught:
            await client.get_entry("0_nothing")
        assert caught.value.code == "ENTRY_ID_NOT_FOUND"
        assert stand_in["kaltura_admin_secret"] not in repr(client)
        wrong = KalturaClient(
            settings(stand_in).model_copy(update={"admin_secret": SecretStr("not-the-secret")}),
            session,
            FAST,
        )
        with pytest.raises(KalturaError) as refused:
            await wrong.count({"objectType": "KalturaMediaEntryFilter"})
        assert refused.value.code == "INVALID_KS"
        assert "not-the-secret" not in str(refused.value)


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
        url = await client.flavor_url(flavor["id"])
        async with session.get(url) as answer:
            assert len(await answer.read()) == 4096
        updated = await client.update_tags("0_v", ["a", "b", "archived_to_s3"])
    assert {t.strip() for t in updated["tags"].split(",")} == {"a", "b", "archived_to_s3"}
