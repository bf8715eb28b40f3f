"""Kaltura's wire objects that recstore reads, as the official client names them.

Modelled on the generated classes of the official Python client (``KalturaClient`` package,
``Plugins/Core.py``: ``KalturaMediaEntry`` (its ``KalturaBaseEntry`` and ``KalturaPlayableEntry``
fields), ``KalturaFlavorAsset`` (its ``KalturaAsset`` fields), ``KalturaUploadToken``;
``Plugins/Metadata.py``: ``KalturaMetadataProfile``, ``KalturaMetadata``): only the fields
recstore reads, under snake_case names (the wire's camelCase are the aliases), and unknown
fields ignored, as the official client ignores what its version does not know. Values are
read leniently (a number sent as a string is a number) because the server's JSON is not
always typed as its schema says.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class KalturaObject(BaseModel):
    """An object of Kaltura's JSON answer (``objectType`` names its class)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        frozen=True,
        coerce_numbers_to_str=True,
    )


class KalturaMediaEntry(KalturaObject):
    """A media entry (``KalturaMediaEntry``; also what ``baseEntry`` calls answer).

    ``status`` and ``replacementStatus`` are string enums on the wire (``KalturaEntryStatus``:
    "2" is READY; plugins add values such as ``virusScan.Infected``), so they stay strings.
    Times are unix seconds.
    """

    id: str
    name: str | None = None
    description: str | None = None
    tags: str | None = None
    status: str | None = None
    reference_id: str | None = None
    partner_sort_value: int | None = None
    created_at: int = 0
    last_played_at: int | None = None
    plays: int | None = None
    creator_id: str | None = None
    user_id: str | None = None
    categories: str | None = None
    categories_ids: str | None = None
    replacement_status: str | None = None
    replacing_entry_id: str | None = None
    replaced_entry_id: str | None = None


class KalturaFlavorAsset(KalturaObject):
    """One rendition of an entry (``KalturaFlavorAsset``; ``size`` in KB, approximate)."""

    id: str = ""
    entry_id: str = ""
    flavor_params_id: str = ""
    is_original: bool = False
    #: KalturaFlavorAssetStatus; -1 (ERROR) when the answer lacks it.
    status: int = -1
    size: int | None = None
    size_in_bytes: int | None = None


class KalturaUploadToken(KalturaObject):
    """An upload in progress (``KalturaUploadToken``; status 2 is FULL_UPLOAD)."""

    id: str
    file_name: str | None = None
    file_size: int | None = None
    uploaded_file_size: int | None = None
    status: int | None = None


class KalturaMetadataProfile(KalturaObject):
    """A custom metadata schema (``KalturaMetadataProfile``; ``xsd`` is its schema)."""

    id: int
    system_name: str | None = None
    xsd: str | None = None


class KalturaMetadata(KalturaObject):
    """One object's custom metadata of a profile (``KalturaMetadata``; ``xml`` its values)."""

    id: int
    metadata_profile_id: int | None = None
    object_id: str | None = None
    xml: str | None = None
