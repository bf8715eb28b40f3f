"""The VidyoReplay client against the SOAP stand-in: paging, records, faults, auth, the wire."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
import zeep
from lxml import etree

from recstore.clients.vidyo import (
    SERVICE_PATH,
    WSDL_PATH,
    VidyoClient,
    VidyoError,
)
from recstore.common.errors import Unauthorised
from recstore.common.retry import RetryPolicy
from recstore.settings import VidyoSettings
from tests.vidyo_helpers import FAST, VidyoServer, recording, vidyo_stand_in

SOAP11 = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
    xmlns:ns="http://replay.vidyo.com/apiservice">
  <soapenv:Body>{payload}</soapenv:Body>
</soapenv:Envelope>"""

SOAP11_SEARCH = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xmlns:ns="http://replay.vidyo.com/apiservice">
  <soapenv:Body>
    <ns:RecordsSearchRequest>
      <ns:tenantName xsi:nil="true"/><ns:roomFilter xsi:nil="true"/>
      <ns:usernameFilter xsi:nil="true"/><ns:query xsi:nil="true"/>
      <ns:recordScope>all</ns:recordScope><ns:sortBy>date</ns:sortBy><ns:dir>ASC</ns:dir>
      <ns:limit>{limit}</ns:limit><ns:start>0</ns:start><ns:webcast xsi:nil="true"/>
    </ns:RecordsSearchRequest>
  </soapenv:Body>
</soapenv:Envelope>"""


def payload_of(envelope: str) -> tuple[str, dict[str, str | None]]:
    """A SOAP answer's payload: its element's local name and its members' texts."""
    body = etree.fromstring(envelope.encode())[0]
    payload = body[0]
    return etree.QName(payload).localname, {etree.QName(c).localname: c.text for c in payload}


@pytest.fixture
async def vidyo(tmp_path: Path) -> AsyncIterator[VidyoServer]:
    async with vidyo_stand_in(tmp_path / "vidyo") as server:
        yield server


async def test_pages_walk_every_record_oldest_first(vidyo: VidyoServer) -> None:
    order = [4, 1, 5, 3, 2]
    await vidyo.seed([recording(n, dateCreated=1_400_000_000 + n * 60) for n in order])
    async with VidyoClient(vidyo.settings(pageSize=2), FAST) as client:
        pages = [[r.id for r in page] async for page in client.pages()]
        first = await client.search(limit=2)
    assert pages == [[1, 2], [3, 4], [5]]
    assert (first.search_count, first.all_count) == (5, 5)
    state = await vidyo.snapshot()
    assert state["calls"]["RecordsSearchRequest"] == 4


async def test_every_record_field_comes_through(vidyo: VidyoServer) -> None:
    seeded = recording(
        63,
        title='Q&A <intro> "quoted" — Zürich',
        comments="line one\nline two & more",
        tags="a,b",
        pin="4711",
        recordScope="organizational",
        webcast=True,
        locked=True,
        externalPlaybackLink="https://replay.example.com/play/63",
    )
    [created] = await vidyo.seed([seeded])
    async with VidyoClient(vidyo.settings(), FAST) as client:
        found = await client.record(63)
        missing = await client.record(64)
        one = await client.search(limit=200, query="zürich")
    assert missing is None
    assert found is not None
    assert one.records == [found]  # a single result is still a list
    assert found.id == 63
    assert found.guid == seeded["guid"]
    assert (found.tenant_name, found.user_name, found.user_full_name) == (
        "Default",
        "alice",
        "Alice Example",
    )
    assert found.date_created == datetime.fromtimestamp(seeded["dateCreated"], UTC)
    assert found.end_time == datetime.fromtimestamp(seeded["endTime"], UTC)
    assert found.date_created_string == "recording 63 start"
    assert (found.duration, found.resolution, found.framerate) == ("00:30:00", "1280x720", 30)
    assert (found.pin, found.record_scope, found.title) == (
        "4711",
        "organizational",
        seeded["title"],
    )
    assert (found.room_name, found.recorder_id, found.webcast) == (
        "Lecture Hall",
        "recorder-1",
        True,
    )
    assert (found.tags, found.comments, found.locked) == ("a,b", seeded["comments"], True)
    assert found.external_playback_link == "https://replay.example.com/play/63"
    assert found.file_link == created["fileLink"]


async def test_nil_fields_and_old_servers_relative_links(vidyo: VidyoServer) -> None:
    [created] = await vidyo.seed(
        [recording(7, tags=None, comments=None, endTime=None, relativeLink=True)]
    )
    assert created["fileLink"].startswith("/replay/files/")
    async with VidyoClient(vidyo.settings(), FAST) as client:
        found = await client.record(7)
    assert found is not None
    assert (found.tags, found.comments, found.end_time, found.pin) == (None, None, None, None)
    assert found.external_playback_link is None
    assert found.file_link == vidyo.url + created["fileLink"]


async def test_search_filters_and_sorting(vidyo: VidyoServer) -> None:
    await vidyo.seed(
        [
            recording(1, title="Beta", roomName="Room A", userName="bob"),
            recording(2, title="alpha", roomName="Room B", recordScope="private"),
            recording(3, title="Gamma", roomName="Room A", webcast=True),
        ]
    )
    async with VidyoClient(vidyo.settings(), FAST) as client:
        by_title = await client.search(sort_by="title", direction="DESC")
        in_room = await client.search(room="room a")
        bobs = await client.search(user="bob")
        private = await client.search(scope="private")
        webcasts = await client.search(webcast=True)
    assert [r.id for r in by_title.records] == [3, 1, 2]
    assert [r.id for r in in_room.records] == [1, 3]
    assert [r.id for r in bobs.records] == [1]
    assert [r.id for r in private.records] == [2]
    assert [r.id for r in webcasts.records] == [3]


async def test_a_server_that_ignores_start_does_not_loop(vidyo: VidyoServer) -> None:
    await vidyo.seed([recording(n) for n in range(1, 6)])
    await vidyo.configure(ignoreStart=True)
    async with VidyoClient(vidyo.settings(pageSize=2), FAST) as client:
        pages = [[r.id for r in page] async for page in client.pages()]
    assert pages == [[1, 2]]


async def test_limit_is_at_most_200_on_both_sides(vidyo: VidyoServer) -> None:
    """The client asks for no more than 200 (the seed: "VidyoReplay's API max limit"); the
    WSDL's classes show no bound, so the stand-in does not refuse 201 but answers 200."""
    await vidyo.seed([recording(n, text="x") for n in range(1, 202)])
    async with VidyoClient(vidyo.settings(), FAST) as client:
        with pytest.raises(ValueError, match="between 1 and 200"):
            await client.search(limit=201)
    login = {"Authorization": aiohttp.encode_basic_auth(vidyo.user, vidyo.password)}
    async with (
        aiohttp.ClientSession(headers=login) as session,
        session.post(
            vidyo.url + SERVICE_PATH,
            data=SOAP11_SEARCH.format(limit=201),
            headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": "urn:RecordsSearch"},
        ) as answer,
    ):
        body = await answer.text()
    assert answer.status == 200
    assert body.count("<ns:records>") == 200
    assert "<ns:searchCount>201</ns:searchCount>" in body


#: Answers of servers whose WSDL is not ours: each must read as the WSDL's answer does.
SHAPES = {
    "an extra element": {"extra": {"storageLocation": "/var/replay/store"}},
    "missing optional ones": {"omit": ["endTime", "pin", "tags", "comments"]},
    "another order": {"reverse": True},
}


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
async def test_answers_are_read_leniently(vidyo: VidyoServer, shape: dict[str, Any]) -> None:
    """As the seed's PHP SoapClient: unknown members ignored, missing ones empty, any order."""
    await vidyo.seed([recording(n, pin="4711") for n in (1, 2, 3)])
    async with VidyoClient(vidyo.settings(pageSize=2), FAST) as client:
        expected = [r async for page in client.pages() for r in page]
        one = await client.record(2)
        await vidyo.configure(answerShape=shape)
        got = [r async for page in client.pages() for r in page]
        again = await client.record(2)
        count = (await client.search()).search_count
    omitted = {
        "endTime": "end_time",
        "pin": "pin",
        "tags": "tags",
        "comments": "comments",
    }
    cleared = {omitted[name]: None for name in shape.get("omit", [])}
    assert got == [dataclasses.replace(r, **cleared) for r in expected]
    assert one is not None
    assert again == dataclasses.replace(one, **cleared)
    assert count == 3
    assert [r.id for r in got] == [1, 2, 3]


async def test_a_search_sends_record_scope_nil_as_the_seed_did(vidyo: VidyoServer) -> None:
    """The seed's RecordsSearchRequest(null, null, null, null, null, date, ASC, 100, start,
    null): every filter nil, recordScope included."""
    await vidyo.seed([recording(1)])
    sent: list[bytes] = []

    async def keep(request: httpx.Request) -> None:
        sent.append(request.content)

    async with VidyoClient(vidyo.settings(), FAST) as client:
        client._http.event_hooks["request"].append(keep)  # what goes on the wire
        assert (await client.search()).records[0].id == 1
    [body] = sent
    request = etree.fromstring(body).find(".//{http://replay.vidyo.com/apiservice}recordScope")
    assert request is not None
    assert request.get("{http://www.w3.org/2001/XMLSchema-instance}nil") == "true"


async def test_update_and_delete_answer_their_own_response_elements(vidyo: VidyoServer) -> None:
    """UpdateRecordResponse/DeleteRecordResponse with OK (the generated classes); an
    UpdateRecordRequest with ``locked`` (no source shows it) is refused."""
    await vidyo.seed([recording(1), recording(2)])
    login = {"Authorization": aiohttp.encode_basic_auth(vidyo.user, vidyo.password)}
    answers = {}
    async with aiohttp.ClientSession(headers=login) as session:
        for name, payload in (
            (
                "update",
                "<ns:UpdateRecordRequest><ns:id>1</ns:id><ns:title>New</ns:title>"
                "</ns:UpdateRecordRequest>",
            ),
            (
                "locked",
                "<ns:UpdateRecordRequest><ns:id>1</ns:id><ns:locked>true</ns:locked>"
                "</ns:UpdateRecordRequest>",
            ),
            ("delete", "<ns:DeleteRecordRequest><ns:id>2</ns:id></ns:DeleteRecordRequest>"),
        ):
            async with session.post(
                vidyo.url + SERVICE_PATH,
                data=SOAP11.format(payload=payload),
                headers={"Content-Type": "text/xml; charset=utf-8"},
            ) as answer:
                answers[name] = (answer.status, await answer.text())
    assert answers["update"][0] == 200
    assert payload_of(answers["update"][1]) == ("UpdateRecordResponse", {"OK": "OK"})
    assert answers["locked"][0] == 500
    assert "<faultcode>soap:Client</faultcode>" in answers["locked"][1]
    assert answers["delete"][0] == 200
    assert payload_of(answers["delete"][1]) == ("DeleteRecordResponse", {"OK": "OK"})
    state = await vidyo.snapshot()
    assert [(r["id"], r["title"]) for r in state["records"]] == [(1, "New")]


async def test_soap_11_envelopes_are_answered_in_11(vidyo: VidyoServer) -> None:
    await vidyo.seed([recording(1)])
    login = {"Authorization": aiohttp.encode_basic_auth(vidyo.user, vidyo.password)}
    async with (
        aiohttp.ClientSession(headers=login) as session,
        session.post(
            vidyo.url + SERVICE_PATH,
            data=SOAP11_SEARCH.format(limit=10),
            headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": "urn:RecordsSearch"},
        ) as answer,
    ):
        body = await answer.text()
    assert answer.status == 200
    assert answer.content_type == "text/xml"
    assert "http://schemas.xmlsoap.org/soap/envelope/" in body
    assert "<ns:searchCount>1</ns:searchCount>" in body


async def test_wsdl_is_served_with_the_servers_address(vidyo: VidyoServer) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(vidyo.url + SERVICE_PATH + "?wsdl") as answer,
    ):
        text = await answer.read()
    assert answer.status == 200
    wsdl = vidyo.server.data_dir / "served.wsdl"
    wsdl.write_bytes(text)
    client = zeep.Client(str(wsdl))
    port = client.service._binding_options["address"]
    assert port == vidyo.url + SERVICE_PATH
    assert set(client.wsdl.services["VidyoReplayContentManagementService"].ports) == {
        "VidyoReplayContentManagementServiceSoap12Port",
        "VidyoReplayContentManagementServiceSoap11Port",
    }


async def test_recording_files_need_the_login(vidyo: VidyoServer) -> None:
    [created] = await vidyo.seed([recording(1, text="the recording")])
    async with aiohttp.ClientSession() as session:
        async with session.get(created["fileLink"]) as anonymous:
            assert anonymous.status == 401
        login = {"Authorization": aiohttp.encode_basic_auth(vidyo.user, vidyo.password)}
        async with session.get(created["fileLink"], headers=login) as answer:
            assert answer.status == 200
            assert await answer.read() == b"the recording"
        headers = {**login, "Range": "bytes=4-12"}
        async with session.get(created["fileLink"], headers=headers) as part:
            assert part.status == 206
            assert await part.read() == b"recording"
    assert (await vidyo.snapshot())["downloads"] == {created["guid"]: 2}


async def test_a_wrong_password_is_a_permanent_401(vidyo: VidyoServer) -> None:
    settings = VidyoSettings(url=vidyo.url, user=vidyo.user, password="not-the-password-x1")
    async with VidyoClient(settings, FAST) as client:
        with pytest.raises(VidyoError) as caught:
            await client.search()
    assert (caught.value.status, caught.value.transient) == (401, False)
    assert "not-the-password-x1" not in str(caught.value)
    assert (await vidyo.snapshot())["calls"] == {}


async def test_soap_faults_become_typed_errors_without_retries(vidyo: VidyoServer) -> None:
    await vidyo.seed([recording(1)], users=[{"name": "viewer", "password": "viewer-pass"}])
    await vidyo.configure(soapFault={"fault": "GeneralFault", "message": "index busy", "count": 1})
    async with VidyoClient(vidyo.settings(), FAST) as client:
        with pytest.raises(VidyoError) as caught:
            await client.search()
        assert (caught.value.code, caught.value.transient) == ("GeneralFault", False)
        assert "index busy" in str(caught.value)
        assert len((await client.search()).records) == 1  # the fault was one-off
    viewer = VidyoSettings(url=vidyo.url, user="viewer", password="viewer-pass")
    async with VidyoClient(viewer, FAST) as client:
        with pytest.raises(VidyoError) as denied:
            await client.record(1)
    assert denied.value.code == "AccessViolationFault"
    assert (await vidyo.snapshot())["calls"] == {"RecordsSearchRequest": 2, "RecordsByIdRequest": 1}


async def test_refusals_are_raised_as_unauthorised_and_other_faults_are_not(
    vidyo: VidyoServer,
) -> None:
    """A wrong password (HTTP 401) and a user the service refuses (``AccessViolationFault``)
    are one kind to the caller; a fault of the server (``GeneralFault``) is not that kind."""
    await vidyo.seed([recording(1)], users=[{"name": "viewer", "password": "viewer-pass"}])
    wrong = VidyoSettings(url=vidyo.url, user=vidyo.user, password="not-the-password-x2")
    async with VidyoClient(wrong, FAST) as client:
        with pytest.raises(Unauthorised) as refused:
            await client.search()
    assert isinstance(refused.value, VidyoError)
    assert refused.value.status == 401
    viewer = VidyoSettings(url=vidyo.url, user="viewer", password="viewer-pass")
    async with VidyoClient(viewer, FAST) as client:
        with pytest.raises(Unauthorised) as denied:
            await client.record(1)
    assert isinstance(denied.value, VidyoError)
    assert denied.value.code == "AccessViolationFault"
    await vidyo.configure(soapFault={"fault": "GeneralFault", "message": "busy", "count": 1})
    async with VidyoClient(vidyo.settings(), FAST) as client:
        with pytest.raises(VidyoError) as failed:
            await client.search()
    assert not isinstance(failed.value, Unauthorised)


async def test_5xx_and_drops_are_retried_and_a_dead_server_is_transient(
    vidyo: VidyoServer,
) -> None:
    await vidyo.seed([recording(1)])
    await vidyo.faults(error_rate=1, error_status=503, count=2, path_pattern="services")
    async with VidyoClient(vidyo.settings(), FAST) as client:
        assert len((await client.search()).records) == 1
    await vidyo.faults(drop_rate=1, count=1, path_pattern="services")
    async with VidyoClient(vidyo.settings(), FAST) as client:
        assert len((await client.search()).records) == 1
    dead = VidyoSettings(url="http://127.0.0.1:9", user="u", password="p", timeout=2)
    async with VidyoClient(dead, RetryPolicy(attempts=2, base_delay=0.01)) as client:
        with pytest.raises(VidyoError) as caught:
            await client.search()
    assert caught.value.transient
    assert caught.value.status is None


async def test_the_password_appears_in_no_log_line(
    vidyo: VidyoServer, caplog: pytest.LogCaptureFixture
) -> None:
    await vidyo.seed([recording(1)])
    with caplog.at_level(logging.DEBUG):
        async with VidyoClient(vidyo.settings(), FAST) as client:
            await client.search()
            await client.record(1)
    assert caplog.records  # zeep and httpx did log the exchange
    assert vidyo.password not in caplog.text


#: The members of each type, in order, as the client classes that seed 000 generated from the
#: real WSDL declare them (kaltura/VidyoReplayToKaltura, vidyomanage/<type>.php; ``Exception``
#: is ExceptionCustom.php), and the enumerations' values (recordScopeFilter.php...).
GENERATED_TYPES = {
    "Record": [
        "id", "guid", "tenantName", "userName", "userFullName", "dateCreated",
        "dateCreatedString", "endTime", "duration", "resolution", "framerate", "pin",
        "recordScope", "title", "roomName", "fileLink", "recorderId", "webcast", "tags",
        "comments", "locked",
    ],
    "RecordsSearchRequest": [
        "tenantName", "roomFilter", "usernameFilter", "query", "recordScope", "sortBy", "dir",
        "limit", "start", "webcast",
    ],
    "RecordsSearchResponse": [
        "allVideosCount", "searchCount", "myVideosCount", "webcastCount", "newCount",
        "privateCount", "organizationalCount", "publicCount", "records",
    ],
    "RecordsByIdRequest": ["id"],
    "RecordsResponse": ["records"],
    "UpdateRecordRequest": ["id", "title", "comments", "tags", "recordScope", "pin"],
    "DeleteRecordRequest": ["id"],
    "UpdateRecordResponse": ["OK"],
    "DeleteRecordResponse": ["OK"],
    "GeneralFault": ["GeneralFault"],
    "AccessViolationFault": ["AccessViolationFault"],
    "Exception": ["Exception"],
}  # fmt: skip
GENERATED_ENUMS = {
    "recordScopeFilter": ["all", "allUser", "new", "private", "organizational", "public"],
    "recordScopeUpdate": ["new", "private", "organizational", "public"],
    "sortBy": ["date", "title", "room"],
    "sortDirection": ["ASC", "DESC"],
    "OK": ["OK"],
}
#: What the WSDL has beyond the generated classes, and its source.
BEYOND_GENERATED = {"Record": ["externalPlaybackLink"]}  # docs/design/vidyoreplay.md


def test_the_wsdl_declares_what_the_seeds_generated_classes_do() -> None:
    """Every type, member and order of the WSDL is the generated classes' (plus the one member
    the design notes add): nothing invented (an UpdateRecordRequest.locked, an OkResponse, a
    facet on limit), nothing left out."""
    xsd = "{http://www.w3.org/2001/XMLSchema}"
    schema = etree.parse(str(WSDL_PATH)).getroot().find(f".//{xsd}schema")
    assert schema is not None
    types: dict[str, list[str]] = {}
    for node in schema:
        if node.tag in (f"{xsd}element", f"{xsd}complexType"):
            sequence = node.find(f".//{xsd}sequence")
            children = [] if sequence is None else sequence.iterchildren(f"{xsd}element")
            members = [e.get("name") for e in children]
            types[node.get("name")] = members
    expected = {
        name: members + BEYOND_GENERATED.get(name, []) for name, members in GENERATED_TYPES.items()
    }
    assert types == expected
    enums = {
        node.get("name"): [v.get("value") for v in node.iter(f"{xsd}enumeration")]
        for node in schema.iter(f"{xsd}simpleType")
    }
    assert enums == GENERATED_ENUMS
    facets = [n.tag for n in schema.iter(f"{xsd}minInclusive", f"{xsd}maxInclusive")]
    assert facets == []
    wsdl = "{http://schemas.xmlsoap.org/wsdl/}"
    outputs = {
        op.get("name"): op.find(f"{wsdl}output").get("message")
        for op in etree.parse(str(WSDL_PATH)).getroot().iter(f"{wsdl}operation")
        if op.find(f"{wsdl}output") is not None and op.find(f"{wsdl}output").get("message")
    }
    assert outputs == {
        "RecordsSearch": "ns:RecordsSearchResponse",
        "RecordsById": "ns:RecordsResponse",
        "UpdateRecord": "ns:UpdateRecordResponse",
        "DeleteRecord": "ns:DeleteRecordResponse",
    }
