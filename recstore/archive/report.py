"""Report rows with the seed's column names, and writers for TSV, CSV and JSON lines.

The TSV columns are seed 001's, in its order, so existing spreadsheets and the LDAP filter
(``add_ldap_status``) keep working. TSV has no quoting: a tab or line break inside a value
becomes a space. JSON is one object per line (JSON Lines), which streams like the others and
reads with ``jq``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from recstore.archive.health import Health
from recstore.archive.inventory import EntryView
from recstore.archive.states import ENTRY_STATUS, ArchiveTags
from recstore.clients.kaltura_types import KalturaMediaEntry

LIST_COLUMNS = (
    "last_played_date",
    "plays",
    "entry_id",
    "status",
    "archived_to_s3",
    "flavors_deleted",
    "created_date",
    "created",
    "creator_id",
    "category_ids",
    "categories",
)
FLAVOR_COLUMNS = (
    "entry_id",
    "flavor_id",
    "flavor_params_id",
    "is_original",
    "status",
    "size_KB",
    "size_bytes",
    "archived_to_s3",
    "flavors_deleted",
)
HEALTH_COLUMNS = (
    "entry_id",
    "status-ok",
    "original",
    "orig_status",
    "archived_to_s3",
    "flavors_deleted",
    "created_date",
    "s3-size",
    "orig_KB",
    "size_match",
    "message",
)
FORMATS = ("tsv", "csv", "json")

Row = Mapping[str, Any]


def date_of(timestamp: Any) -> str:
    """``YYYY-MM-DD`` (UTC) of a Kaltura unix time; empty when there is none."""
    if timestamp in (None, "", 0):
        return ""
    return datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%d")


def list_row(entry: KalturaMediaEntry, tags: ArchiveTags) -> dict[str, Any]:
    words = [w for w in (entry.tags or "").split(",") if w.strip()]
    status = entry.status
    return {
        "last_played_date": date_of(entry.last_played_at),
        "plays": entry.plays or 0,
        "entry_id": entry.id,
        "status": ENTRY_STATUS.get(int(status), str(status)) if status is not None else "",
        "archived_to_s3": tags.is_archived(words),
        "flavors_deleted": (tags.has_flavors_deleted(words)),
        "created_date": date_of(entry.created_at),
        "created": entry.created_at,
        "creator_id": entry.creator_id or entry.user_id or "",
        "category_ids": entry.categories_ids or "",
        "categories": entry.categories or "",
    }


def flavor_rows(view: EntryView, tags: ArchiveTags) -> list[dict[str, Any]]:
    words = view.tags
    return [
        {
            "entry_id": view.id,
            "flavor_id": flavor.id,
            "flavor_params_id": flavor.params_id,
            "is_original": flavor.is_original,
            "status": flavor.status_name,
            "size_KB": flavor.size_kb,
            "size_bytes": "" if flavor.size_bytes is None else flavor.size_bytes,
            "archived_to_s3": tags.is_archived(words),
            "flavors_deleted": (tags.has_flavors_deleted(words)),
        }
        for flavor in view.flavors
    ]


def health_row(view: EntryView, health: Health) -> dict[str, Any]:
    original = health.original
    return {
        "entry_id": health.entry_id,
        "status-ok": "HEALTHY" if health.healthy else "UNHEALTHY",
        "original": original.id if original else "",
        "orig_status": original.status_name if original else "",
        "archived_to_s3": health.archived,
        "flavors_deleted": health.flavors_deleted,
        "created_date": date_of(view.entry.created_at),
        "s3-size": "" if health.s3 is None else health.s3.size,
        "orig_KB": original.size_kb if original else "",
        "size_match": "" if health.size_match is None else health.size_match,
        "message": health.message,
    }


class RowWriter:
    """Writes rows of fixed columns to a text stream in one of :data:`FORMATS`."""

    def __init__(self, out: TextIO, columns: Sequence[str], fmt: str = "tsv") -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
        self._out = out
        self._columns = tuple(columns)
        self._format = fmt
        self._csv = csv.writer(out, lineterminator="\n") if fmt == "csv" else None

    def header(self) -> None:
        if self._format == "tsv":
            self._out.write("\t".join(self._columns) + "\n")
        elif self._csv is not None:
            self._csv.writerow(self._columns)

    def row(self, row: Row) -> None:
        values = [row.get(c, "") for c in self._columns]
        if self._format == "tsv":
            self._out.write("\t".join(_tsv_cell(v) for v in values) + "\n")
        elif self._csv is not None:
            self._csv.writerow(["" if v is None else v for v in values])
        else:
            self._out.write(json.dumps(dict(zip(self._columns, values, strict=True))) + "\n")


def _tsv_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("\t", " ").replace("\r", " ").replace("\n", " ")
