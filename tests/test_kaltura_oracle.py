"""The official Python client's generated classes as an oracle for what recstore sends.

The server drops a field its class does not have without a word
(``KalturaRequestDeserializer::buildObject``), so a misspelt or made-up filter field filters
nothing in production. ``kalturaapiclient`` is generated from the server's own classes: every
object recstore sends (filters, pagers, entries, resources, search conditions, tokens,
profiles) is checked field by field against the class named by its ``objectType``. The
stand-in's filter fields and action table are checked against the same classes.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from KalturaClient.Plugins import Core, Metadata

from recstore.archive.filters import Selection
from recstore.clients.kaltura import KalturaClient, token_resource, url_resource
from recstore.clients.kaltura_types import (
    KalturaFlavorAsset,
    KalturaMediaEntry,
    KalturaMetadata,
    KalturaMetadataProfile,
    KalturaObject,
    KalturaUploadToken,
)
from recstore.devstack.kaltura_filters import ENTRY_FILTER_FIELDS
from recstore.devstack.kaltura_services import SERVER_ACTIONS
from tests.test_kaltura_client import FAST, T0, chunks_of, seed, settings, stand_in
from tests.test_vidyo_sync import Env, env
from tests.vidyo_helpers import recording

__all__ = ["env", "stand_in"]  # fixtures, used by name below

SERVICES = {
    "session": Core.KalturaSessionService,
    "media": Core.KalturaMediaService,
    "baseentry": Core.KalturaBaseEntryService,
    "flavorasset": Core.KalturaFlavorAssetService,
    "uploadtoken": Core.KalturaUploadTokenService,
    "metadata_metadata": Metadata.KalturaMetadataService,
    "metadata_metadataprofile": Metadata.KalturaMetadataProfileService,
}


def fields_of(class_name: str) -> set[str]:
    cls = getattr(Core, class_name, None) or getattr(Metadata, class_name, None)
    assert cls is not None, f"no class {class_name} in the official client"
    return set(vars(cls()))


def objects_in(value: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every dict with an ``objectType`` inside ``value``, with where it was found."""
    if isinstance(value, dict):
        if "objectType" in value:
            yield where, value
        for key, item in value.items():
            yield from objects_in(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from objects_in(item, f"{where}[{index}]")


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """Every request body a KalturaClient posts during the test, with its path."""
    bodies: list[tuple[str, dict[str, Any]]] = []
    original = KalturaClient._post

    async def recording_post(
        self: KalturaClient, path: str, body: dict[str, Any], ks: str, policy: Any
    ) -> Any:
        bodies.append((path, body))
        return await original(self, path, body, ks, policy)

    monkeypatch.setattr(KalturaClient, "_post", recording_post)
    return bodies


def check(bodies: list[tuple[str, dict[str, Any]]]) -> set[str]:
    """The objectTypes seen; fails on any field the official class lacks."""
    seen: set[str] = set()
    wrong: list[str] = []
    for path, body in bodies:
        calls = body.values() if path.endswith("multirequest") else [body]
        params = [
            (f"{path}.{name}", value)
            for call in calls
            if isinstance(call, dict)
            for name, value in call.items()
            if name not in ("service", "action", "objectType")  # metadata.add's objectType: 1
        ]
        for where, obj in (found for name, value in params for found in objects_in(value, name)):
            kind = str(obj["objectType"])
            seen.add(kind)
            unknown = set(obj) - {"objectType"} - fields_of(kind)
            if unknown:
                wrong.append(f"{where}: {kind} has no {sorted(unknown)}")
    assert not wrong, "\n".join(wrong)
    return seen


async def test_every_field_the_archive_side_sends_exists_on_its_class(
    stand_in: dict[str, Any], sent: list[tuple[str, dict[str, Any]]]
) -> None:
    await seed(stand_in, [{"id": "0_o", "createdAt": T0, "plays": 0}])
    now = datetime.now(UTC)
    selections = [
        Selection(),
        Selection(
            tags=("lecture", "!archived_to_s3"),
            categories=(1, 2),
            plays=0,
            statuses=(2, -2),
            created_within=5,
            created_before=1,
            played_within=3,
            unplayed_for=2,
            ids=("0_o",),
        ),
    ]
    async with aiohttp.ClientSession() as session:
        client = KalturaClient(settings(stand_in), session, FAST)
        for selection in selections:
            flt = selection.kaltura_filter(now)
            [_ async for _ in client.iter_entries({**flt, "idIn": "0_o"})]
            await client.count(flt)
        entry = await client.add_media({"name": "n", "tags": "t", "referenceId": "r"})
        await client.update_media(entry.id, {"name": "m", "description": "d"})
        await client.update_tags(entry.id, ["a"])
        token = await client.add_upload_token("f.mp4", 3)
        await client.upload(token.id, chunks_of(b"abc", 2))
        await client.add_content(entry.id, token_resource(token.id))
        with pytest.raises(Exception, match="RESOURCE_TYPE_NOT_SUPPORTED"):
            await client.update_content(entry.id, url_resource("https://example.com/x"))
        await client.flavors("0_o")
        await client.metadata_profiles("sys")
        await client.list_metadata(1, "0_o")
    seen = check(sent)
    assert {
        "KalturaMediaEntryFilter",
        "KalturaFilterPager",
        "KalturaMediaEntryCompareAttributeCondition",
        "KalturaMediaEntry",
        "KalturaBaseEntry",
        "KalturaUploadToken",
        "KalturaUploadedFileTokenResource",
        "KalturaUrlResource",
        "KalturaFlavorAssetFilter",
        "KalturaMetadataProfileFilter",
        "KalturaMetadataFilter",
    } <= seen


async def test_every_field_vidyo_sync_sends_exists_on_its_class(
    env: Env, sent: list[tuple[str, dict[str, Any]]]
) -> None:
    await env.vidyo.seed([recording(1), recording(2)])
    settings_ = env.settings()
    await env.setup_profile(settings_)
    report = await env.cycle(settings_)
    assert report.new == 2
    await env.wait_ready([recording(1)["guid"], recording(2)["guid"]])
    await env.cycle(settings_)
    seen = check(sent)
    assert {"KalturaMediaEntryFilter", "KalturaMediaEntry", "KalturaMetadataFilter"} <= seen


def test_the_stand_ins_filter_fields_exist_on_the_server_class() -> None:
    assert ENTRY_FILTER_FIELDS - fields_of("KalturaMediaEntryFilter") == set()


def test_the_stand_ins_action_table_is_the_official_clients() -> None:
    for service, cls in SERVICES.items():
        actions = {
            name.lower()
            for name, _ in inspect.getmembers(cls, inspect.isfunction)
            if not name.startswith("_") and name != "setClient"
        }
        assert SERVER_ACTIONS[service] == actions, service


@pytest.mark.parametrize(
    "model",
    [
        KalturaMediaEntry,
        KalturaFlavorAsset,
        KalturaUploadToken,
        KalturaMetadataProfile,
        KalturaMetadata,
    ],
)
def test_every_field_the_client_reads_exists_on_its_class(model: type[KalturaObject]) -> None:
    """The wire models read fields by the official class's names: a misspelt alias would be
    silently empty (unknown fields are ignored), so each one is checked against the class."""
    wire_names = {field.alias or name for name, field in model.model_fields.items()}
    assert wire_names <= fields_of(model.__name__), wire_names - fields_of(model.__name__)
