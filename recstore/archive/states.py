"""Where an entry stands in the archive cycle, read from its tags, its flavors and S3.

Seed 001 names three states: *initial* (no S3 copy, neither tag), *archived* (S3 copy and
``archived_to_s3``) and *place_holder* (also ``flavors_deleted``, the original flavor being the
placeholder video). Its README calls that tag ``deleted_flavors``; its code
(``kaltura_aws.py``, ``PLACE_HOLDER_VIDEO = "flavors_deleted"``) and scripts write and select
``flavors_deleted``. Both are read; ``flavors_deleted`` is written.

Tags are one comma-separated string in Kaltura; they are compared as a set of trimmed words,
never by substring (``archived_to_s3_old`` is not ``archived_to_s3``).

Flavor sizes: ``size`` is in KB and approximate, ``sizeInBytes`` exact where the server has it,
so a size check is exact when it can be and within a tolerance when it cannot.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from recstore.clients.kaltura_types import KalturaFlavorAsset

#: KalturaEntryStatus, for reports.
ENTRY_STATUS = {
    -2: "ERROR_IMPORTING",
    -1: "ERROR_CONVERTING",
    0: "IMPORT",
    1: "PRECONVERT",
    2: "READY",
    3: "DELETED",
    4: "PENDING",
    5: "MODERATE",
    6: "BLOCKED",
    7: "NO_CONTENT",
}
#: KalturaFlavorAssetStatus, for reports.
FLAVOR_STATUS = {
    -1: "ERROR",
    0: "QUEUED",
    1: "CONVERTING",
    2: "READY",
    3: "DELETED",
    4: "NOT_APPLICABLE",
    5: "TEMP",
    6: "WAIT_FOR_CONVERT",
    7: "IMPORTING",
    8: "VALIDATING",
    9: "EXPORTING",
}
ENTRY_READY = 2
FLAVOR_READY = 2
KB = 1024


class EntryState(enum.Enum):
    INITIAL = "initial"
    ARCHIVED = "archived"
    PLACE_HOLDER = "place_holder"


@dataclass(frozen=True)
class ArchiveTags:
    """The tag names the archive cycle writes, and older names still read as theirs."""

    archived: str = "archived_to_s3"
    flavors_deleted: str = "flavors_deleted"
    #: Other names of ``flavors_deleted``: seed 003's earlier ``place_holder_video``, and
    #: ``deleted_flavors``, the name seed 001's README gives the tag (its code writes
    #: ``flavors_deleted``, which is why recstore writes that one).
    flavors_deleted_aliases: tuple[str, ...] = ("place_holder_video", "deleted_flavors")

    def is_archived(self, tags: Iterable[str]) -> bool:
        return self.archived.lower() in _lower(tags)

    def has_flavors_deleted(self, tags: Iterable[str]) -> bool:
        names = {self.flavors_deleted, *self.flavors_deleted_aliases}
        return bool({n.lower() for n in names} & _lower(tags))

    def state(self, tags: Iterable[str]) -> EntryState:
        """The state the tags claim (health compares it with S3 and the flavors)."""
        words = list(tags)
        if self.has_flavors_deleted(words):
            return EntryState.PLACE_HOLDER
        if self.is_archived(words):
            return EntryState.ARCHIVED
        return EntryState.INITIAL


def tag_words(tags: str | None) -> list[str]:
    """Kaltura's comma-separated tag string as trimmed words, in order, without empties."""
    return [t.strip() for t in (tags or "").split(",") if t.strip()]


def with_tag(tags: str | None, tag: str) -> str:
    """The tag string with ``tag`` added once (other words kept as they were)."""
    words = tag_words(tags)
    if tag.lower() not in _lower(words):
        words.append(tag)
    return ",".join(words)


def without_tags(tags: str | None, remove: Iterable[str]) -> str:
    """The tag string without any of ``remove`` (compared case-insensitively as words)."""
    drop = _lower(remove)
    return ",".join(w for w in tag_words(tags) if w.lower() not in drop)


def _lower(words: Iterable[str]) -> set[str]:
    return {w.strip().lower() for w in words}


@dataclass(frozen=True)
class Flavor:
    """The fields of a ``KalturaFlavorAsset`` the archive rules read."""

    id: str
    is_original: bool
    status: int
    size_kb: int
    size_bytes: int | None
    params_id: str = ""

    @classmethod
    def from_api(cls, asset: KalturaFlavorAsset) -> Flavor:
        return cls(
            id=asset.id,
            is_original=asset.is_original,
            status=asset.status,
            size_kb=asset.size or 0,
            size_bytes=asset.size_in_bytes or None,  # 0: the server does not know
            params_id=asset.flavor_params_id,
        )

    @property
    def status_name(self) -> str:
        return FLAVOR_STATUS.get(self.status, str(self.status))

    @property
    def ready(self) -> bool:
        return self.status == FLAVOR_READY


def original_flavor(flavors: Sequence[Flavor]) -> Flavor | None:
    """The entry's original (source) flavor, if it has one."""
    return next((f for f in flavors if f.is_original), None)


@dataclass(frozen=True)
class SizeRule:
    """When an S3 copy's size matches the original flavor's."""

    #: Relative tolerance where Kaltura knows only the approximate KB size (seed: 3 %).
    tolerance: float = 0.03
    #: Originals above this many KB are not archived, and health warns about them.
    max_original_kb: int = 10_000_000

    def matches(self, flavor: Flavor, s3_size: int) -> bool:
        if flavor.size_bytes is not None:
            return flavor.size_bytes == s3_size
        expected = flavor.size_kb * KB
        if expected == 0:
            return s3_size == 0
        return abs(s3_size - expected) <= self.tolerance * expected

    def too_big(self, flavor: Flavor) -> bool:
        return flavor.size_kb > self.max_original_kb
