"""The API v3 actions the archiver and the syncer call, with the server's checks and errors.

Content arrives through ``media.addContent``/``updateContent`` from a ``KalturaUrlResource``
(fetched here with aiohttp, loopback only, in the background as Kaltura imports
asynchronously) or a ``KalturaUploadedFileTokenResource``; the new flavors then "convert" for
``conversion_delay`` seconds before turning READY, so a client's "wait for READY" loop runs.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import shutil
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from recstore.devstack import kaltura_filters as filters
from recstore.devstack.kaltura_ks import Session, make_ks
from recstore.devstack.kaltura_metadata import MetadataActions
from recstore.devstack.kaltura_model import (
    DISPLAY_PARTNER_ONLY,
    DISPLAY_RECYCLED,
    DISPLAY_SYSTEM,
    ENTRY_DELETED,
    ENTRY_ERROR_IMPORTING,
    ENTRY_IMPORT,
    ENTRY_NO_CONTENT,
    ENTRY_PRECONVERT,
    ENTRY_READY,
    FLAVOR_CONVERTING,
    FLAVOR_DELETED,
    FLAVOR_ERROR,
    FLAVOR_IMPORTING,
    FLAVOR_READY,
    REPLACEMENT_APPROVED_BUT_NOT_READY,
    REPLACEMENT_NOT_READY_AND_NOT_APPROVED,
    REPLACEMENT_READY_BUT_NOT_APPROVED,
    WEB_FLAVOR_PARAMS,
    Entry,
    Flavor,
    Store,
    UploadToken,
    now,
)
from recstore.devstack.kaltura_wire import (
    ApiError,
    FileParam,
    as_bool,
    as_int,
    as_str,
    entry_not_found,
    missing_param,
    require,
)

Action = Callable[[dict[str, Any], Session | None], Awaitable[Any]]

#: Every action the server has on the services the stand-in serves, as the official client's
#: service classes name them (``KalturaClient.Plugins.Core``/``Metadata``, checked by
#: tests/test_kaltura_oracle.py). One the stand-in does not model is refused as such, never
#: with ``ACTION_DOES_NOT_EXISTS``, which the server gives only for an action it lacks.
SERVER_ACTIONS: dict[str, frozenset[str]] = {
    service: frozenset(a.lower() for a in actions.split())
    for service, actions in {
        "session": "end get impersonate impersonateByKs start startWidgetSession",
        "media": "add addContent addFromBulk addFromEntry addFromFlavorAsset "
        "addFromRecordedWebcam addFromSearchResult addFromUploadedFile addFromUrl "
        "anonymousRank approve approveReplace bulkUploadAdd cancelReplace convert count "
        "delete exportToCsv flag get getMrss getVolumeMap list listFlags reject "
        "requestConversion update updateContent updateThumbnail "
        "updateThumbnailFromSourceEntry updateThumbnailFromUrl updateThumbnailJpeg upload",
        "baseentry": "add addContent addFromUploadedFile anonymousRank approve bulkDelete "
        "clone count delete export exportToCsv flag get getByIds getContextData "
        "getPlaybackContext getRemotePaths index list listByReferenceId listFlags recycle "
        "reject restoreRecycled servePlaybackKey update updateContent "
        "updateThumbnailFromSourceEntry updateThumbnailFromUrl updateThumbnailJpeg upload",
        "flavorasset": "add convert delete deleteLocalContent export get getByEntryId "
        "getDownloadUrl getFlavorAssetsWithParams getRemotePaths getUrl getVolumeMap "
        "getWebPlayableByEntryId list reconvert serveAdStitchCmd setAsSource setContent update",
        "uploadtoken": "add delete get list upload",
        "metadata_metadata": "add addFromBulk addFromFile addFromUrl delete get index "
        "invalidate list serve update updateFromFile updateFromXSL",
        "metadata_metadataprofile": "add addFromFile delete get list listFields revert serve "
        "serveView update updateDefinitionFromFile updateTransformationFromFile "
        "updateViewsFromFile",
    }.items()
}

#: Fields of a KalturaBaseEntry/KalturaMediaEntry that add/update may set.
_STR_FIELDS = {"name": "name", "description": "description", "userId": "user_id"}


def _url_headers(value: Any) -> dict[str, str]:
    """``KalturaUrlResource.urlHeaders``: KalturaString objects holding ``Name: value`` lines
    (a JSON list, or a form's ``{"0": {...}}``)."""
    items = list(value.values()) if isinstance(value, dict) else value or []
    headers: dict[str, str] = {}
    for item in items:
        line = as_str(item.get("value")) if isinstance(item, dict) else as_str(item)
        name, sep, content = (line or "").partition(":")
        if sep and name.strip():
            headers[name.strip()] = content.strip()
    return headers


def _is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Services(MetadataActions):
    """One object per stand-in; :meth:`action` finds the handler for ``service.action``."""

    def __init__(self, store: Store, secret: str, conversion_delay: float) -> None:
        super().__init__(store)
        self.secret = secret
        self.conversion_delay = conversion_delay
        #: The partner's FEATURE_ENTRY_REPLACEMENT and FEATURE_ENTRY_REPLACEMENT_APPROVAL.
        self.entry_replacement = True
        self.replacement_approval = False
        #: How many of the next conversions end in ERROR_CONVERTING.
        self.conversion_fails = 0
        #: The partner's FEATURE_RECYCLE_BIN (``baseEntry.recycle``); off unless enabled.
        self.recycle_bin = False
        self.base_url = ""
        self.content_dir = store.data_dir / "content"
        self.tasks: set[asyncio.Task[None]] = set()
        self.table: dict[tuple[str, str], tuple[Action, bool]] = {}
        for service, action, handler, admin in [
            ("session", "start", self.session_start, False),
            ("media", "list", self.entry_list, False),
            ("media", "count", self.entry_count, False),
            ("media", "get", self.entry_get, False),
            ("media", "add", self.media_add, False),
            ("media", "addcontent", self.media_add_content, False),
            ("media", "updatecontent", self.media_update_content, False),
            ("media", "updatethumbnail", self.media_update_thumbnail, False),
            ("media", "approvereplace", self.media_approve_replace, False),
            ("media", "cancelreplace", self.media_cancel_replace, False),
            ("media", "update", self.entry_update, False),
            ("media", "delete", self.entry_delete, False),
            ("baseentry", "delete", self.entry_delete, False),
            ("baseentry", "recycle", self.entry_recycle, False),
            ("baseentry", "restorerecycled", self.entry_restore_recycled, False),
            ("baseentry", "getbyids", self.entry_get_by_ids, False),
            ("baseentry", "updatecontent", self.media_update_content, False),
            ("baseentry", "list", self.base_entry_list, False),
            ("baseentry", "count", self.entry_count, False),
            ("baseentry", "get", self.entry_get, False),
            ("baseentry", "update", self.entry_update, False),
            ("flavorasset", "list", self.flavor_list, False),
            ("flavorasset", "get", self.flavor_get, False),
            ("flavorasset", "geturl", self.flavor_get_url, False),
            ("flavorasset", "getbyentryid", self.flavor_get_by_entry_id, False),
            ("flavorasset", "delete", self.flavor_delete, True),
            ("uploadtoken", "add", self.token_add, False),
            ("uploadtoken", "get", self.token_get, False),
            ("uploadtoken", "upload", self.token_upload, False),
            ("uploadtoken", "list", self.token_list, False),
            ("uploadtoken", "delete", self.token_delete, False),
            ("metadata_metadataprofile", "list", self.profile_list, False),
            ("metadata_metadataprofile", "add", self.profile_add, True),
            ("metadata_metadataprofile", "get", self.profile_get, False),
            ("metadata_metadataprofile", "delete", self.profile_delete, True),
            ("metadata_metadata", "list", self.metadata_list, False),
            ("metadata_metadata", "add", self.metadata_add, False),
            ("metadata_metadata", "update", self.metadata_update, False),
            ("metadata_metadata", "get", self.metadata_get, False),
            ("metadata_metadata", "delete", self.metadata_delete, False),
        ]:
            self.table[(service, action)] = (handler, admin)

    # -- serialisation of entries (needs the categories and the base URL) --

    def entry_api(self, entry: Entry) -> dict[str, Any]:
        pid = self.store.partner_id
        cat_ids = ",".join(str(self.store.categories[c]) for c in entry.categories)
        return {
            "objectType": "KalturaMediaEntry",
            "id": entry.id,
            "name": entry.name,
            "description": entry.description,
            "partnerId": pid,
            "userId": entry.user_id,
            "creatorId": entry.creator_id or entry.user_id,
            "tags": entry.tags,
            "adminTags": "",
            "categories": ",".join(entry.categories),
            "categoriesIds": cat_ids,
            "status": str(entry.status),
            "moderationStatus": entry.moderation_status,
            "displayInSearch": entry.display_in_search,
            "recycledAt": entry.recycled_at,
            "moderationCount": 0,
            "type": "1",
            "createdAt": entry.created_at,
            "updatedAt": entry.updated_at or entry.created_at,
            "rank": 0,
            "totalRank": 0,
            "votes": 0,
            "downloadUrl": f"{self.base_url}/p/{pid}/sp/{pid}00/raw/entry_id/{entry.id}",
            "searchText": f"_PAR_ONLY_ _{pid}_ _MEDIA_TYPE_{entry.media_type}|  {entry.name}",
            "version": 0,
            "thumbnailUrl": f"{self.base_url}/p/{pid}/sp/{pid}00/thumbnail/entry_id/{entry.id}",
            "referenceId": entry.reference_id,
            "replacementStatus": entry.replacement_status,
            "replacingEntryId": entry.replacing_entry_id,
            "replacedEntryId": entry.replaced_entry_id,
            "partnerSortValue": entry.partner_sort_value,
            "conversionProfileId": 1,
            "rootEntryId": entry.id,
            "plays": entry.plays,
            "views": entry.views,
            "lastPlayedAt": entry.last_played_at,
            "width": 1280,
            "height": 720,
            "duration": entry.ms_duration // 1000,
            "msDuration": entry.ms_duration,
            "mediaType": entry.media_type,
            "sourceType": "1",
            "dataUrl": f"{self.base_url}/p/{pid}/sp/{pid}00/flvclipper/entry_id/{entry.id}",
        }

    def download_url(self, flavor: Flavor) -> str:
        pid = self.store.partner_id
        return (
            f"{self.base_url}/p/{pid}/sp/{pid}00/download/entry_id/{flavor.entry_id}"
            f"/flavor/{flavor.id}/name/{flavor.id}.{flavor.file_ext}"
        )

    def _entry(self, entry_id: Any) -> Entry:
        key = as_str(entry_id) or ""
        entry = self.store.entries.get(key)
        if entry is None or entry.status == ENTRY_DELETED:
            raise entry_not_found(key)
        return entry

    # -- session --

    async def session_start(self, params: dict[str, Any], session: Session | None) -> Any:
        secret = as_str(require(params, "secret"))
        partner_id = as_int(params.get("partnerId"))
        if partner_id is not None and partner_id != self.store.partner_id:
            raise ApiError(
                "START_SESSION_ERROR",
                f"Error while starting session for partner [{partner_id}]",
                PARTNER_ID=partner_id,
            )
        if secret != self.secret:
            raise ApiError(
                "START_SESSION_ERROR",
                f"Error while starting session for partner [{self.store.partner_id}]",
                PARTNER_ID=self.store.partner_id,
            )
        return make_ks(
            self.secret,
            self.store.partner_id,
            as_str(params.get("userId")) or "",
            as_int(params.get("type")) or 0,
            as_int(params.get("expiry")) or 86400,
            as_str(params.get("privileges")) or "",
        )

    # -- entries --

    async def entry_list(self, params: dict[str, Any], session: Session | None) -> Any:
        query = filters.entry_query(self.store, params.get("filter"))
        matches = filters.run_query(self.store, query)
        start, end = filters.page_bounds(params.get("pager"))
        return {
            "objectType": "KalturaMediaListResponse",
            # rows the search found but the database query drops: they count, not show
            "objects": [self.entry_api(e) for e in matches[start:end] if not e.drop_after_search],
            "totalCount": len(matches),
        }

    async def base_entry_list(self, params: dict[str, Any], session: Session | None) -> Any:
        """The same rows; the client refuses a ``KalturaMediaListResponse`` here."""
        result = await self.entry_list(params, session)
        result["objectType"] = "KalturaBaseEntryListResponse"
        return result

    async def entry_count(self, params: dict[str, Any], session: Session | None) -> Any:
        query = filters.entry_query(self.store, params.get("filter"))
        return sum(
            1
            for _ in self.store.select(
                query.predicates, query.created_min, query.created_max, query.candidates
            )
        )

    async def entry_get(self, params: dict[str, Any], session: Session | None) -> Any:
        return self.entry_api(self._entry(require(params, "entryId")))

    async def media_add(self, params: dict[str, Any], session: Session | None) -> Any:
        data = require(params, "entry")
        if not isinstance(data, dict):
            raise missing_param("entry")
        at = now()
        user = (session.user_id if session else "") or ""
        entry = Entry(
            id=self.store.new_entry_id(),
            name=as_str(data.get("name")) or "",
            created_at=at,
            updated_at=at,
            seq=self.store.next_seq(),
            status=ENTRY_NO_CONTENT,
            user_id=as_str(data.get("userId")) or user,
            creator_id=user or as_str(data.get("userId")) or "",
            media_type=as_int(data.get("mediaType")) or 1,
        )
        self._apply(entry, data)
        self.store.add_entry(entry)
        return self.entry_api(entry)

    def _apply(self, entry: Entry, data: dict[str, Any]) -> None:
        """A partial update: only the fields sent change (``x__null`` clears one)."""
        for api_name, attr in _STR_FIELDS.items():
            if api_name in data:
                setattr(entry, attr, as_str(data[api_name]) or "")
        if "tags" in data:
            entry.tags = ",".join(
                t.strip() for t in (as_str(data["tags"]) or "").split(",") if t.strip()
            )
        if "categories" in data:
            cats = [c.strip() for c in (as_str(data["categories"]) or "").split(",") if c.strip()]
            self.store.category_ids(cats)
            entry.categories = cats
        if "categoriesIds" in data:
            by_id = {v: k for k, v in self.store.categories.items()}
            ids = [as_int(i) for i in (as_str(data["categoriesIds"]) or "").split(",") if i]
            entry.categories = [by_id[i] for i in ids if i in by_id]
        if "referenceId" in data:
            self.store.set_reference(entry, as_str(data["referenceId"]))
        if "partnerSortValue" in data:
            entry.partner_sort_value = as_int(data["partnerSortValue"]) or 0
        entry.updated_at = now()

    async def entry_update(self, params: dict[str, Any], session: Session | None) -> Any:
        entry = self._entry(require(params, "entryId"))
        data = params.get("baseEntry", params.get("mediaEntry"))
        if not isinstance(data, dict):
            raise missing_param("baseEntry" if "baseEntry" in params else "mediaEntry")
        self._apply(entry, data)
        return self.entry_api(entry)

    async def entry_delete(self, params: dict[str, Any], session: Session | None) -> Any:
        """``media.delete``/``baseEntry.delete`` (``KalturaEntryService::deleteEntry``,
        ``myEntryUtils::deleteEntry``): status DELETED, the flavors deleted; the entry is then
        ``ENTRY_ID_NOT_FOUND`` for get and listed only by a status filter that names 3."""
        entry = self._entry(require(params, "entryId"))
        if entry.replacing_entry_id:
            self.store.cancel_replacement(entry)
        self.store.drop_entry(entry)
        return None

    async def entry_recycle(self, params: dict[str, Any], session: Session | None) -> Any:
        """``baseEntry.recycle`` (``BaseEntryService::recycleAction``)."""
        if not self.recycle_bin:
            raise ApiError(
                "FEATURE_RECYCLE_BIN_DISABLED", "Feature recycle bin is disabled for partner"
            )
        entry = self._entry(require(params, "entryId"))
        if entry.display_in_search == DISPLAY_RECYCLED:
            raise ApiError(
                "INVALID_ENTRY_STATUS_FOR_RECYCLE",
                "The entry displayInStatus is invalid for recycle",
            )
        entry.previous_display = entry.display_in_search
        entry.display_in_search, entry.recycled_at = DISPLAY_RECYCLED, now()
        entry.updated_at = now()
        return self.entry_api(entry)

    async def entry_restore_recycled(self, params: dict[str, Any], session: Session | None) -> Any:
        """``baseEntry.restoreRecycled`` (``BaseEntryService::restoreRecycledAction``)."""
        entry = self._entry(require(params, "entryId"))
        if entry.display_in_search != DISPLAY_RECYCLED:
            raise ApiError(
                "INVALID_ENTRY_STATUS_FOR_RESTORE",
                "Only entry in displayInStatus RECYCLED can be restored",
            )
        previous = entry.previous_display
        entry.display_in_search = DISPLAY_PARTNER_ONLY if previous is None else previous
        entry.previous_display, entry.recycled_at, entry.updated_at = None, None, now()
        return self.entry_api(entry)

    async def entry_get_by_ids(self, params: dict[str, Any], session: Session | None) -> Any:
        """``baseEntry.getByIds``: the entries found among a comma-separated id list."""
        ids = [i.strip() for i in (as_str(require(params, "entryIds")) or "").split(",")]
        found = [self.store.entries.get(i) for i in ids if i]
        return [self.entry_api(e) for e in found if e is not None and e.status != ENTRY_DELETED]

    async def media_add_content(self, params: dict[str, Any], session: Session | None) -> Any:
        entry = self._entry(require(params, "entryId"))
        if entry.status != ENTRY_NO_CONTENT:
            raise ApiError("ENTRY_ALREADY_WITH_CONTENT", "Entry already associated with content")
        resource = params.get("resource")
        if not isinstance(resource, dict):
            raise missing_param("resource")
        await self._attach(entry, resource)
        return self.entry_api(entry)

    async def media_update_content(self, params: dict[str, Any], session: Session | None) -> Any:
        """``MediaService::updateContentAction``: a NO_CONTENT entry takes the content itself;
        any other starts a replacement (``KalturaEntryService::replaceResourceByEntry``): a
        temporary entry (display SYSTEM) imports and converts the content while the entry and
        its flavors stay as they are; READY, it replaces them (``replaceEntry``), at once or
        after ``media.approveReplace`` when the partner needs approval."""
        entry = self._entry(require(params, "entryId"))
        resource = require(params, "resource")
        if not isinstance(resource, dict):
            raise missing_param("resource")
        if entry.status == ENTRY_NO_CONTENT:
            await self._attach(entry, resource)
        else:
            await self._attach(self._start_replacement(entry, resource), resource)
        return self.entry_api(entry)

    def _start_replacement(self, entry: Entry, resource: dict[str, Any]) -> Entry:
        if not self.entry_replacement:
            raise ApiError(
                "FEATURE_FORBIDDEN",
                "The usage of feature [FEATURE_ENTRY_REPLACEMENT] is forbidden",
                FEATURE="FEATURE_ENTRY_REPLACEMENT",
            )
        if entry.replacing_entry_id:
            raise ApiError("ENTRY_REPLACEMENT_ALREADY_EXISTS", "Entry already in replacement")
        self._check_resource(resource)
        at = now()
        temp = Entry(
            id=self.store.new_entry_id(),
            name=entry.name,
            created_at=at,
            updated_at=at,
            seq=self.store.next_seq(),
            status=ENTRY_NO_CONTENT,
            user_id=entry.user_id,
            creator_id=entry.creator_id,
            media_type=entry.media_type,
            display_in_search=DISPLAY_SYSTEM,
            replaced_entry_id=entry.id,
        )
        self.store.add_entry(temp)
        entry.replacing_entry_id = temp.id
        entry.replacement_status = (
            REPLACEMENT_NOT_READY_AND_NOT_APPROVED
            if self.replacement_approval
            else REPLACEMENT_APPROVED_BUT_NOT_READY
        )
        entry.updated_at = at
        return temp

    async def media_approve_replace(self, params: dict[str, Any], session: Session | None) -> Any:
        """``KalturaEntryService::approveReplace``."""
        entry = self._entry(require(params, "entryId"))
        status = entry.replacement_status
        if status == REPLACEMENT_READY_BUT_NOT_APPROVED:
            self.store.replace_entry(entry)
        elif status == REPLACEMENT_NOT_READY_AND_NOT_APPROVED:
            entry.replacement_status = REPLACEMENT_APPROVED_BUT_NOT_READY
            temp = self.store.entries.get(entry.replacing_entry_id or "")
            if temp is not None and temp.status == ENTRY_READY:
                self.store.replace_entry(entry)
        elif status != REPLACEMENT_APPROVED_BUT_NOT_READY:
            raise ApiError(
                "ENTRY_ID_NOT_REPLACED", f'Entry id "{entry.id}" not replaced', ENTRY_ID=entry.id
            )
        return self.entry_api(entry)

    async def media_cancel_replace(self, params: dict[str, Any], session: Session | None) -> Any:
        """``KalturaEntryService::cancelReplace``: the temporary entry is deleted."""
        entry = self._entry(require(params, "entryId"))
        self.store.cancel_replacement(entry)
        return self.entry_api(entry)

    async def media_update_thumbnail(self, params: dict[str, Any], session: Session | None) -> Any:
        entry = self._entry(require(params, "entryId"))
        entry.updated_at = now()
        return self.entry_api(entry)

    def _check_resource(self, resource: dict[str, Any]) -> None:
        """Refuse a resource before anything changes (``KalturaResource::validateEntry``)."""
        kind = as_str(resource.get("objectType")) or ""
        if kind == "KalturaUploadedFileTokenResource":
            token = self.store.tokens.get(as_str(require(resource, "token")) or "")
            if token is None:
                raise ApiError("UPLOAD_TOKEN_NOT_FOUND", "Upload token not found")
            if token.status != 2:
                raise ApiError(
                    "UPLOAD_TOKEN_INVALID_STATUS_FOR_ADD_ENTRY",
                    "Upload token is in an invalid status for adding entry",
                )
        elif kind == "KalturaUrlResource":
            url = as_str(require(resource, "url")) or ""
            if not _is_loopback(url):
                raise ApiError(
                    "RESOURCE_TYPE_NOT_SUPPORTED",
                    f"Resource URL [{url}] not allowed: the stand-in fetches loopback URLs only",
                )
        else:
            raise ApiError(
                "RESOURCE_TYPE_NOT_SUPPORTED",
                f"Resource type [{kind}] is not supported",
                RES_TYPE=kind,
            )

    async def _attach(self, entry: Entry, resource: dict[str, Any]) -> None:
        """Content for an entry without any (a new one, or a replacement's temporary one)."""
        self._check_resource(resource)
        kind = as_str(resource.get("objectType")) or ""
        self.content_dir.mkdir(parents=True, exist_ok=True)
        if kind == "KalturaUploadedFileTokenResource":
            token = self.store.tokens[as_str(resource.get("token")) or ""]
            original = self._new_original(entry, FLAVOR_CONVERTING)
            path = self.content_dir / original.id
            shutil.move(token.path, path)
            token.status, token.updated_at = 3, now()
            self._content_ready(entry, original, path)
        else:
            url = as_str(resource.get("url")) or ""
            original = self._new_original(entry, FLAVOR_IMPORTING)
            entry.status = ENTRY_IMPORT
            headers = _url_headers(resource.get("urlHeaders"))
            task = asyncio.create_task(self._import(entry, original, url, headers))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    def _new_original(self, entry: Entry, status: int) -> Flavor:
        at = now()
        original = Flavor(
            id=self.store.new_flavor_id(),
            entry_id=entry.id,
            is_original=True,
            size_bytes=0,
            status=status,
            created_at=at,
        )
        self.store.add_flavor(original)
        entry.updated_at = at
        return original

    def _content_ready(self, entry: Entry, original: Flavor, path: Path) -> None:
        """Content is in place: convert (original plus one web flavor) for the delay."""
        ready_at = time.time() + self.conversion_delay
        original.path = path
        original.size_bytes = path.stat().st_size
        original.status, original.ready_at = FLAVOR_CONVERTING, ready_at
        web = Flavor(
            id=self.store.new_flavor_id(),
            entry_id=entry.id,
            is_original=False,
            size_bytes=max(original.size_bytes // 2, 1),
            status=FLAVOR_CONVERTING,
            created_at=now(),
            flavor_params_id=WEB_FLAVOR_PARAMS,
            ready_at=ready_at,
        )
        self.store.add_flavor(web)
        entry.status = ENTRY_PRECONVERT
        entry.ready_at = ready_at
        if self.conversion_fails > 0:
            self.conversion_fails -= 1
            entry.fails_conversion = True
        self.store.pending.add(entry.id)
        self.store.tick()

    async def _import(
        self,
        entry: Entry,
        original: Flavor,
        url: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Pull the URL as Kaltura's import job does (``user:password@`` and ``urlHeaders`` too).

        A failed import leaves the entry ERROR_IMPORTING (a replacement's temporary entry too:
        ``handleEntryReplacement`` runs only on READY and ERROR_CONVERTING, so the replaced
        entry's ``replacementStatus`` stays as it was)."""
        path = self.content_dir / original.id
        try:
            async with (
                aiohttp.ClientSession() as http,
                http.get(
                    url, headers=headers or {}, timeout=aiohttp.ClientTimeout(total=600)
                ) as response,
            ):
                response.raise_for_status()
                with path.open("wb") as out:
                    async for chunk in response.content.iter_chunked(1 << 16):
                        out.write(chunk)
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError):  # ValueError: bad URL
            original.status = FLAVOR_ERROR
            entry.status = ENTRY_ERROR_IMPORTING
            return
        if original.status == FLAVOR_IMPORTING:
            self._content_ready(entry, original, path)

    # -- flavors --

    def _flavor(self, flavor_id: Any) -> Flavor:
        key = as_str(flavor_id) or ""
        flavor = self.store.flavors.get(key)
        if flavor is None or flavor.status == FLAVOR_DELETED:
            raise ApiError(
                "FLAVOR_ASSET_ID_NOT_FOUND", f'Flavor asset id "{key}" not found', ID=key
            )
        return flavor

    async def flavor_list(self, params: dict[str, Any], session: Session | None) -> Any:
        flt = params.get("filter") if isinstance(params.get("filter"), dict) else {}
        assert isinstance(flt, dict)
        entry_ids = [as_str(flt["entryIdEqual"]) or ""] if "entryIdEqual" in flt else None
        if "entryIdIn" in flt:
            entry_ids = [i.strip() for i in (as_str(flt["entryIdIn"]) or "").split(",")]
        if entry_ids is None:
            entry_ids = list(self.store.flavors_of)
        flavors = [f for e in entry_ids for f in self.store.live_flavors(e)]
        if "statusEqual" in flt:
            flavors = [f for f in flavors if f.status == as_int(flt["statusEqual"])]
        if "isOriginalEqual" in flt:
            flavors = [f for f in flavors if f.is_original == as_bool(flt["isOriginalEqual"])]
        start, end = filters.page_bounds(params.get("pager"), search=False)
        return {
            "objectType": "KalturaFlavorAssetListResponse",
            "objects": [f.to_api(self.store.partner_id) for f in flavors[start:end]],
            "totalCount": len(flavors),
        }

    async def flavor_get_by_entry_id(self, params: dict[str, Any], session: Session | None) -> Any:
        """``flavorAsset.getByEntryId``: the entry's flavors as an array."""
        entry = self._entry(require(params, "entryId"))
        pid = self.store.partner_id
        return [f.to_api(pid) for f in self.store.live_flavors(entry.id)]

    async def flavor_get(self, params: dict[str, Any], session: Session | None) -> Any:
        return self._flavor(require(params, "id")).to_api(self.store.partner_id)

    async def flavor_get_url(self, params: dict[str, Any], session: Session | None) -> Any:
        flavor = self._flavor(require(params, "id"))
        if flavor.status != FLAVOR_READY:
            raise ApiError(
                "FLAVOR_ASSET_IS_NOT_READY", f"The flavor asset [{flavor.id}] is not ready"
            )
        return self.download_url(flavor)

    async def flavor_delete(self, params: dict[str, Any], session: Session | None) -> Any:
        flavor = self._flavor(require(params, "id"))
        flavor.status, flavor.deleted_at, flavor.ready_at = FLAVOR_DELETED, now(), None
        if flavor.path is not None:
            flavor.path.unlink(missing_ok=True)
            flavor.path = None
        return None

    # -- upload tokens --

    def _token(self, token_id: Any) -> UploadToken:
        token = self.store.tokens.get(as_str(token_id) or "")
        if token is None:
            raise ApiError("UPLOAD_TOKEN_NOT_FOUND", "Upload token not found")
        return token

    async def token_add(self, params: dict[str, Any], session: Session | None) -> Any:
        data = params.get("uploadToken") if isinstance(params.get("uploadToken"), dict) else {}
        assert isinstance(data, dict)
        token_id = "0_" + secrets.token_hex(16)
        uploads = self.store.data_dir / "uploads"
        uploads.mkdir(parents=True, exist_ok=True)
        token = UploadToken(
            id=token_id,
            user_id=(session.user_id if session else "") or "",
            path=uploads / token_id,
            file_name=as_str(data.get("fileName")) or "",
            file_size=as_int(data.get("fileSize")),
            auto_finalize=bool(as_bool(data.get("autoFinalize"))),
        )
        token.path.touch()
        self.store.tokens[token_id] = token
        return token.to_api(self.store.partner_id)

    async def token_get(self, params: dict[str, Any], session: Session | None) -> Any:
        return self._token(require(params, "uploadTokenId")).to_api(self.store.partner_id)

    async def token_list(self, params: dict[str, Any], session: Session | None) -> Any:
        """``uploadToken.list`` (``statusEqual``/``statusIn``/``idIn``, paged)."""
        flt = params.get("filter") if isinstance(params.get("filter"), dict) else {}
        assert isinstance(flt, dict)
        tokens = list(self.store.tokens.values())
        if "statusEqual" in flt:
            tokens = [t for t in tokens if t.status == as_int(flt["statusEqual"])]
        if "statusIn" in flt:
            wanted = {as_int(v) for v in filters.in_list(flt["statusIn"])}
            tokens = [t for t in tokens if t.status in wanted]
        if "idIn" in flt:
            ids = set(filters.in_list(flt["idIn"]))
            tokens = [t for t in tokens if t.id in ids]
        start, end = filters.page_bounds(params.get("pager"), search=False)
        return {
            "objectType": "KalturaUploadTokenListResponse",
            "objects": [t.to_api(self.store.partner_id) for t in tokens[start:end]],
            "totalCount": len(tokens),
        }

    async def token_delete(self, params: dict[str, Any], session: Session | None) -> Any:
        """``uploadToken.delete``: the token and what was uploaded into it go."""
        token = self._token(require(params, "uploadTokenId"))
        del self.store.tokens[token.id]
        token.path.unlink(missing_ok=True)
        return None

    async def token_upload(self, params: dict[str, Any], session: Session | None) -> Any:
        """``uploadToken.upload`` as ``kUploadTokenMgr::handleResume`` does it.

        Without ``resume`` the data replaces the file; with ``resumeAt`` -1 it is appended;
        with a position it is written there when it touches what is held, else kept aside
        until the gap is filled. Only a final chunk at a position above 0 is checked: the file
        must then end where the chunk does (``UPLOAD_TOKEN_CANNOT_MATCH_EXPECTED_SIZE``). The
        ``fileSize`` given to ``add`` is checked only with ``autoFinalize``. (The server waits
        up to 45 s for missing chunks before refusing; the stand-in refuses at once.)
        """
        token = self._token(require(params, "uploadTokenId"))
        file_data = params.get("fileData")
        if not isinstance(file_data, FileParam):
            raise missing_param("fileData")
        if token.status not in (0, 1):
            raise ApiError(
                "UPLOAD_TOKEN_INVALID_STATUS_FOR_UPLOAD",
                "Upload token is in an invalid status for uploading a file",
            )
        resume = bool(as_bool(params.get("resume")))
        final = as_bool(params.get("finalChunk"))
        final = True if final is None else final
        resume_at = as_int(params.get("resumeAt"))
        resume_at = -1 if resume_at is None else resume_at
        data = file_data.data
        expected: int | None = None
        if not resume:
            token.path.write_bytes(data)
        elif resume_at < 0:
            with token.path.open("ab") as out:
                out.write(data)
        else:
            token.chunks[resume_at] = data
            _append_available(token)
            if final and resume_at > 0:
                expected = resume_at + len(data)
        size = token.path.stat().st_size
        if (
            token.auto_finalize
            and token.file_size is not None
            and max(resume_at, 0) + len(data) >= token.file_size
        ):
            final, expected = True, token.file_size
        token.uploaded = size
        token.file_name = token.file_name or file_data.filename
        token.updated_at = now()
        if final and expected is not None and size != expected:
            token.status = 1
            raise ApiError(
                "UPLOAD_TOKEN_CANNOT_MATCH_EXPECTED_SIZE", "Failed to match expected file size"
            )
        token.status = 2 if final else 1
        return token.to_api(self.store.partner_id)


def _append_available(token: UploadToken) -> None:
    """Write the kept-aside chunks that now touch the end of the file, in order."""
    with token.path.open("r+b") as out:
        while token.chunks:
            size = out.seek(0, 2)
            position = min(token.chunks)
            data = token.chunks[position]
            if position > size:
                return  # a gap: wait for the chunk that fills it
            del token.chunks[position]
            if position + len(data) <= size:
                continue  # already held
            out.seek(position)
            out.write(data)
