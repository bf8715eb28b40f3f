"""The official ``kalturaapiclient`` and recstore's client see the same data in the stand-in.

Both talk to the same stand-in: the official one with XML answers (``format=2``), ours with
JSON. For the calls the archive jobs use, the ids, fields and outcomes must agree.
"""

from __future__ import annotations

from typing import Any

from KalturaClient.Plugins.Core import (
    KalturaBaseEntry,
    KalturaFilterPager,
    KalturaFlavorAssetFilter,
    KalturaMediaEntryFilter,
    KalturaSessionType,
)
from pydantic import SecretStr

from recstore.clients.kaltura import Call, KalturaClient, KalturaError
from recstore.devstack.kaltura import ADMIN_SECRET, PARTNER_ID
from recstore.settings import KalturaSettings
from tests.test_devstack_kaltura import DAY, Kaltura, in_thread, kaltura, lectures

__all__ = ["kaltura"]  # the fixture, used by name below

FIELDS = ("name", "tags", "plays", "lastPlayedAt", "createdAt", "userId", "categories", "status")


def ours(k: Kaltura) -> KalturaClient:
    settings = KalturaSettings(
        service_url=k.base, partner_id=PARTNER_ID, admin_secret=SecretStr(ADMIN_SECRET)
    )
    return KalturaClient(settings, k.http)


def value(thing: Any) -> Any:
    """The official client's enums carry their value behind getValue()."""
    return thing.getValue() if hasattr(thing, "getValue") else thing


def norm(x: Any) -> str | None:
    """Unset fields: absent in JSON, NotImplemented/None in the official client's objects."""
    return None if x is None or x is NotImplemented else str(x)


async def test_same_entries_flavors_updates_and_multirequests(kaltura: Kaltura) -> None:
    document = lectures()
    document["generate"] = {"count": 700, "seed": 3}
    await kaltura.seed(document)
    session = await in_thread(
        lambda: kaltura.official(ks="").session.start(
            ADMIN_SECRET, "admin", KalturaSessionType.ADMIN, PARTNER_ID, 3600, "disableentitlement"
        )
    )
    official = kaltura.official(ks=session)
    client = ours(kaltura)

    # media.list with a filter, paged by the official client as the seeds did
    flt = KalturaMediaEntryFilter()
    flt.orderBy = "+createdAt"
    flt.statusIn = "2,7"
    theirs: list[Any] = []
    for index in range(1, 100):
        page = await in_thread(
            lambda i=index: official.media.list(flt, KalturaFilterPager(pageSize=100, pageIndex=i))
        )
        theirs += page.objects
        if len(page.objects) < 100:
            break
    mine = [e async for e in client.iter_entries({"statusIn": "2,7"}, page_size=100)]
    assert len(theirs) > 500
    assert [e.id for e in mine] == [e.id for e in theirs]
    for a, b in zip(mine, theirs, strict=True):
        for name in FIELDS:
            assert norm(a.model_dump(by_alias=True).get(name)) == norm(value(getattr(b, name))), (
                name
            )

    # flavorAsset.list
    flavor_filter = KalturaFlavorAssetFilter()
    flavor_filter.entryIdEqual = "0_lec2"
    their_flavors = await in_thread(lambda: official.flavorAsset.list(flavor_filter).objects)
    my_flavors = await client.flavors("0_lec2")
    assert [(f.id, f.is_original, f.size, f.status) for f in my_flavors] == [
        (f.id, f.isOriginal, f.size, int(value(f.status))) for f in their_flavors
    ]

    # baseEntry.update by the official client is what our client reads, and the other way round
    update = KalturaBaseEntry()
    update.tags = "lecture,archived_to_s3"
    await in_thread(lambda: official.baseEntry.update("0_lec3", update))
    assert (await client.get_entry("0_lec3")).tags == "lecture,archived_to_s3"
    await client.update_tags("0_lec4", ["lecture", "flavors_deleted"])
    entry = await in_thread(lambda: official.media.get("0_lec4"))
    assert entry.tags == "lecture,flavors_deleted"

    # a multirequest with one failing element, through both clients
    official.startMultiRequest()
    official.media.get("0_lec1")
    official.media.get("0_nosuch")
    official.media.get("0_lec5")
    their_results = await in_thread(official.doMultiRequest)
    my_results = await client.multirequest(
        [
            Call("media", "get", {"entryId": "0_lec1"}),
            Call("media", "get", {"entryId": "0_nosuch"}),
            Call("media", "get", {"entryId": "0_lec5"}),
        ]
    )
    assert my_results[0]["id"] == their_results[0].id == "0_lec1"
    assert isinstance(my_results[1], KalturaError)
    assert my_results[1].code == "ENTRY_ID_NOT_FOUND" == their_results[1].code
    assert my_results[2]["createdAt"] == their_results[2].createdAt
    assert their_results[2].createdAt - their_results[0].createdAt == 4 * DAY
