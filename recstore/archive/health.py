"""Seed 001's health invariants of one entry, each broken one named in words.

1. The entry has an original flavor, and it is READY.
2. An object in S3 under the entry's id ⇔ the entry carries ``archived_to_s3``.
3. ``flavors_deleted`` ⇒ ``archived_to_s3``.
4. ``archived_to_s3`` without ``flavors_deleted`` ⇒ the S3 copy's size matches the original
   (exact where Kaltura gives ``sizeInBytes``, within the tolerance where only KB sizes exist).
   Once the flavors are deleted the original is the placeholder, so sizes no longer compare.

An original above the archive limit is a warning, not a fault: it is healthy, it just will not
be archived.
"""

from __future__ import annotations

from dataclasses import dataclass

from recstore.archive.inventory import EntryView
from recstore.archive.states import ArchiveTags, Flavor, SizeRule
from recstore.clients.s3 import ObjectInfo


@dataclass(frozen=True)
class Health:
    entry_id: str
    problems: tuple[str, ...]
    warnings: tuple[str, ...]
    original: Flavor | None
    archived: bool
    flavors_deleted: bool
    s3: ObjectInfo | None
    #: None where sizes are not compared (no copy, or the original is the placeholder).
    size_match: bool | None

    @property
    def healthy(self) -> bool:
        return not self.problems

    @property
    def message(self) -> str:
        return "; ".join((*self.problems, *(f"warning: {w}" for w in self.warnings)))


def check(view: EntryView, tags: ArchiveTags, sizes: SizeRule) -> Health:
    """The invariants on an entry looked up with its flavors and its S3 copy."""
    problems: list[str] = []
    warnings: list[str] = []
    words = view.tags
    archived = tags.is_archived(words)
    deleted = tags.has_flavors_deleted(words)
    original = view.original
    if original is None:
        problems.append("no original flavor")
    elif not original.ready:
        problems.append(f"original flavor is {original.status_name}, not READY")
    if view.s3 is not None and not archived:
        problems.append(f"in S3 but not tagged {tags.archived}")
    if view.s3 is None and archived:
        problems.append(f"tagged {tags.archived} but not in S3")
    if deleted and not archived:
        problems.append(f"tagged {tags.flavors_deleted} but not {tags.archived}")
    size_match: bool | None = None
    if archived and not deleted and view.s3 is not None and original is not None:
        size_match = sizes.matches(original, view.s3.size)
        if not size_match:
            problems.append(f"S3 copy has {view.s3.size} bytes, the original {_size_of(original)}")
    if original is not None and sizes.too_big(original):
        warnings.append(
            f"original is {original.size_kb} KB, above the archive limit of "
            f"{sizes.max_original_kb} KB"
        )
    return Health(
        entry_id=view.id,
        problems=tuple(problems),
        warnings=tuple(warnings),
        original=original,
        archived=archived,
        flavors_deleted=deleted,
        s3=view.s3,
        size_match=size_match,
    )


def _size_of(flavor: Flavor) -> str:
    if flavor.size_bytes is not None:
        return f"{flavor.size_bytes} bytes"
    return f"about {flavor.size_kb} KB"
