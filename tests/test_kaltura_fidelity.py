"""Issue 28: the Kaltura client right against a stand-in that behaves as the real server.

Each test holds one behaviour of ``kaltura/server`` (sources in ``docs/fidelity.md``) and the
client's answer to it: ``plays`` compared through ``advancedSearch``, the READY-only default
status, the 150-value cut of ``...In`` lists, the internal error codes worth a retry, upload
tokens verified by the client, paging that survives short pages and entries leaving the
filter, and ``metadata.list`` naming its objects.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from recstore.archive.actions import REPLACE_VIDEO, RESTORE, S3COPY, Outcome
from recstore.archive.filters import Selection
from recstore.clients.kaltura import KalturaClient, KalturaError, token_resource, url_resource
from recstore.clients.kaltura_types import KalturaMediaEntry, KalturaMetadata
from tests.archive_helpers import MiB, entry, kaltura_settings, original_bytes, tags_of, video
from tests.conftest import until
from tests.test_archive_actions import PLACEHOLDER, World, world
from tests.test_kaltura_client import FAST, T0, chunks_of, seed, settings, stand_in
from tests.test_vidyo_sync import Env, env
from tests.vidyo_helpers import recording

__all__ = ["env", "stand_in", "world"]  # fixtures, used by name below

NOW = datetime.now(UTC)


async def listed(client: KalturaClient, flt: dict[str, Any]) -> list[str]:
    return sorted([e.id async for e in client.iter_entries(flt, page_size=50)])


@pytest.fixture
async def client(stand_in: dict[str, Any]) -> AsyncIterator[KalturaClient]:
    async with aiohttp.ClientSession() as session:
        yield KalturaClient(settings(stand_in), session, FAST)


async def raw(client: KalturaClient, service: str, action: str, **params: Any) -> Any:
    try:
        return await client.call(service, action, **params)
    except KalturaError as exc:
        return exc


async def test_plays_is_compared_on_the_server_and_a_made_up_field_filters_nothing(
    stand_in: dict[str, Any], client: KalturaClient
) -> None:
    await seed(
        stand_in,
        [
            {"id": "0_never", "createdAt": T0, "plays": 0, "flavors": []},
            {"id": "0_once", "createdAt": T0 + 1, "plays": 1, "flavors": []},
            {"id": "0_often", "createdAt": T0 + 2, "plays": 9, "flavors": []},
        ],
    )
    flt = Selection(plays=0).kaltura_filter(NOW)
    assert await listed(client, flt) == ["0_never"]
    assert await client.count(flt) == 1
    # the server drops a field its filter class lacks (KalturaRequestDeserializer::buildObject)
    made_up = {"objectType": "KalturaMediaEntryFilter", "playsEqual": 0}
    assert await listed(client, made_up) == ["0_never", "0_often", "0_once"]


async def test_no_status_means_ready_only_on_the_server_so_selections_name_theirs(
    stand_in: dict[str, Any], client: KalturaClient
) -> None:
    await seed(
        stand_in,
        [
            {"id": "0_ready", "createdAt": T0, "flavors": []},
            {"id": "0_error", "createdAt": T0 + 1, "status": -2, "flavors": []},
            {"id": "0_converting", "createdAt": T0 + 2, "status": 1, "flavors": []},
            {"id": "0_deleted", "createdAt": T0 + 3, "status": 3, "flavors": []},
        ],
    )
    bare = {"objectType": "KalturaMediaEntryFilter"}
    assert await listed(client, bare) == ["0_ready"]  # KalturaBaseEntryFilter::setDefaultStatus
    everything_but_deleted = Selection().kaltura_filter(NOW)
    assert await listed(client, everything_but_deleted) == ["0_converting", "0_error", "0_ready"]
    assert await client.count(everything_but_deleted) == 3
    assert await listed(client, Selection(statuses=(3,)).kaltura_filter(NOW)) == ["0_deleted"]


async def test_internal_errors_of_the_server_are_retried(
    stand_in: dict[str, Any], client: KalturaClient
) -> None:
    await seed(stand_in, [{"id": "0_a", "createdAt": T0, "flavors": []}])
    for code in ("INTERNAL_SERVERL_ERROR", "INTERNAL_DATABASE_ERROR", "SEARCH_ENGINE_QUERY_FAILED"):
        fault = {"service": "media", "action": "get", "code": code, "count": 1}
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{stand_in['kaltura_url']}/_devstack/settings", json={"callFaults": [fault]}
            ) as answer,
        ):
            assert answer.status == 200
        assert (await client.get_entry("0_a")).id == "0_a", code


async def test_in_lists_past_150_values_are_split_by_the_client(
    stand_in: dict[str, Any], client: KalturaClient
) -> None:
    entries = [
        {"id": f"0_in{i:03d}", "createdAt": T0 + i, "referenceId": f"ref-{i}", "flavors": []}
        for i in range(200)
    ]
    await seed(stand_in, entries)
    ids = ",".join(e["id"] for e in entries)
    refs = ",".join(e["referenceId"] for e in entries)
    # the stand-in keeps the first 150 values, as SphinxCriterion does
    cut = await client.call(
        "media",
        "list",
        filter={"objectType": "KalturaMediaEntryFilter", "idIn": ids},
        pager={"pageSize": 500},
    )
    assert cut["totalCount"] == 150
    flt = {"objectType": "KalturaMediaEntryFilter", "idIn": ids, "statusIn": "2"}
    assert len(await listed(client, flt)) == 200
    assert await client.count(flt) == 200
    by_ref = await client.list_all(
        "media",
        {"objectType": "KalturaMediaEntryFilter", "referenceIdIn": refs},
        KalturaMediaEntry,
        page_size=40,
    )
    assert len(by_ref) == 200
    with pytest.raises(ValueError, match="categoryAncestorIdIn"):
        await client.count({"categoryAncestorIdIn": ",".join(str(i) for i in range(151))})


async def test_upload_is_verified_by_the_client_not_by_the_token_size(
    client: KalturaClient,
) -> None:
    # the server keeps fileSize without checking it (autoFinalize off)
    token = await client.add_upload_token("short.mp4", 10)
    await client._upload_call(token.id, b"12345", 0, final=True)
    held = await client.upload_token(token.id)
    assert (held.status, held.uploaded_file_size) == (2, 5)
    # a final chunk at a position checks only that the file ends where the chunk does
    gap = await client.add_upload_token("gap.mp4", None)
    await client._upload_call(gap.id, b"abc", 0, final=False)
    with pytest.raises(KalturaError) as refused:
        await client._upload_call(gap.id, b"xyz", 10, final=True)
    assert refused.value.code == "UPLOAD_TOKEN_CANNOT_MATCH_EXPECTED_SIZE"
    # the client checks uploadedFileSize against the announced size itself
    other = await client.add_upload_token("other.mp4", 10)
    with pytest.raises(KalturaError) as incomplete:
        await client.upload(other.id, chunks_of(b"12345", 2))
    assert incomplete.value.code == "UPLOAD_INCOMPLETE"
    whole = await client.add_upload_token("whole.mp4", 10)
    done = await client.upload(whole.id, chunks_of(b"0123456789", 3))
    assert done.uploaded_file_size == 10


async def test_listing_survives_short_pages_the_offset_cap_and_entries_leaving_the_filter(
    stand_in: dict[str, Any], client: KalturaClient
) -> None:
    # rows the search counts but the database drops make a page short though more follow
    spread = [
        {
            "id": f"0_sp{i:02d}",
            "createdAt": T0 + i,
            "tags": "spread",
            "dropAfterSearch": 5 <= i < 40,
            "flavors": [],
        }
        for i in range(60)
    ]
    # ten entries created in one second, tagged flavors_deleted; the consumer untags each
    second = [
        {"id": f"0_sec{i:02d}", "createdAt": T0 + 1000, "tags": "flavors_deleted", "flavors": []}
        for i in range(10)
    ]
    await seed(stand_in, spread + second)
    shown = await listed(client, {"tagsMultiLikeAnd": "spread", "statusIn": "2"})
    assert shown == [f"0_sp{i:02d}" for i in range(60) if not 5 <= i < 40]

    given = []
    async for row in client.iter_entries(
        {"tagsMultiLikeAnd": "flavors_deleted", "statusIn": "2"}, page_size=3
    ):
        given.append(row.id)
        await client.update_tags(row.id, ["restored"])
    assert sorted(given) == [e["id"] for e in second]

    capped = await raw(
        client,
        "media",
        "list",
        filter={"statusIn": "2"},
        pager={"pageSize": 100, "pageIndex": 101},
    )
    assert isinstance(capped, KalturaError)
    assert capped.code == "QUERY_EXCEEDED_MAX_MATCHES_ALLOWED"


async def test_metadata_list_must_name_its_entries(
    stand_in: dict[str, Any], client: KalturaClient
) -> None:
    xsd = (
        '<?xml version="1.0"?><xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema">'
        '<xsd:element name="metadata"><xsd:complexType><xsd:sequence>'
        '<xsd:element name="Title" type="xsd:string" minOccurs="0"/>'
        "</xsd:sequence></xsd:complexType></xsd:element></xsd:schema>"
    )
    ids = [f"0_md{i:03d}" for i in range(160)]
    await seed(stand_in, [{"id": i, "createdAt": T0, "flavors": []} for i in ids])
    profile = await client.add_metadata_profile("One", "sys_md", xsd)
    twice = await raw(
        client,
        "metadata_metadataProfile",
        "add",
        metadataProfile={
            "objectType": "KalturaMetadataProfile",
            "metadataObjectType": 1,
            "systemName": "sys_md",
        },
        xsdData=xsd,
    )
    assert isinstance(twice, KalturaError)
    assert twice.code == "SYSTEM_NAME_ALREADY_EXISTS"  # KalturaMetadataProfile.php:183
    for entry_id in ids:
        await client.add_metadata(profile.id, entry_id, "<metadata><Title>t</Title></metadata>")
    by_profile = await raw(
        client,
        "metadata_metadata",
        "list",
        filter={"objectType": "KalturaMetadataFilter", "metadataProfileIdEqual": profile.id},
    )
    assert isinstance(by_profile, KalturaError)
    assert by_profile.code == "MUST_FILTER_ON_OBJECT_ID"
    flt = {
        "objectType": "KalturaMetadataFilter",
        "metadataProfileIdEqual": profile.id,
        "objectIdIn": ",".join(ids),
    }
    cut = await client.call("metadata_metadata", "list", filter=flt, pager={"pageSize": 500})
    assert cut["totalCount"] == 150
    assert len(await client.list_metadata(profile.id, ids[-1])) == 1
    assert len(await client.list_all("metadata_metadata", flt, KalturaMetadata)) == 160


async def test_vidyo_sync_finds_its_entries_in_the_recycle_bin_and_past_150(env: Env) -> None:
    records = [recording(n) for n in range(1, 201)]
    await env.vidyo.seed(records)
    present = [{"referenceId": r["guid"], "createdAt": T0 + r["id"]} for r in records]
    present[0].update(displayInSearch=-2)  # in the recycle bin
    present[1].update(moderationStatus=3)  # rejected by a moderator
    present[199].update(status=-2)  # failed import, repaired in place
    await env.kaltura.seed(present)
    settings = env.settings(metadata=False)
    settings = settings.model_copy(
        update={"vidyo": settings.vidyo.model_copy(update={"page_size": 200})}
    )
    report = await env.cycle(settings, dry_run=True)
    assert report.new == 0


async def test_new_content_is_a_replacement_that_restore_and_replace_video_wait_for(
    world: World,
) -> None:
    """media.updateContent on an entry with content converts in a temporary entry while the
    entry and its original stay READY (KalturaEntryService::replaceResourceByEntry); the
    actions are DONE only when the swap is over and the original is the expected file."""
    archivist = world.with_rules(storage_class="STANDARD_IA", restore_mode="stream")
    entry_id = "0_replace1"
    content = video(2 * MiB + 5)
    await world.kaltura.seed([entry(entry_id, content)])
    assert (await archivist.run(S3COPY, entry_id, apply=True)).outcome is Outcome.DONE

    # the partner approves replacements by hand: replace-video is FAILED, says why, and the
    # next run starts no second replacement
    await kaltura_settings(world.kaltura.url, replacementApproval=True)
    waiting = await archivist.run(REPLACE_VIDEO, entry_id, apply=True)
    assert waiting.outcome is Outcome.FAILED, waiting
    assert "approv" in waiting.reason
    again = await archivist.run(REPLACE_VIDEO, entry_id, apply=True)
    assert again.outcome is Outcome.FAILED, again
    assert "approv" in again.reason
    await world.client.call("media", "approveReplace", entryId=entry_id)
    await kaltura_settings(world.kaltura.url, replacementApproval=False)
    done = await archivist.run(REPLACE_VIDEO, entry_id, apply=True)
    assert done.outcome in (Outcome.DONE, Outcome.DONE_BEFORE, Outcome.WAIT), done
    await until(replaced(world.client, entry_id))
    assert await original_bytes(world.client, entry_id) == PLACEHOLDER

    # a replacement whose conversion fails: the restore is FAILED, the placeholder stays READY
    # as the original and the entry keeps flavors_deleted
    await world.kaltura.play(entry_id)
    await kaltura_settings(world.kaltura.url, conversionFails=1)
    failed = await archivist.run(RESTORE, entry_id, apply=True)
    assert failed.outcome is Outcome.FAILED, failed
    assert "failed" in failed.reason
    assert "flavors_deleted" in tags_of(await world.entry(entry_id))
    assert await original_bytes(world.client, entry_id) == PLACEHOLDER
    blocked = await archivist.run(RESTORE, entry_id, apply=True)
    assert blocked.outcome is Outcome.FAILED, blocked
    assert "cancel" in blocked.reason

    # cancelled, the restore runs again and finishes with the S3 copy's bytes in place
    await world.client.call("media", "cancelReplace", entryId=entry_id)
    restored = await archivist.run(RESTORE, entry_id, apply=True)
    assert restored.outcome is Outcome.DONE, restored
    assert "flavors_deleted" not in tags_of(await world.entry(entry_id))
    assert await original_bytes(world.client, entry_id) == content


async def test_a_restore_is_not_done_while_the_placeholder_is_still_the_original(
    world: World,
) -> None:
    """Slow conversion: the entry and the placeholder stay READY during the replacement, so a
    READY entry is no proof; past the timeout the restore WAITs and keeps flavors_deleted."""
    archivist = world.with_rules(
        storage_class="STANDARD_IA", restore_mode="stream", ready_timeout=0.5
    )
    entry_id = "0_replace2"
    content = video(MiB + 1)
    await world.kaltura.seed([entry(entry_id, content)])
    for action in (S3COPY, REPLACE_VIDEO):
        assert (await archivist.run(action, entry_id, apply=True)).outcome is Outcome.DONE
    await world.kaltura.play(entry_id)
    await kaltura_settings(world.kaltura.url, conversionDelay=30)
    slow = await archivist.run(RESTORE, entry_id, apply=True)
    assert slow.outcome is Outcome.WAIT, slow
    assert "flavors_deleted" in tags_of(await world.entry(entry_id))
    assert (await world.run(RESTORE, entry_id, apply=False)).outcome is Outcome.WAIT


def replaced(client: KalturaClient, entry_id: str) -> Callable[[], Awaitable[bool]]:
    """A check for :func:`until`: the entry names no replacing entry any more."""

    async def check() -> bool:
        return not (await client.get_entry(entry_id)).replacing_entry_id

    return check


async def test_actions_the_server_has_delete_and_recycle_entries(
    stand_in: dict[str, Any], client: KalturaClient
) -> None:
    await seed(
        stand_in,
        [
            {"id": "0_gone", "createdAt": T0, "flavors": []},
            {"id": "0_binned", "createdAt": T0 + 1, "flavors": []},
        ],
    )
    assert await client.call("media", "delete", entryId="0_gone") is None
    missing = await raw(client, "media", "get", entryId="0_gone")
    assert isinstance(missing, KalturaError)
    assert missing.code == "ENTRY_ID_NOT_FOUND"
    assert await listed(client, {"statusIn": "3"}) == ["0_gone"]

    disabled = await raw(client, "baseEntry", "recycle", entryId="0_binned")
    assert isinstance(disabled, KalturaError)
    assert disabled.code == "FEATURE_RECYCLE_BIN_DISABLED"
    await kaltura_settings(stand_in["kaltura_url"], recycleBin=True)
    recycled = await client.call("baseEntry", "recycle", entryId="0_binned")
    assert recycled["displayInSearch"] == -2
    assert await listed(client, {"statusIn": "2"}) == []  # the recycle bin is hidden
    assert await listed(client, {"statusIn": "2", "displayInSearchIn": "-2,1"}) == ["0_binned"]
    await client.call("baseEntry", "restoreRecycled", entryId="0_binned")
    assert await listed(client, {"statusIn": "2"}) == ["0_binned"]

    # an action the server has but the stand-in does not model is refused as such
    modelled = await raw(client, "media", "getMrss", entryId="0_binned")
    assert isinstance(modelled, KalturaError)
    assert modelled.code == "STAND_IN_ACTION_NOT_MODELLED"
    unknown = await raw(client, "media", "explode")
    assert isinstance(unknown, KalturaError)
    assert unknown.code == "ACTION_DOES_NOT_EXISTS"


async def test_a_recording_an_editor_deleted_in_kaltura_is_not_imported_again(env: Env) -> None:
    record = recording(7)
    await env.vidyo.seed([record])
    settings = env.settings(metadata=False)
    assert (await env.cycle(settings)).new == 1
    [imported] = (await env.entries())[record["guid"]]
    async with aiohttp.ClientSession() as session:
        editor = KalturaClient(settings.kaltura, session, FAST)
        await editor.call("media", "delete", entryId=imported["id"])
    again = await env.cycle(settings)
    assert (again.new, again.deleted) == (0, 1)
    assert len((await env.entries())[record["guid"]]) == 1


async def test_a_replacement_keeps_the_entry_and_relinks_its_original(
    stand_in: dict[str, Any], client: KalturaClient
) -> None:
    old, new = b"old content " * 50, b"new content, longer " * 50
    await seed(
        stand_in,
        [
            {
                "id": "0_swap",
                "createdAt": T0,
                "flavors": [
                    {"id": "0_orig", "isOriginal": True, "content": base64.b64encode(old).decode()}
                ],
            }
        ],
    )
    await kaltura_settings(stand_in["kaltura_url"], conversionDelay=0.5)
    token = await client.add_upload_token("new.mp4", len(new))
    await client.upload(token.id, chunks_of(new, 300))
    answer = await client.update_content("0_swap", token_resource(token.id))
    temp_id = str(answer.replacing_entry_id)
    assert (answer.status, answer.replacement_status) == ("2", "1")
    # while the temporary entry converts, the entry and its original are what they were
    [before] = await client.flavors("0_swap")
    assert (before.id, before.size_in_bytes, before.status) == ("0_orig", len(old), 2)
    assert (await client.get_entry(temp_id)).replaced_entry_id == "0_swap"
    assert temp_id not in await listed(client, {"statusIn": "0,1,2,7"})  # display SYSTEM
    again = await raw(client, "media", "updateContent", entryId="0_swap", resource={})
    assert isinstance(again, KalturaError)
    assert again.code == "ENTRY_REPLACEMENT_ALREADY_EXISTS"
    await until(replaced(client, "0_swap"))
    flavors = await client.flavors("0_swap")
    [original] = [f for f in flavors if f.is_original]
    assert (original.id, original.size_in_bytes) == ("0_orig", len(new))  # relinked
    async with (
        aiohttp.ClientSession() as session,
        session.get(await client.flavor_url(original.id)) as download,
    ):
        assert await download.read() == new
    gone = await raw(client, "media", "get", entryId=temp_id)
    assert isinstance(gone, KalturaError)
    assert gone.code == "ENTRY_ID_NOT_FOUND"


async def test_a_replacement_whose_import_failed_is_reported_not_waited_for(
    world: World,
) -> None:
    """A failed import leaves the temporary entry ERROR_IMPORTING and the entry's
    replacementStatus as it was (handleEntryReplacement runs on READY/ERROR_CONVERTING only):
    the archivist looks at the replacing entry and says so."""
    entry_id = "0_replace3"
    await world.kaltura.seed([entry(entry_id, video(MiB))])
    answer = await world.client.update_content(entry_id, url_resource("http://127.0.0.1:9/gone"))

    async def import_failed() -> bool:
        temp = await world.client.get_entry(str(answer.replacing_entry_id))
        return str(temp.status) == "-2"

    await until(import_failed)
    assert (await world.entry(entry_id)).replacement_status == "1"
    result = await world.run(REPLACE_VIDEO, entry_id)
    assert result.outcome is Outcome.FAILED, result
    assert "ERROR_IMPORTING" in result.reason
    assert "media.cancelReplace" in result.reason
