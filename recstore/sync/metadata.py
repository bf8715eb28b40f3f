"""The custom metadata profile ``vidyoreplaymetadata00`` and the XML of one recording.

Kaltura validates ``metadata.add`` XML against the profile's XSD: elements in the sequence's
order, values of the declared types. The original syncer built the XML by string
concatenation without escaping, so a title with ``&`` or ``<`` broke its whole batch. Here
every value is escaped, characters XML 1.0 cannot carry are dropped, empty optional fields are
left out (an empty ``dateType`` is not a number), and :data:`FIELDS` is kept equal to the
XSD's sequence by a test.

An existing profile of that system name is reused as it stands: the seed's
``setupMetadata.php`` made one from its own ``VidyoReplayCustomMetadata.xsd`` (the same 13
elements in the same order), but a profile edited since, or made by hand, may lack a field or
order them otherwise, and then Kaltura refuses every ``metadata.add``.
:func:`profile_problems` says so before anything is written.
"""

from __future__ import annotations

import importlib.resources
import re
from datetime import UTC, datetime
from xml.sax.saxutils import escape

from lxml import etree

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
_XSD = "{http://www.w3.org/2001/XMLSchema}"
#: What recstore writes, at its fullest and at its sparsest (empty fields are left out).
_SAMPLES = (
    Record(
        id=63,
        guid="f7b86816-b57c-49c4-84d1-ac56d374bd25",
        tenant_name="Default",
        user_name="alice",
        user_full_name="Alice Example",
        date_created=datetime(2013, 1, 16, 8, 2, 36, tzinfo=UTC),
        date_created_string="2013-01-16 08:02:36",
        end_time=datetime(2013, 1, 16, 8, 45, 0, tzinfo=UTC),
        pin="4711",
        record_scope="public",
        room_name="Lecture Hall",
        recorder_id="recorder-1",
        locked=True,
    ),
    Record(id=63, guid="f7b86816-b57c-49c4-84d1-ac56d374bd25"),
)


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


def profile_problems(xsd: str) -> list[str]:
    """Why a profile with this XSD would refuse the metadata recstore writes; [] if it takes it.

    The fields recstore writes must all be declared, and the XML of a recording (every field
    filled, and only those always filled) must validate, as Kaltura validates ``metadata.add``.
    """
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        root = etree.fromstring(xsd.encode(), parser)
        schema = etree.XMLSchema(root)
    except (etree.XMLSyntaxError, etree.XMLSchemaParseError) as exc:
        return [f"its XSD cannot be read: {exc}"]
    declared = {e.get("name") for e in root.iter(f"{_XSD}element")}
    missing = [name for name in FIELDS if name not in declared]
    if missing:
        return [f"it lacks the field(s) {', '.join(missing)}"]
    for sample in _SAMPLES:
        if not schema.validate(etree.fromstring(metadata_xml(sample).encode(), parser)):
            error = schema.error_log.last_error
            return [f"it refuses recstore's metadata: {error.message if error else 'invalid'}"]
    return []
