"""The sync's rules without any server: metadata XML, entry fields, planning, batches, outcomes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from lxml import etree

from recstore.clients.kaltura import KalturaError
from recstore.clients.kaltura_types import KalturaMediaEntry
from recstore.clients.vidyo import Record, as_list, record_from_wire, records_of, strip_credentials
from recstore.sync.metadata import FIELDS, metadata_xml, profile_xsd
from recstore.sync.plan import (
    Step,
    SyncRules,
    Work,
    batches,
    build_calls,
    entry_fields,
    group_by_reference,
    plan_page,
    read_outcomes,
    tag_words,
    url_resource,
)

HOSTILE = "Q&A <intro> \"quoted\" 'single' — Zürich 東京 🎥 \x07bell"
RULES = SyncRules(tag="vidyoreplay", categories=("MediaSpace>site>Vidyo",), profile_id=7)


def record(n: int = 1, **fields: Any) -> Record:
    values: dict[str, Any] = {
        "id": n,
        "guid": f"guid-{n:04d}",
        "user_name": "alice",
        "title": f"Recording {n}",
        "file_link": f"http://127.0.0.1:1/replay/files/guid-{n:04d}.mp4",
        "date_created": datetime(2013, 1, 16, 8, 2, 36, tzinfo=UTC),
    }
    values.update(fields)
    return Record(**values)


def schema() -> Any:
    return etree.XMLSchema(etree.fromstring(profile_xsd().encode()))


def test_metadata_fields_are_the_xsd_sequence() -> None:
    root = etree.fromstring(profile_xsd().encode())
    names = [e.get("name") for e in root.iter("{http://www.w3.org/2001/XMLSchema}element")]
    assert names[0] == "metadata"
    assert tuple(names[1:]) == FIELDS
    assert len(FIELDS) == 13


def test_metadata_xml_escapes_and_validates_in_sequence_order() -> None:
    hostile = record(
        5,
        tenant_name=HOSTILE,
        user_full_name="Zoë & <Jörg>",
        room_name='Room "A" & B',
        pin="<1234>",
        record_scope="public",
        recorder_id="rec&1",
        end_time=datetime(2013, 1, 16, 9, 0, 0, tzinfo=UTC),
        date_created_string="16.01.2013 08:02",
        locked=True,
    )
    xml = metadata_xml(hostile)
    document = etree.fromstring(xml.encode())
    assert schema().validate(document), schema().error_log
    values = {child.tag: child.text for child in document}
    assert [child.tag for child in document] == list(FIELDS)
    assert values["TenantName"] == HOSTILE.replace("\x07", "")  # XML 1.0 cannot hold BEL
    assert values["UserFullName"] == "Zoë & <Jörg>"
    assert values["DateCreated"] == "1358323356"
    assert values["EndTime"] == "1358326800"
    assert values["Locked"] == "true"


def test_empty_fields_are_left_out_and_the_rest_still_validates() -> None:
    bare = Record(id=9, guid="g-9")
    document = etree.fromstring(metadata_xml(bare).encode())
    assert schema().validate(document)
    assert [child.tag for child in document] == ["RecordingId", "RecordingGuid", "Locked"]


def test_entry_fields_carry_the_reference_and_sort_value() -> None:
    fields = entry_fields(record(63, tags="Lecture, vidyoreplay ,,physics", comments="c"), RULES)
    assert fields == {
        "objectType": "KalturaMediaEntry",
        "mediaType": 1,
        "name": "Recording 63",
        "description": "c",
        "tags": "vidyoreplay,Lecture,physics",
        "referenceId": "guid-0063",
        "partnerSortValue": 63,
        "userId": "alice",
        "categories": "MediaSpace>site>Vidyo",
    }
    owned = entry_fields(record(1, title="  "), SyncRules(tag="t", user_id="svc"))
    assert owned["userId"] == "svc"
    assert owned["name"] == "VidyoReplay recording 1"
    assert "categories" not in owned
    assert tag_words("a", "A,b, B ") == ["a", "b"]


def entry(guid: str, entry_id: str, status: int = 2, **extra: Any) -> KalturaMediaEntry:
    wire = {"id": entry_id, "referenceId": guid, "status": str(status), **extra}
    return KalturaMediaEntry.model_validate(wire)


def test_plan_decides_each_recording_from_kaltura_state() -> None:
    records = [record(n) for n in range(1, 8)]
    found = group_by_reference(
        [
            entry("guid-0002", "0_complete"),
            entry("guid-0003", "0_nocontent", 7),
            entry("guid-0004", "0_importfailed", -2),
            entry("guid-0005", "0_deleted", 3),
            entry("guid-0006", "0_nometadata"),
            entry("guid-0007", "0_replacing", -2, replacementStatus="1"),
        ]
    )
    with_metadata = {"0_complete", "0_nocontent", "0_importfailed", "0_replacing"}
    plan = plan_page(records, found, with_metadata, RULES, set())
    steps = {w.record.id: (w.entry_id, w.steps) for w in plan.work}
    assert steps == {
        1: (None, (Step.ENTRY, Step.CONTENT, Step.METADATA)),
        3: ("0_nocontent", (Step.CONTENT,)),
        4: ("0_importfailed", (Step.CONTENT_AGAIN,)),
        6: ("0_nometadata", (Step.METADATA,)),
    }
    assert (plan.complete, plan.deleted) == (2, 1)


def test_plan_without_a_profile_writes_no_metadata() -> None:
    plan = plan_page([record(1)], {}, set(), SyncRules(tag="t"), set())
    assert plan.work[0].steps == (Step.ENTRY, Step.CONTENT)


def test_the_oldest_live_entry_stands_for_duplicates() -> None:
    found = group_by_reference(
        [
            entry("guid-0001", "0_newer", 7, createdAt=200),
            entry("guid-0001", "0_older", 2, createdAt=100),
            entry("guid-0001", "0_gone", 3, createdAt=50),
        ]
    )
    plan = plan_page([record(1)], found, {"0_older"}, RULES, set())
    assert plan.work == []
    assert plan.complete == 1


def test_a_guid_is_planned_once_per_cycle_and_unusable_ones_are_reported() -> None:
    seen: set[str] = set()
    first = plan_page([record(1), record(1)], {}, set(), RULES, seen)
    again = plan_page([record(1), record(2)], {}, set(), RULES, seen)
    assert [w.record.id for w in first.work] == [1]
    assert first.repeated == 1
    assert [w.record.id for w in again.work] == [2]
    bad = plan_page(
        [record(3, guid="a,b"), record(4, guid=""), record(5, file_link="")], {}, set(), RULES, seen
    )
    assert bad.work == []
    assert [r.id for r, _ in bad.unusable] == [3, 4, 5]


def test_batches_keep_order_and_size() -> None:
    work = [Work(record(n), (Step.METADATA,), f"0_{n}") for n in range(5)]
    assert [[w.entry_id for w in b] for b in batches(work, 2)] == [
        ["0_0", "0_1"],
        ["0_2", "0_3"],
        ["0_4"],
    ]
    with pytest.raises(ValueError, match="at least 1"):
        list(batches(work, 0))


def test_calls_refer_to_the_new_entry_by_index_and_outcomes_check_every_element() -> None:
    batch = [
        Work(record(1), (Step.ENTRY, Step.CONTENT, Step.METADATA)),
        Work(record(2), (Step.CONTENT,), "0_two"),
        Work(record(3), (Step.ENTRY, Step.CONTENT, Step.METADATA)),
        Work(record(4), (Step.METADATA,), "0_four"),
    ]
    calls, slots = build_calls(batch, RULES, lambda r: url_resource(r.file_link, ["X: y"]))
    assert [(c.service, c.action) for c in calls] == [
        ("media", "add"),
        ("media", "addContent"),
        ("metadata_metadata", "add"),
        ("media", "addContent"),
        ("media", "add"),
        ("media", "addContent"),
        ("metadata_metadata", "add"),
        ("metadata_metadata", "add"),
    ]
    assert calls[1].params["entryId"] == "{1:result:id}"
    assert calls[2].params["objectId"] == "{1:result:id}"
    assert calls[3].params["entryId"] == "0_two"
    assert calls[5].params["entryId"] == "{5:result:id}"
    assert calls[1].params["resource"]["urlHeaders"] == [
        {"objectType": "KalturaString", "value": "X: y"}
    ]
    failed = KalturaError(
        "media.add failed: INTERNAL_SERVERL_ERROR: boom", code="INTERNAL_SERVERL_ERROR"
    )
    consequence = KalturaError("MISSING_MANDATORY_PARAMETER")
    results: list[Any] = [
        {"id": "0_one"},
        {"id": "0_one"},
        {"id": 11},
        {"id": "0_two"},
        failed,
        consequence,
        consequence,
        KalturaError("metadata.add failed: INVALID_METADATA_DATA: x"),
    ]
    outcomes = read_outcomes(slots, results)
    assert [(o.entry_id, o.ok) for o in outcomes] == [
        ("0_one", True),
        ("0_two", True),
        (None, False),
        ("0_four", False),
    ]
    assert outcomes[2].failure == (Step.ENTRY, str(failed))
    assert outcomes[3].failure is not None
    assert outcomes[3].failure[0] is Step.METADATA


def test_wire_records_come_as_lists_with_absolute_links_and_no_credentials() -> None:
    one = {"id": 4, "guid": "g", "fileLink": "/replay/files/g.mp4", "framerate": 25}
    assert records_of({"records": one}) == [one]
    assert records_of({"records": [one, one]}) == [one, one]
    assert records_of({"records": None}) == records_of({}) == []
    assert as_list(one) == [one]
    parsed = record_from_wire(one, "https://replay.example.com/")
    assert parsed.file_link == "https://replay.example.com/replay/files/g.mp4"
    leaky = record_from_wire({**one, "fileLink": "http://u:p%40ss@h:8080/f"}, "http://h")
    assert leaky.file_link == "http://h:8080/f"
    assert strip_credentials("http://h/f") == "http://h/f"
