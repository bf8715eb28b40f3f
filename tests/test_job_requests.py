"""The requests one job makes, counted at the stand-ins by endpoint, as ``bench/jobs.py`` counts
them: a pool's time on short recordings goes to per-job round trips, so each avoidable one
shows here (issue 32, "Many small recordings")."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from typing import Any

import aiohttp
import pytest

from recstore.clients.aws import aws_client
from recstore.clients.s3 import S3Store
from recstore.devstack.appconfig import DEMO_INSTANCE, app_config
from recstore.devstack.seed import aws_settings_from_state, seed_s3
from recstore.settings import Settings
from recstore.transfer.channels import ChannelLog
from recstore.transfer.job import parse_job
from recstore.workers.accounts import ServedInstances
from recstore.workers.file_transferer import TransferService
from tests.conftest import StackProcess
from tests.dracoon_helpers import client, stand_in_state
from tests.transfer_helpers import MiB, job


async def counted(state: dict[str, Any]) -> Counter[str]:
    """The requests since the last count at the S3 proxy (S3) and the DRACOON stand-in,
    by ``<service> <endpoint>``; counting anew."""
    counts: Counter[str] = Counter()
    async with aiohttp.ClientSession() as session:
        for url, prefix in ((state["s3_proxy_url"], ""), (state["dracoon_url"], "DRACOON ")):
            async with session.post(f"{url}/_devstack/requests") as answer:
                assert answer.status == 200, await answer.text()
                for endpoint, n in (await answer.json()).items():
                    counts[prefix + endpoint] += int(n)
    return counts


async def second_job(
    stack: StackProcess, first_delivery: bool = True, size: int = MiB
) -> Counter[str]:
    """The requests of a job (a 1 MiB source by default) into an encrypted room an earlier job
    of the same daemon used (its login, keys and room had by then), with its source removed
    after it; its message delivered for the first time, or again."""
    state = stack.state
    tag = uuid.uuid4().hex[:8]
    settings = Settings.model_validate(app_config(stack.through_s3_proxy(), http_port=0))
    room = {"path": f"Counted {tag}"}
    keys = [f"counted-{tag}/talk-{n}.mp4" for n in range(2)]  # each keeps its name
    await seed_s3(state, {"objects": [{"key": key, "size": size} for key in keys]})
    first, second = (
        parse_job(json.dumps(job(DEMO_INSTANCE, [key], [room], meeting=n)))
        for n, key in enumerate(keys)
    )
    async with TransferService(settings) as service:
        await service.run_job(first)
        await counted(state)
        report = await service.run_job(second, first_delivery=first_delivery)
        counts = await counted(state)
    assert [u[0] for u in report.uploaded] == [keys[1]]
    assert report.sources_removed == [keys[1]]
    return counts


def s3_requests(counts: Counter[str]) -> dict[str, int]:
    return {label: n for label, n in counts.items() if label.startswith("S3 ")}


async def test_a_short_recordings_job_reads_its_source_once_and_records_no_channel(
    devstack: StackProcess,
) -> None:
    """The source is read by one ranged GET, whose answer also describes it (size, ETag,
    storage class): no HEAD before it. An upload of at most one chunk is not recorded in the
    lease bucket (two requests of fifteen before). Before that: a HEAD per source, and the
    record read at the start and again before each change (three GETs per job)."""
    counts = await second_job(devstack)
    assert s3_requests(counts) == {
        "S3 GetObject": 1,  # the source's one range
        "S3 DeleteObject": 1,  # the source
    }


async def test_a_larger_recordings_channel_is_recorded_while_it_is_open(
    devstack: StackProcess,
) -> None:
    """A recording above one chunk (8 MiB here): its channel's record is written as the
    channel opens (created: nothing to read first on a message's first delivery) and dropped
    as it closes."""
    counts = await second_job(devstack, size=9 * MiB)
    assert s3_requests(counts) == {
        "S3 GetObject": 2,  # the source's first range (5 MiB), then the rest
        "S3 PutObject": 1,  # the channel record, as the channel opens
        "S3 DeleteObject": 2,  # the channel record as it closes, the source
    }


async def test_a_redelivered_job_reads_its_channel_record_once(devstack: StackProcess) -> None:
    """A message that comes again may have had an attempt killed mid-upload: the record is
    read at the start (its channels cancelled), and not again before each change."""
    counts = await second_job(devstack, first_delivery=False, size=9 * MiB)
    assert s3_requests(counts) == {
        "S3 GetObject": 3,  # the channel record, the source's two ranges
        "S3 PutObject": 1,
        "S3 DeleteObject": 2,
    }


async def test_a_resent_jobs_first_delivery_cancels_what_a_dead_attempt_left_open(
    devstack: StackProcess,
) -> None:
    """A producer re-sent a job whose other message's attempt died mid-upload: the re-sent
    message comes for the first time, reads no record at its start, and its first record
    write finds the dead attempt's, whose channel it cancels before it writes its own."""
    state = devstack.state
    tag = uuid.uuid4().hex[:8]
    settings = Settings.model_validate(app_config(devstack.through_s3_proxy(), http_port=0))
    key = f"resent-{tag}/talk.mp4"
    await seed_s3(state, {"objects": [{"key": key, "size": 9 * MiB}]})  # above one chunk
    transfer = parse_job(json.dumps(job(DEMO_INSTANCE, [key], [{"path": f"Resent {tag}"}])))
    before = int((await stand_in_state(state))["openUploads"])
    async with TransferService(settings) as service, client(state) as dracoon:
        assert service.s3 is not None
        left = await dracoon.request(
            "POST",
            "/v4/nodes/files/uploads",
            json={"parentId": state["dracoon_parent_room_id"], "name": f"dead-{tag}.mp4"},
        )
        upload_id = str(left["uploadId"])
        assert int((await stand_in_state(state))["openUploads"]) == before + 1
        leases = settings.leases
        assert leases.bucket is not None
        dead = ChannelLog(service.s3, leases.bucket, leases.prefix, transfer.job_id, _never)
        await dead.opened(upload_id)  # the dead attempt's record
        report = await service.run_job(transfer, first_delivery=True)
    assert [u[0] for u in report.uploaded] == [key]
    assert int((await stand_in_state(state))["openUploads"]) == before


async def _never(upload_id: str) -> None:
    raise AssertionError(f"the dead attempt cancels nothing ({upload_id})")


@pytest.mark.parametrize(("first_delivery", "listings"), [(True, 0), (False, 1)])
async def test_a_job_whose_file_kept_its_name_lists_the_room_at_most_once(
    devstack: StackProcess, first_delivery: bool, listings: int
) -> None:
    """A redelivered job lists the room once, for its marked copy (an earlier attempt may have
    stored it); a first delivery does not list it at all. A copy that kept the upload's name
    has no earlier twin to look for: the room was listed again after every upload. The file's
    missing keys come in one page, written at once: the list was asked for again to hear
    "none"."""
    counts = await second_job(devstack, first_delivery=first_delivery)
    dracoon = {label: n for label, n in counts.items() if label.startswith("DRACOON ")}
    polls = "DRACOON GET /api/v4/nodes/files/uploads/{id}"  # the completion's: DRACOON's pace
    assert dracoon.pop(polls, 0) >= 1
    assert dracoon.pop("DRACOON GET /api/v4/nodes", 0) == listings
    assert dracoon == {
        "DRACOON POST /api/v4/nodes/files/uploads": 1,
        "DRACOON POST /api/v4/nodes/files/uploads/{id}/s3_urls": 1,
        "DRACOON PUT /_s3/{id}/{id}": 1,
        "DRACOON PUT /api/v4/nodes/files/uploads/{id}/s3": 1,
        "DRACOON GET /api/v4/nodes/missingFileKeys": 1,  # the file's members fit one page
        "DRACOON POST /api/v4/nodes/files/keys": 1,
    }


async def test_each_part_of_a_larger_recording_asks_for_its_url_once(
    devstack: StackProcess,
) -> None:
    """A recording of two parts (the first the smallest S3 takes, 5 MiB, so the upload starts
    soonest; then the rest, less than a chunk): the URL for the second part, asked for while
    the first uploads, is for its real size, not the first part's (which cost a third
    request)."""
    counts = await second_job(devstack, size=11 * MiB)
    assert counts["DRACOON PUT /_s3/{id}/{id}"] == 2
    assert counts["DRACOON POST /api/v4/nodes/files/uploads/{id}/s3_urls"] == 2


async def test_a_pools_first_jobs_record_their_instance_once(devstack: StackProcess) -> None:
    """The first jobs of a pool start together, all of one instance: the list of instances
    served (for the DracoonGlobalSharer) is read and written once, not once per job."""
    state = devstack.state
    key = f"served-{uuid.uuid4().hex[:8]}.json"
    async with aws_client(aws_settings_from_state(devstack.through_s3_proxy()), "s3") as s3:
        served = ServedInstances(S3Store(s3), state["bucket"], key)
        await counted(state)
        await asyncio.gather(*(served.add("once.example.org") for _ in range(4)))
        counts = await counted(state)
        assert await served.domains() == {"once.example.org"}
    assert {label: n for label, n in counts.items() if label.startswith("S3 ")} == {
        "S3 GetObject": 1,
        "S3 PutObject": 1,
    }
