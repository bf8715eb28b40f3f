"""VidyoSync cycles against the VidyoReplay and Kaltura stand-ins (both on the test's loop).

Kaltura pulls every file from the VidyoReplay stand-in with the credentials the syncer hands
it, so "content READY with the recording's bytes" proves the whole path. Per-call failures
inside a multirequest come from the Kaltura stand-in's ``callFaults``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from lxml import etree

from recstore.clients.aws import aws_client
from recstore.clients.kaltura import KalturaClient
from recstore.common import events
from recstore.devstack.seed import aws_settings_from_state
from recstore.runtime.supervisor import Supervisor
from recstore.runtime.web import WebServer
from recstore.settings import DaemonSettings, HttpSettings, Settings
from recstore.sync.metadata import FIELDS, profile_xsd
from recstore.workers.vidyo_sync import CycleReport, VidyoSync, open_sync, setup_metadata
from tests.archive_helpers import StandIn, original_bytes, stand_in
from tests.conftest import StackProcess, until
from tests.vidyo_helpers import FAST, VidyoServer, recording, vidyo_stand_in

HOSTILE_TITLE = "Q&A <intro> \"quoted\" 'single' — Zürich 東京 🎥"
HOSTILE_COMMENTS = "a < b && c > d; \"x\" 'y' ünïcödé\nsecond line"
_serial = itertools.count()


class Env:
    def __init__(self, vidyo: VidyoServer, kaltura: StandIn) -> None:
        self.vidyo = vidyo
        self.kaltura = kaltura

    def settings(self, **sync: Any) -> Settings:
        doc: dict[str, Any] = {
            "kaltura": {
                "serviceUrl": self.kaltura.url,
                "partnerId": self.kaltura.state["kaltura_partner_id"],
                "adminSecret": self.kaltura.state["kaltura_admin_secret"],
            },
            "vidyo": {
                "url": self.vidyo.url,
                "user": self.vidyo.user,
                "password": self.vidyo.password,
                "pageSize": 2,
            },
            "leases": {"enabled": False},
            "workers": {
                "FileTransferer": {"enabled": False},
                "DracoonGlobalSharer": {"count": 0},
                "VidyoSync": {
                    "enabled": True,
                    "tag": "vidyoreplay",
                    "categories": ["MediaSpace>site>Vidyo"],
                    "batchSize": 2,
                    **sync,
                },
            },
        }
        return Settings.model_validate(doc)

    async def cycle(self, settings: Settings, dry_run: bool = False) -> CycleReport:
        async with open_sync(settings, FAST) as service:
            return await service.cycle(dry_run=dry_run)

    async def setup_profile(self, settings: Settings) -> int:
        async with aiohttp.ClientSession() as http:
            client = KalturaClient(settings.kaltura, http, FAST)
            profile_id, _ = await setup_metadata(client, "vidyoreplaymetadata00")
            return profile_id

    async def call_faults(self, *faults: dict[str, Any]) -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{self.kaltura.url}/_devstack/settings", json={"callFaults": list(faults)}
            ) as answer,
        ):
            assert answer.status == 200, await answer.text()

    async def entries(self) -> dict[str, list[dict[str, Any]]]:
        """Kaltura's entries by reference id (every status)."""
        state = await self.kaltura.snapshot()
        grouped: dict[str, list[dict[str, Any]]] = {}
        for entry in state["entries"]:
            grouped.setdefault(entry["referenceId"] or "", []).append(entry)
        return grouped

    async def metadata(self) -> dict[str, list[str]]:
        """Metadata XML by entry id."""
        state = await self.kaltura.snapshot()
        found: dict[str, list[str]] = {}
        for item in state["metadata"]:
            found.setdefault(item["objectId"], []).append(item["xml"])
        return found

    async def wait_ready(self, guids: list[str], patience: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + patience
        while True:
            entries = await self.entries()
            ready = {g: entries[g][0] for g in guids if g in entries}
            if len(ready) == len(guids) and all(e["status"] == "2" for e in ready.values()):
                return ready
            assert time.monotonic() < deadline, f"not READY: {ready}"
            await asyncio.sleep(0.1)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with (
        vidyo_stand_in(tmp_path / "vidyo") as vidyo,
        stand_in(tmp_path / "kaltura") as kaltura,
    ):
        yield Env(vidyo, kaltura)


def codes(caplog: pytest.LogCaptureFixture) -> list[int]:
    return [r.event.code for r in caplog.records if hasattr(r, "event")]


async def test_recordings_arrive_ready_with_valid_metadata_once_and_new_ones_next_cycle(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    seeds = [
        recording(1, title=HOSTILE_TITLE, comments=HOSTILE_COMMENTS, tags="physics, Lecture"),
        recording(2, userFullName="Zoë <Jörg> & Co", roomName='Room "A"', pin="<12&34>"),
        recording(3, comments=None, tags=None, endTime=None, relativeLink=True),
    ]
    await env.vidyo.seed(seeds)
    settings = env.settings()
    profile_id = await env.setup_profile(settings)
    with caplog.at_level(logging.INFO):
        first = await env.cycle(settings)
    assert (first.new, first.imported, first.failed, first.profile_id) == (3, 3, 0, profile_id)
    guids = [s["guid"] for s in seeds]
    ready = await env.wait_ready(guids)

    async with aiohttp.ClientSession() as http:
        client = KalturaClient(settings.kaltura, http, FAST)
        for seed in seeds:
            assert await original_bytes(client, ready[seed["guid"]]["id"]) == seed["text"].encode()
    one = ready[guids[0]]
    assert one["name"] == HOSTILE_TITLE
    assert one["description"] == HOSTILE_COMMENTS
    assert one["tags"] == "vidyoreplay,physics,Lecture"
    assert one["categories"] == "MediaSpace>site>Vidyo"
    assert (one["partnerSortValue"], one["userId"]) == (1, "alice")
    assert ready[guids[2]]["description"] == ""

    schema = etree.XMLSchema(etree.fromstring(profile_xsd().encode()))
    metadata = await env.metadata()
    for seed in seeds:
        [xml] = metadata[ready[seed["guid"]]["id"]]
        document = etree.fromstring(xml.encode())
        assert schema.validate(document), schema.error_log
        values = {child.tag: child.text for child in document}
        assert [child.tag for child in document] == [f for f in FIELDS if f in values]
        assert values["RecordingGuid"] == seed["guid"]
        assert values["UserFullName"] == seed["userFullName"]
    second_values = {
        c.tag: c.text for c in etree.fromstring(metadata[ready[guids[1]]["id"]][0].encode())
    }
    assert second_values["Pin"] == "<12&34>"
    assert second_values["RoomName"] == 'Room "A"'
    assert (await env.vidyo.snapshot())["downloads"] == dict.fromkeys(guids, 1)
    assert events.VIDYO_SYNC_STATUS.code in codes(caplog)
    assert codes(caplog).count(events.VIDYO_SYNC_RECORDING.code) == 3 * 4
    assert events.VIDYO_SYNC_ERROR.code not in codes(caplog)
    assert any("SUCCESS synchronized recording guid" in r.getMessage() for r in caplog.records)

    again = await env.cycle(settings)
    assert (again.listed, again.complete, again.new, again.repairs) == (3, 3, 0, 0)
    assert sum(len(v) for v in (await env.entries()).values()) == 3

    [fourth] = await env.vidyo.seed([recording(4)])
    third = await env.cycle(settings)
    assert (third.new, third.imported) == (1, 1)
    await env.wait_ready([*guids, fourth["guid"]])
    entries = await env.entries()
    assert sorted(entries) == sorted([*guids, fourth["guid"]])
    assert all(len(v) == 1 for v in entries.values())


async def test_a_failed_element_keeps_the_others_and_is_retried_without_duplicates(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    seeds = [recording(n) for n in range(1, 6)]
    await env.vidyo.seed(seeds)
    settings = env.settings(batchSize=5)
    await env.setup_profile(settings)
    await env.call_faults(
        {"service": "media", "action": "add", "match": seeds[1]["guid"], "count": 1},
        {"service": "media", "action": "addContent", "match": seeds[2]["guid"], "count": 1},
        {
            "service": "metadata_metadata",
            "action": "add",
            "match": "<RecordingId>4</RecordingId>",
            "code": "LOCK_TIMED_OUT",
            "count": 1,
        },
    )
    with caplog.at_level(logging.INFO):
        first = await env.cycle(settings)
    assert (first.new, first.imported, first.failed) == (5, 2, 3)
    failures = {o.work.record.id: o.failure[0] for o in first.outcomes if o.failure}
    assert failures == {2: "entry", 3: "content", 4: "metadata"}
    assert codes(caplog).count(events.VIDYO_SYNC_ERROR.code) == 3
    entries = await env.entries()
    assert seeds[1]["guid"] not in entries
    assert entries[seeds[2]["guid"]][0]["status"] == "7"  # NO_CONTENT: content never added

    second = await env.cycle(settings)
    assert (second.new, second.repairs, second.imported, second.repaired, second.failed) == (
        1,
        2,
        1,
        2,
        0,
    )
    guids = [s["guid"] for s in seeds]
    ready = await env.wait_ready(guids)
    third = await env.cycle(settings)
    assert (third.new, third.repairs, third.complete) == (0, 0, 5)
    entries = await env.entries()
    assert all(len(entries[g]) == 1 for g in guids)
    metadata = await env.metadata()
    assert all(len(metadata[ready[g]["id"]]) == 1 for g in guids)
    assert (await env.vidyo.snapshot())["downloads"] == dict.fromkeys(guids, 1)


async def test_a_failed_import_is_pulled_again_and_moved_or_deleted_entries_stay(
    env: Env,
) -> None:
    broken, moved, deleted = recording(1), recording(2), recording(3)
    await env.vidyo.seed([{**broken, "fileLink": f"{env.vidyo.url}/replay/files/missing.mp4"}])
    await env.vidyo.seed([moved, deleted])
    await env.kaltura.seed(
        [
            {"id": "0_moved", "referenceId": moved["guid"], "categories": "Elsewhere", "tags": ""},
            {"id": "0_deleted", "referenceId": deleted["guid"], "status": 3},
        ]
    )
    async with aiohttp.ClientSession() as session:
        answer = await session.post(
            f"{env.kaltura.url}/_devstack/seed", json={"generate": {"count": 10_500, "seed": 3}}
        )
        assert answer.status == 200
    settings = env.settings(metadata=False)
    first = await env.cycle(settings)
    assert (first.new, first.imported, first.complete, first.deleted) == (1, 1, 1, 1)
    deadline = time.monotonic() + 20
    while (await env.entries())[broken["guid"]][0]["status"] != "-2":  # ERROR_IMPORTING
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    await env.vidyo.seed([broken])  # the link works now
    second = await env.cycle(settings)
    assert (second.new, second.repairs, second.repaired) == (0, 1, 1)
    await env.wait_ready([broken["guid"]])
    entries = await env.entries()
    assert [len(entries[s["guid"]]) for s in (broken, moved, deleted)] == [1, 1, 1]
    assert entries[deleted["guid"]][0]["status"] == "3"


async def test_dry_run_changes_nothing(env: Env) -> None:
    await env.vidyo.seed([recording(1), recording(2)])
    settings = env.settings()
    report = await env.cycle(settings, dry_run=True)
    assert (report.new, report.imported) == (2, 0)
    assert [w.record.id for w in report.planned] == [1, 2]
    assert await env.entries() == {}


async def test_the_password_stays_out_of_log_lines_when_it_rides_in_the_url(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    [seed] = await env.vidyo.seed([recording(1)])
    settings = env.settings(fetchAuth="url", metadata=False)
    with caplog.at_level(logging.DEBUG):
        report = await env.cycle(settings)
    assert report.imported == 1
    await env.wait_ready([seed["guid"]])  # Kaltura logged in with the URL's credentials
    assert env.vidyo.password not in caplog.text
    assert f"from {seed['fileLink']} to Kaltura entry" in caplog.text


async def health(port: int) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/healthcheck") as answer,
    ):
        return answer.status, json.loads(await answer.text())


async def test_vidyoreplay_down_or_faulting_is_reported_and_the_next_cycle_recovers(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    [seed] = await env.vidyo.seed([recording(1)])
    settings = env.settings(metadata=False)
    worker = VidyoSync(settings, interval=0.3, policy=FAST)
    daemon = DaemonSettings.model_validate({"restartBackoffInitial": 0.01})
    supervisor = Supervisor([worker], daemon)
    web = WebServer(supervisor, HttpSettings(host="127.0.0.1", port=0))
    await web.start()
    assert web.port is not None
    port = web.port
    running = asyncio.create_task(supervisor.run())

    async def failing() -> bool:
        return (await health(port)) == (
            500,
            {"error": "worker_error_vidyo_sync", "status": "error"},
        )

    async def healthy() -> bool:
        return (await health(port))[0] == 200

    try:
        with caplog.at_level(logging.INFO):
            await env.vidyo.configure(soapFault={"fault": "GeneralFault", "message": "db down"})
            await until(failing)
            assert "GeneralFault" in worker.health.detail
            await env.vidyo.configure(soapFault=None)
            await until(healthy)
            await env.wait_ready([seed["guid"]])
            await env.vidyo.faults(drop_rate=1, path_pattern="services")  # the server is gone
            await until(failing)
            assert "unreachable" in worker.health.detail
            await env.vidyo.faults()
            await until(healthy)
        assert supervisor.slots[0].restarts == 0  # the worker never crashed
        assert not running.done()
        messages = [r.getMessage() for r in caplog.records if hasattr(r, "event")]
        assert any(m.startswith("cycle failed: VidyoReplay") for m in messages)
        assert events.VIDYO_SYNC_ERROR.code in codes(caplog)
        assert len((await env.entries())[seed["guid"]]) == 1
    finally:
        supervisor.request_stop()
        assert await asyncio.wait_for(running, 30) is True
        await web.close()


async def test_two_replicas_run_the_cycle_in_one_under_the_lease(
    env: Env, devstack: StackProcess
) -> None:
    seeds = [recording(n) for n in range(1, 4)]
    await env.vidyo.seed(seeds)
    state = devstack.state
    bucket = f"vidyo-lease-{next(_serial)}-{int(time.time())}"
    async with aws_client(aws_settings_from_state(state), "s3") as s3:
        await s3.create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": state["region"]}
        )
    base = env.settings(metadata=False).model_dump(by_alias=True)
    base["aws"] = {
        "region": state["region"],
        "endpointUrl": state["s3_endpoint"],
        "accessKeyId": state["aws_access_key_id"],
        "secretAccessKey": state["aws_secret_access_key"],
    }
    base["leases"] = {"enabled": True, "bucket": bucket, "ttl": 10}
    base["vidyo"]["password"] = env.vidyo.password
    base["kaltura"]["adminSecret"] = env.kaltura.state["kaltura_admin_secret"]
    settings = Settings.model_validate(base)
    workers = [VidyoSync(settings, interval=0.5, policy=FAST) for _ in range(2)]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(w.run(stop)) for w in workers]
    try:

        async def three_cycles() -> bool:
            for task in tasks:
                if task.done():
                    task.result()
            return sum(w.periodic.runs for w in workers if w.periodic is not None) >= 3

        await until(three_cycles)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
    runs = sorted(w.periodic.runs for w in workers if w.periodic is not None)
    assert runs[0] == 0  # the other replica never ran a cycle while the lease was held
    entries = await env.entries()
    assert sorted(entries) == sorted(s["guid"] for s in seeds)
    assert all(len(v) == 1 for v in entries.values())
