"""The seed's filter options against the Kaltura stand-in, each checked against a plain oracle.

The oracle below computes from the seeded data which entries each option should pick, by the
option's documented meaning; recstore must list exactly those ids, through Kaltura filters
plus its own word checks.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from recstore.archive import inventory
from recstore.archive.filters import Selection, SelectionError, parse_statuses, read_id_file
from recstore.clients.kaltura import KalturaClient
from recstore.devstack.kaltura import KalturaStandIn
from tests.test_kaltura_client import seed, settings

YEAR = 365.25 * 86400
DAY = 86400
CATEGORIES = [
    "MediaSpace>site>galleries>Lectures",
    "MediaSpace>site>galleries>Seminars",
    "MediaSpace>site>channels>Research",
]
TAG_POOL = ["archived_to_s3", "flavors_deleted", "lecture", "archived_to_s3_old", "Legal_Hold"]


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[tuple[KalturaStandIn, KalturaClient]]:
    server = KalturaStandIn(tmp_path)
    runner = web.AppRunner(server.make_app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.set_base_url(f"http://127.0.0.1:{runner.addresses[0][1]}")
    async with aiohttp.ClientSession() as session:
        yield server, KalturaClient(settings(server.state_entries()), session)
    await runner.cleanup()


def away_from_cutoffs(t: float, now: float) -> int:
    """Keep generated times 10 days clear of every whole-year cutoff the tests use."""
    for years in (1, 2, 3):
        cutoff = now - years * YEAR
        if abs(t - cutoff) < 10 * DAY:
            t = cutoff - 10 * DAY
    return int(t)


def make_entries(now: float, n: int = 400) -> list[dict[str, Any]]:
    rng = random.Random(7)
    entries = []
    for i in range(n):
        created = away_from_cutoffs(now - rng.uniform(0, 6) * YEAR, now)
        played = None
        if rng.random() < 0.7:
            played = away_from_cutoffs(rng.uniform(created, now), now)
            played = max(played, created)
        entries.append(
            {
                "id": f"0_sel{i:04d}",
                "name": f"entry {i}",
                "createdAt": created,
                "lastPlayedAt": played,
                "plays": 0 if played is None else rng.randint(1, 4),
                "tags": ",".join(rng.sample(TAG_POOL, rng.randint(0, 3))),
                "categories": [rng.choice(CATEGORIES)],
                "status": rng.choice([2, 2, 2, 2, 7, -1, 1, 3]),
                "userId": f"user{i % 9}",
            }
        )
    return entries


def words(entry: dict[str, Any]) -> set[str]:
    return {w.strip().lower() for w in entry["tags"].split(",") if w.strip()}


async def ids_of(client: KalturaClient, selection: Selection, now: datetime) -> list[str]:
    return [e.id async for e in inventory.select(client, selection, now)]


async def test_each_option_picks_what_it_says(
    stack: tuple[KalturaStandIn, KalturaClient],
) -> None:
    server, client = stack
    now_ts = datetime.now(UTC).timestamp()
    now = datetime.fromtimestamp(now_ts, UTC)
    entries = make_entries(now_ts)
    await seed(server.state_entries(), entries)
    galleries = server.store.categories["MediaSpace>site>galleries"]
    live = [e for e in entries if e["status"] != 3]  # Kaltura hides DELETED unless asked
    by_age = sorted(live, key=lambda e: (e["createdAt"], e["id"]))

    def ago(years: float) -> float:
        return now_ts - years * YEAR

    cases: list[tuple[Selection, Callable[[dict[str, Any]], bool]]] = [
        (Selection(), lambda e: True),
        (Selection(tags=("archived_to_s3",)), lambda e: "archived_to_s3" in words(e)),
        (Selection(tags=("!archived_to_s3",)), lambda e: "archived_to_s3" not in words(e)),
        (
            Selection(tags=("archived_to_s3", "!flavors_deleted")),
            lambda e: "archived_to_s3" in words(e) and "flavors_deleted" not in words(e),
        ),
        (Selection(tags=("legal_hold",)), lambda e: "legal_hold" in words(e)),
        (Selection(categories=(galleries,)), lambda e: "galleries" in e["categories"][0]),
        (Selection(plays=0), lambda e: e["plays"] == 0),
        (Selection(statuses=(7, -1)), lambda e: e["status"] in (7, -1)),
        (Selection(created_within=2), lambda e: e["createdAt"] >= ago(2)),
        (Selection(created_before=3), lambda e: e["createdAt"] <= ago(3)),
        (
            Selection(played_within=1),
            lambda e: e["lastPlayedAt"] is not None and e["lastPlayedAt"] >= ago(1),
        ),
        (
            Selection(unplayed_for=2),
            lambda e: (e["lastPlayedAt"] or 0) <= ago(2) and e["createdAt"] <= ago(2),
        ),
        (
            Selection(unplayed_for=2, tags=("!archived_to_s3",)),
            lambda e: (
                (e["lastPlayedAt"] or 0) <= ago(2)
                and e["createdAt"] <= ago(2)
                and "archived_to_s3" not in words(e)
            ),
        ),
        (
            Selection(played_within=3, unplayed_for=1),
            lambda e: e["lastPlayedAt"] is not None and ago(3) <= e["lastPlayedAt"] <= ago(1),
        ),
    ]
    for selection, wanted in cases:
        pool = entries if selection.statuses else live
        expected = sorted(e["id"] for e in pool if wanted(e))
        got = await ids_of(client, selection, now)
        assert len(got) == len(set(got)), selection
        assert sorted(got) == expected, selection
        assert await inventory.count(client, selection, now) == len(expected), selection
        assert 0 < len(expected) < len(entries) or selection == Selection(), selection

    # --id (duplicates and unknown ids are harmless), --max_entries (oldest first)
    picked = [by_age[5]["id"], by_age[1]["id"], by_age[5]["id"], "0_nosuchid"]
    assert sorted(await ids_of(client, Selection(ids=tuple(picked)), now)) == sorted(
        {by_age[5]["id"], by_age[1]["id"]}
    )
    first = await ids_of(client, Selection(max_entries=7), now)
    assert first == [e["id"] for e in by_age[:7]]
    assert await inventory.count(client, Selection(max_entries=7), now) == 7
    assert await ids_of(client, Selection(max_entries=0), now) == []


async def test_more_than_ten_thousand_matches_each_once(
    stack: tuple[KalturaStandIn, KalturaClient],
) -> None:
    server, client = stack
    now_ts = datetime.now(UTC).timestamp()
    old = int(now_ts - 5 * YEAR)
    entries = [
        # 25,000 old ones, many sharing a second (the window's boundary must not lose or repeat)
        {"id": f"1_old{i:05d}", "createdAt": old + i // 7, "tags": "lecture", "flavors": []}
        for i in range(25_000)
    ] + [
        {"id": f"1_new{i:05d}", "createdAt": int(now_ts - DAY), "flavors": []} for i in range(3_000)
    ]
    await seed(server.state_entries(), entries)
    now = datetime.fromtimestamp(now_ts, UTC)
    selection = Selection(created_before=1, tags=("lecture",))
    got = await ids_of(client, selection, now)
    assert len(got) == 25_000
    assert set(got) == {e["id"] for e in entries[:25_000]}


def test_option_values_are_checked() -> None:
    with pytest.raises(SelectionError, match="--tag"):
        Selection(tags=("a,b",))
    with pytest.raises(SelectionError, match="--unplayed_for"):
        Selection(unplayed_for=-1)
    with pytest.raises(SelectionError, match="--status"):
        parse_statuses(["1,x"])
    assert parse_statuses(["1,-2", "0"]) == (1, -2, 0)
    assert read_id_file(["0_a 0_b\n", "# note\n", "0_c # trailing\n"]) == ["0_a", "0_b", "0_c"]


def test_unplayed_for_also_bounds_creation() -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    f = Selection(unplayed_for=2, created_before=1).kaltura_filter(now)
    cutoff = int(datetime(2024, 3, 1, tzinfo=UTC).timestamp())
    assert f["lastPlayedAtLessThanOrEqualOrNull"] == cutoff
    assert f["createdAtLessThanOrEqual"] == cutoff  # the stricter of the two bounds
    assert "tagsMultiLikeAnd" not in Selection(tags=("!x",)).kaltura_filter(now)
