"""Custom metadata actions: ``metadataProfile.list/add`` and ``metadata.list/add/update``.

The syncer keeps each recording's VidyoReplay fields in a custom metadata profile; Kaltura
checks the XML against the profile's XSD and refuses a second object for the same profile and
entry, so the stand-in does both.
"""

from __future__ import annotations

from typing import Any

from recstore.devstack import kaltura_filters as filters
from recstore.devstack.kaltura_ks import Session
from recstore.devstack.kaltura_model import Entry, Metadata, MetadataProfile, Store, now
from recstore.devstack.kaltura_wire import ApiError, as_int, as_str, missing_param, require
from recstore.devstack.kaltura_xml import check_metadata, check_xsd


class MetadataActions:
    """Mixed into :class:`~recstore.devstack.kaltura_services.Services`."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._next_id = 1

    def new_int_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _entry(self, entry_id: Any) -> Entry:
        raise NotImplementedError

    async def profile_list(self, params: dict[str, Any], session: Session | None) -> Any:
        flt = params.get("filter") if isinstance(params.get("filter"), dict) else {}
        assert isinstance(flt, dict)
        profiles = list(self.store.profiles.values())
        if "systemNameEqual" in flt:
            profiles = [p for p in profiles if p.system_name == as_str(flt["systemNameEqual"])]
        if "idEqual" in flt:
            profiles = [p for p in profiles if p.id == as_int(flt["idEqual"])]
        if "nameEqual" in flt:
            profiles = [p for p in profiles if p.name == as_str(flt["nameEqual"])]
        return {
            "objectType": "KalturaMetadataProfileListResponse",
            "objects": [p.to_api(self.store.partner_id) for p in profiles],
            "totalCount": len(profiles),
        }

    async def profile_add(self, params: dict[str, Any], session: Session | None) -> Any:
        data = require(params, "metadataProfile")
        xsd = as_str(require(params, "xsdData")) or ""
        if not isinstance(data, dict):
            raise missing_param("metadataProfile")
        check_xsd(xsd)
        system_name = as_str(data.get("systemName")) or ""
        if system_name and any(p.system_name == system_name for p in self.store.profiles.values()):
            # KalturaMetadataProfile::validateForInsert (plugins/metadata/lib/api/
            # KalturaMetadataProfile.php:183)
            raise ApiError(
                "SYSTEM_NAME_ALREADY_EXISTS",
                f"System name [{system_name}] already exists",
                SYS_NAME=system_name,
            )
        profile = MetadataProfile(
            id=self.new_int_id(),
            name=as_str(data.get("name")) or "",
            system_name=system_name,
            xsd=xsd,
            views=as_str(params.get("viewsData")) or "",
            description=as_str(data.get("description")) or "",
            create_mode=as_int(data.get("createMode")) or 1,
        )
        self.store.profiles[profile.id] = profile
        return profile.to_api(self.store.partner_id)

    async def metadata_list(self, params: dict[str, Any], session: Session | None) -> Any:
        """``metadata.list`` as ``KalturaMetadataFilter::getListResponse`` answers it.

        ``metadataObjectTypeEqual`` defaults to ENTRY (1); for entries a filter naming neither
        ``objectIdEqual`` nor ``objectIdIn`` is refused (``MUST_FILTER_ON_OBJECT_ID``), and
        ``objectIdIn`` keeps its first 150 values as every ``...In`` list does.
        """
        flt = params.get("filter") if isinstance(params.get("filter"), dict) else {}
        assert isinstance(flt, dict)
        object_type = as_str(flt.get("metadataObjectTypeEqual")) or "1"
        if as_str(flt.get("objectIdEqual")):
            object_ids = [as_str(flt["objectIdEqual"]) or ""]
        else:
            object_ids = filters.in_list(flt.get("objectIdIn"))
        if not object_ids and object_type == "1":
            raise ApiError("MUST_FILTER_ON_OBJECT_ID", "Must filter on object id")
        wanted = set(object_ids)
        items = [
            m
            for m in self.store.metadata.values()
            if m.object_type == object_type and (not wanted or m.object_id in wanted)
        ]
        if "metadataProfileIdEqual" in flt:
            pid = as_int(flt["metadataProfileIdEqual"])
            items = [m for m in items if m.profile_id == pid]
        start, end = filters.page_bounds(params.get("pager"))
        return {
            "objectType": "KalturaMetadataListResponse",
            "objects": [m.to_api(self.store.partner_id) for m in items[start:end]],
            "totalCount": len(items),
        }

    async def metadata_add(self, params: dict[str, Any], session: Session | None) -> Any:
        profile_id = as_int(require(params, "metadataProfileId")) or 0
        profile = self.store.profiles.get(profile_id)
        if profile is None:
            raise ApiError(
                "INVALID_METADATA_PROFILE",
                f"Invalid metadata profile id [{profile_id}]",
                ID=profile_id,
            )
        object_id = as_str(require(params, "objectId")) or ""
        object_type = as_str(params.get("objectType")) or "1"
        if object_type == "1":
            self._entry(object_id)
        xml = as_str(require(params, "xmlData")) or ""
        check_metadata(profile.xsd, xml)
        for existing in self.store.metadata.values():
            if existing.profile_id == profile_id and existing.object_id == object_id:
                raise ApiError(
                    "METADATA_ALREADY_EXISTS",
                    f"Metadata already exists [{existing.id}]",
                    ID=existing.id,
                )
        item = Metadata(
            id=self.new_int_id(),
            profile_id=profile_id,
            object_id=object_id,
            xml=xml,
            object_type=object_type,
        )
        self.store.metadata[item.id] = item
        return item.to_api(self.store.partner_id)

    async def metadata_update(self, params: dict[str, Any], session: Session | None) -> Any:
        item = self._metadata(require(params, "id"))
        xml = as_str(params.get("xmlData"))
        if xml is not None:
            check_metadata(self.store.profiles[item.profile_id].xsd, xml)
            item.xml = xml
            item.version += 1
            item.updated_at = now()
        return item.to_api(self.store.partner_id)

    async def metadata_get(self, params: dict[str, Any], session: Session | None) -> Any:
        return self._metadata(require(params, "id")).to_api(self.store.partner_id)

    async def metadata_delete(self, params: dict[str, Any], session: Session | None) -> Any:
        item = self._metadata(require(params, "id"))
        del self.store.metadata[item.id]
        return None

    def _metadata(self, value: Any) -> Metadata:
        metadata_id = as_int(value) or 0
        item = self.store.metadata.get(metadata_id)
        if item is None:
            raise ApiError(
                "METADATA_NOT_FOUND", f"metadata not found, id [{metadata_id}]", ID=metadata_id
            )
        return item

    async def profile_get(self, params: dict[str, Any], session: Session | None) -> Any:
        return self._profile(require(params, "id")).to_api(self.store.partner_id)

    async def profile_delete(self, params: dict[str, Any], session: Session | None) -> Any:
        """``metadataProfile.delete``: the profile and its metadata objects go."""
        profile = self._profile(require(params, "id"))
        del self.store.profiles[profile.id]
        for item in [m for m in self.store.metadata.values() if m.profile_id == profile.id]:
            del self.store.metadata[item.id]
        return None

    def _profile(self, value: Any) -> MetadataProfile:
        profile_id = as_int(value) or 0
        profile = self.store.profiles.get(profile_id)
        if profile is None:
            raise ApiError(
                "METADATA_PROFILE_NOT_FOUND",
                f"metadata profile not found, id [{profile_id}]",
                ID=profile_id,
            )
        return profile
