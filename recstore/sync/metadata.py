"""The custom metadata profile ``vidyoreplaymetadata00`` and the XML of one recording.

Kaltura validates ``metadata.add`` XML against the profile's XSD: elements in the sequence's
order, values of the declared types. The original syncer built the XML by string
concatenation without escaping, so a title with ``&`` or ``<`` broke its whole batch. Here
every value is escaped, characters XML 1.0 cannot carry are dropped, empty optional fields are
left out (an empty ``dateType`` is not a number), and :data:`FIELDS` is kept equal to the
XSD's sequence by a test.
"""

from __future__ import annotations

import importlib.resources
import re
from datetime import UTC, datetime
from xml.sax.saxutils import escape

from recstore.clients.vidyo import Record

PROFILE_SYSTEM_NAME = "vidyoreplaymetadata00"
PROFILE_NAME = "VidyoReplay recording"
XSD_RESOURCE = "vidyoreplay_metadata.xsd"

#: The profile's elements, in the XSD's sequence order.
FIELDS: tuple[str, ...] = (
    "RecordingId",
    "RecordingGuid",
    "TenantName",
    "UserName",
    "UserFullName",
    "DateCreated",
    "EndTime",
    "DateCreatedString",
    "Pin",
    "RecordScope",
    "RoomName",
    "RecorderId",
    "Locked",
)

#: Characters outside XML 1.0's Char production (controls, lone surrogates, U+FFFE/U+FFFF).
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ESCAPES = {'"': "&quot;", "'": "&apos;"}


def profile_xsd() -> str:
    """The profile's XSD, as shipped in the package."""
    return importlib.resources.files(__package__).joinpath(XSD_RESOURCE).read_text("utf-8")


def xml_text(value: str) -> str:
    """``value`` as XML character data: escaped, and without characters XML cannot hold."""
    return escape(_NOT_XML.sub("", value), _ESCAPES)


def _seconds(when: datetime | None) -> str | None:
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return str(int(when.timestamp()))


def field_values(record: Record) -> dict[str, str | None]:
    """Each profile field's text for ``record``; None where the recording has no value."""
    return {
        "RecordingId": str(record.id),
        "RecordingGuid": record.guid,
        "TenantName": record.tenant_name,
        "UserName": record.user_name,
        "UserFullName": record.user_full_name,
        "DateCreated": _seconds(record.date_created),
        "EndTime": _seconds(record.end_time),
        "DateCreatedString": record.date_created_string,
        "Pin": record.pin,
        "RecordScope": record.record_scope,
        "RoomName": record.room_name,
        "RecorderId": record.recorder_id,
        "Locked": "true" if record.locked else "false",
    }


def metadata_xml(record: Record) -> str:
    """The ``xmlData`` of ``metadata.add``: the fields in sequence order, empty ones left out."""
    values = field_values(record)
    parts = ["<metadata>"]
    for name in FIELDS:
        value = values[name]
        if value is None or value == "":
            continue
        parts.append(f"<{name}>{xml_text(value)}</{name}>")
    parts.append("</metadata>")
    return "".join(parts)
