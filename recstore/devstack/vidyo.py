"""A VidyoReplay stand-in: the content-management SOAP service and the recording files.

It serves the project's WSDL (the client's own file, ``...?wsdl``, with this server's address)
and answers its operations at ``/replay/services/VidyoReplayContentManagementService``: SOAP
1.2 envelopes (``application/soap+xml``, what zeep sends) and 1.1 (``text/xml``), answered in
the version asked. Requests and answers are validated against the WSDL's schema, so a client
that puts an element out of order gets the ``Sender`` fault a strict server gives; a page
holds at most 200 records whatever ``limit`` asks (seed 000: "VidyoReplay's API max limit").
HTTP Basic auth guards the service and the files; a non-admin user gets
``AccessViolationFault``. Faults carry the detail the generated classes show
(``<GeneralFault><GeneralFault><Exception>message</Exception>...``) and the message as the
reason. ``UpdateRecord`` and ``DeleteRecord`` answer ``<OK>OK</OK>`` in their own response
elements.

Operations: ``RecordsSearch`` (filters ``tenantName``, ``roomFilter``, ``usernameFilter``,
``query``, ``recordScope``, ``webcast``; ``sortBy`` date|title|room, ``dir``, ``limit``,
``start``), ``RecordsById``, ``UpdateRecord``, ``DeleteRecord``. Files at
``GET /replay/files/<guid>.mp4`` (Range requests answered), counted per GUID in the state.

Admin routes: ``POST /_devstack/seed``, ``GET /_devstack/state``, ``POST /_devstack/settings``
and ``GET/POST /_devstack/faults`` (see :mod:`recstore.devstack.faults`). Settings:
``{"soapFault": {"fault": "GeneralFault" | "AccessViolationFault", "message": "...",
"count": N | null} | null, "ignoreStart": bool, "answerShape": {"extra": {"name": "text"},
"omit": ["pin", ...], "reverse": bool} | null}`` (``ignoreStart`` mimics servers whose paging
ignores ``start``; ``answerShape`` answers as a server whose WSDL differs from ours: the extra
members in every answer and every record, the omitted ``Record`` members left out, the
members in reverse order; such answers are not checked against the WSDL).

Seed document (``recstore devstack seed vidyo --file F``)::

    {"reset": false,                       # true: forget every record first
     "users": [{"name": "viewer", "password": "...", "admin": false}],
     "records": [{"id": 63,                 # generated when missing
                  "guid": "f7b86816-...",   # generated when missing
                  "tenantName": "Default", "userName": "alice",
                  "userFullName": "Alice Example",
                  "dateCreated": "2013-01-16T08:02:36Z" | 1358323356,
                  "dateCreatedString": "...",          # default: from dateCreated
                  "endTime": "..." | null, "duration": "00:42:17",
                  "resolution": "1280x720", "framerate": 30, "pin": null,
                  "recordScope": "public", "title": "...", "roomName": "...",
                  "recorderId": "recorder-1", "webcast": false,
                  "tags": "a,b" | null, "comments": "..." | null, "locked": false,
                  "externalPlaybackLink": null,
                  "fileLink": "..."?,       # default: this server's /replay/files/<guid>.mp4
                  "relativeLink": false,    # true: the link without scheme and host
                  "content": "<base64>" | "text": "..." | "size": 65536}]}

A GUID seeded again replaces its record. The answer lists each record's ``id``, ``guid`` and
``fileLink``. The state file names ``vidyo_url`` (the server base), ``vidyo_user`` and
``vidyo_password`` (an admin).
"""

from __future__ import annotations

import base64
import copy
import random
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import BasicAuth, hdrs, web
from lxml import etree

from recstore.clients.vidyo import NAMESPACE, SERVICE_PATH, WSDL_PATH
from recstore.devstack.faults import ADMIN_PREFIX, FaultInjector

USER = "replay-admin"
PASSWORD = "devstack-vidyo-password"  # noqa: S105 (a stand-in's published test secret)
FILES_PATH = "/replay/files/"
DEFAULT_SIZE = 64 * 1024
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
XSD_NS = "http://www.w3.org/2001/XMLSchema"
_CONTENT_TYPES = {SOAP11: "text/xml", SOAP12: "application/soap+xml"}
_FAULTS = ("GeneralFault", "AccessViolationFault")
#: RecordsSearch answers no more records than this (seed 000, syncv2k.php's comments).
MAX_PAGE = 200


def _q(name: str) -> str:
    return f"{{{NAMESPACE}}}{name}"


def _parser() -> Any:
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


class SoapFault(Exception):
    """Answered as a SOAP fault: ``Sender`` (the request is wrong) or ``Receiver`` + detail."""

    def __init__(self, message: str, *, detail: str | None = None, sender: bool = False):
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.sender = sender


@dataclass
class StoredRecord:
    """One recording, in the WSDL's ``Record`` field order (then the stand-in's own fields).

    The attributes keep the wire's camelCase names, so a seed reads like the spec.
    """

    id: int
    guid: str
    tenantName: str = "Default"
    userName: str = ""
    userFullName: str = ""
    dateCreated: datetime = field(default_factory=lambda: datetime.now(UTC))
    dateCreatedString: str = ""
    endTime: datetime | None = None
    duration: str = "00:01:00"
    resolution: str = "1280x720"
    framerate: int = 30
    pin: str | None = None
    recordScope: str = "public"
    title: str = ""
    roomName: str = ""
    fileLink: str | None = None  # None: this server's link, made when answered
    recorderId: str = "recorder-1"
    webcast: bool = False
    tags: str | None = None
    comments: str | None = None
    locked: bool = False
    externalPlaybackLink: str | None = None
    # -- the stand-in's own --
    relative_link: bool = False
    path: Path | None = None


#: The ``Record`` elements in sequence order.
RECORD_FIELDS = [f.name for f in fields(StoredRecord)][:22]
_NILLABLE = {"endTime", "pin", "tags", "comments", "externalPlaybackLink"}


def _when(value: Any, name: str) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise ValueError(f"{name}: an ISO 8601 time or unix seconds, not {value!r}")


def _wire_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class VidyoStandIn:
    name = "vidyo"

    def __init__(self, data_dir: Path, *, user: str = USER, password: str = PASSWORD) -> None:
        self.data_dir = data_dir
        self.files_dir = data_dir / "files"
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self.users: dict[str, tuple[str, bool]] = {user: (password, True)}
        self.admin = (user, password)
        self.records: dict[int, StoredRecord] = {}
        self.downloads: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.soap_fault: dict[str, Any] | None = None
        self.ignore_start = False
        self.answer_shape: dict[str, Any] | None = None
        self.faults = FaultInjector()
        self.base_url = ""
        wsdl = etree.parse(str(WSDL_PATH), _parser())
        self._wsdl = wsdl
        schema = wsdl.getroot().find(f"{{{WSDL_NS}}}types/{{{XSD_NS}}}schema")
        self.schema = etree.XMLSchema(copy.deepcopy(schema))
        self._wsdl_text = b""

    # -- contract with the dev stack --

    def make_app(self) -> web.Application:
        app = web.Application()
        self.faults.install(app)
        app.router.add_get(SERVICE_PATH, self.wsdl)
        app.router.add_post(SERVICE_PATH, self.soap)
        app.router.add_get(FILES_PATH + "{name}", self.download)
        app.router.add_post(ADMIN_PREFIX + "seed", self.seed)
        app.router.add_get(ADMIN_PREFIX + "state", self.state)
        app.router.add_post(ADMIN_PREFIX + "settings", self.settings)
        return app

    def set_base_url(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        document = copy.deepcopy(self._wsdl)
        for address in document.iter():
            if isinstance(address.tag, str) and address.tag.endswith("}address"):
                address.set("location", self.base_url + SERVICE_PATH)
        self._wsdl_text = etree.tostring(document, xml_declaration=True, encoding="UTF-8")

    def state_entries(self) -> dict[str, Any]:
        user, password = self.admin
        return {"vidyo_url": self.base_url, "vidyo_user": user, "vidyo_password": password}

    # -- the service --

    async def wsdl(self, request: web.Request) -> web.Response:
        if not any(key.lower() == "wsdl" for key in request.query):
            raise web.HTTPMethodNotAllowed("GET", ["POST"], text="POST SOAP envelopes here")
        return web.Response(body=self._wsdl_text, content_type="text/xml", charset="utf-8")

    def _login(self, request: web.Request) -> tuple[str, bool]:
        """The authenticated user and whether it is an admin; 401 otherwise."""
        try:
            given = BasicAuth.decode(request.headers.get(hdrs.AUTHORIZATION, ""), "utf-8")
        except ValueError:
            given = None
        known = self.users.get(given.login) if given is not None else None
        if given is None or known is None or known[0] != given.password:
            raise web.HTTPUnauthorized(
                headers={"WWW-Authenticate": 'Basic realm="VidyoReplay"'}, text="Unauthorized"
            )
        return given.login, known[1]

    async def soap(self, request: web.Request) -> web.Response:
        user, admin = self._login(request)
        version = SOAP12 if "soap+xml" in request.content_type else SOAP11
        try:
            envelope = etree.fromstring(await request.read(), _parser())
        except etree.XMLSyntaxError as exc:
            return self._fault(version, SoapFault(f"malformed XML: {exc}", sender=True))
        if envelope.tag not in (f"{{{SOAP11}}}Envelope", f"{{{SOAP12}}}Envelope"):
            return self._fault(version, SoapFault("not a SOAP envelope", sender=True))
        version = envelope.tag[1:].split("}")[0]
        body = envelope.find(f"{{{version}}}Body")
        payload = None if body is None else next(iter(body.iterchildren(tag=etree.Element)), None)
        try:
            if payload is None:
                raise SoapFault("the Body holds no request", sender=True)
            answer = self._dispatch(payload, user, admin)
        except SoapFault as fault:
            return self._fault(version, fault)
        if self.answer_shape is not None:
            _reshape(answer, self.answer_shape)
        elif not self.schema.validate(answer):  # a stand-in bug, not the client's
            return self._fault(version, SoapFault(f"bad answer: {self.schema.error_log}"))
        return self._envelope(version, answer, 200)

    def _dispatch(self, payload: Any, user: str, admin: bool) -> Any:
        handlers: dict[str, Callable[[dict[str, Any], str], Any]] = {
            _q("RecordsSearchRequest"): self._search,
            _q("RecordsByIdRequest"): self._by_id,
            _q("UpdateRecordRequest"): self._update,
            _q("DeleteRecordRequest"): self._delete,
        }
        handler = handlers.get(payload.tag)
        if handler is None:
            raise SoapFault(f"no operation takes {payload.tag}", sender=True)
        if not self.schema.validate(payload):
            raise SoapFault(f"invalid request: {self.schema.error_log.last_error}", sender=True)
        self.calls[etree.QName(payload).localname] += 1
        planned = self.soap_fault
        if planned is not None:
            left = planned.get("count")
            if left is None or left > 0:
                if left is not None:
                    planned["count"] = left - 1
                raise SoapFault(
                    str(planned.get("message") or "injected fault"),
                    detail=str(planned.get("fault") or "GeneralFault"),
                )
        if not admin:
            raise SoapFault(f"user {user} may not use this service", detail=_FAULTS[1])
        return handler(_values(payload), user)

    # -- operations --

    def _search(self, args: dict[str, Any], user: str) -> Any:
        found = list(self.records.values())
        tenant, room, who = (
            args.get("tenantName"),
            args.get("roomFilter"),
            args.get("usernameFilter"),
        )
        query, scope = args.get("query"), args.get("recordScope") or "all"
        if tenant:
            found = [r for r in found if r.tenantName == tenant]
        if room:
            found = [r for r in found if room.casefold() in r.roomName.casefold()]
        if who:
            found = [r for r in found if r.userName.casefold() == who.casefold()]
        if query:
            needle = query.casefold()
            found = [
                r
                for r in found
                if any(needle in (v or "").casefold() for v in (r.title, r.comments, r.tags))
            ]
        found = [r for r in found if _in_scope(r, scope, user)]
        if args.get("webcast") == "true":
            found = [r for r in found if r.webcast]
        keys: dict[str, Callable[[StoredRecord], Any]] = {
            "date": lambda r: (r.dateCreated, r.id),
            "title": lambda r: (r.title.casefold(), r.id),
            "room": lambda r: (r.roomName.casefold(), r.id),
        }
        found.sort(key=keys[args.get("sortBy") or "date"], reverse=args.get("dir") == "DESC")
        limit = min(int(args.get("limit") or MAX_PAGE), MAX_PAGE)
        start = 0 if self.ignore_start else max(int(args.get("start") or 0), 0)
        every = list(self.records.values())
        answer = etree.Element(_q("RecordsSearchResponse"), nsmap={"ns": NAMESPACE})
        counts = {
            "allVideosCount": len(every),
            "searchCount": len(found),
            "myVideosCount": sum(r.userName == user for r in every),
            "webcastCount": sum(r.webcast for r in every),
            "newCount": sum(_in_scope(r, "new", user) for r in every),
            "privateCount": sum(r.recordScope == "private" for r in every),
            "organizationalCount": sum(r.recordScope == "organizational" for r in every),
            "publicCount": sum(r.recordScope == "public" for r in every),
        }
        for name, count in counts.items():
            etree.SubElement(answer, _q(name)).text = str(count)
        for record in found[start : start + limit]:
            self._record_element(answer, record)
        return answer

    def _by_id(self, args: dict[str, Any], user: str) -> Any:
        answer = etree.Element(_q("RecordsResponse"), nsmap={"ns": NAMESPACE})
        record = self.records.get(int(args["id"]))
        if record is not None:
            self._record_element(answer, record)
        return answer

    def _update(self, args: dict[str, Any], user: str) -> Any:
        record = self.records.get(int(args["id"]))
        if record is None:
            raise SoapFault(f"no record {args['id']}", detail=_FAULTS[0])
        for name in ("title", "comments", "tags", "recordScope", "pin"):
            if name in args:
                setattr(record, name, args[name])
        return _ok("UpdateRecordResponse")

    def _delete(self, args: dict[str, Any], user: str) -> Any:
        if self.records.pop(int(args["id"]), None) is None:
            raise SoapFault(f"no record {args['id']}", detail=_FAULTS[0])
        return _ok("DeleteRecordResponse")

    def file_link(self, record: StoredRecord) -> str:
        if record.fileLink is not None:
            return record.fileLink
        path = f"{FILES_PATH}{record.guid}.mp4"
        return path if record.relative_link else self.base_url + path

    def _record_element(self, parent: Any, record: StoredRecord) -> None:
        element = etree.SubElement(parent, _q("records"))
        for name in RECORD_FIELDS:
            value = self.file_link(record) if name == "fileLink" else getattr(record, name)
            child = etree.SubElement(element, _q(name))
            if value is None:
                child.set(f"{{{XSI}}}nil", "true")
            elif isinstance(value, bool):
                child.text = "true" if value else "false"
            elif isinstance(value, datetime):
                child.text = _wire_time(value)
            else:
                child.text = str(value)
        if record.externalPlaybackLink is None:  # older servers leave the element out
            element.remove(element[-1])

    # -- envelopes --

    def _envelope(self, version: str, payload: Any, status: int) -> web.Response:
        envelope = etree.Element(f"{{{version}}}Envelope", nsmap={"soap": version})
        etree.SubElement(envelope, f"{{{version}}}Body").append(payload)
        body = etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
        return web.Response(
            body=body, status=status, content_type=_CONTENT_TYPES[version], charset="utf-8"
        )

    def _fault(self, version: str, fault: SoapFault) -> web.Response:
        s = f"{{{version}}}"
        element = etree.Element(s + "Fault")
        if version == SOAP12:
            code = etree.SubElement(etree.SubElement(element, s + "Code"), s + "Value")
            code.text = "soap:Sender" if fault.sender else "soap:Receiver"
            reason = etree.SubElement(etree.SubElement(element, s + "Reason"), s + "Text")
            reason.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
            reason.text = fault.message
            detail_parent = etree.SubElement(element, s + "Detail") if fault.detail else None
        else:
            etree.SubElement(element, "faultcode").text = (
                "soap:Client" if fault.sender else "soap:Server"
            )
            etree.SubElement(element, "faultstring").text = fault.message
            detail_parent = etree.SubElement(element, "detail") if fault.detail else None
        if detail_parent is not None and fault.detail:
            detail = etree.SubElement(detail_parent, _q(fault.detail), nsmap={"ns": NAMESPACE})
            inner = etree.SubElement(detail, _q(fault.detail))
            etree.SubElement(inner, _q("Exception")).text = fault.message
        return self._envelope(version, element, 500)

    # -- files --

    async def download(self, request: web.Request) -> web.StreamResponse:
        self._login(request)
        guid = request.match_info["name"].removesuffix(".mp4")
        record = next((r for r in self.records.values() if r.guid == guid), None)
        if record is None or record.path is None or not record.path.exists():
            raise web.HTTPNotFound()
        self.downloads[guid] += 1
        return web.FileResponse(record.path, headers={"Content-Type": "video/mp4"})

    # -- admin routes --

    async def seed(self, request: web.Request) -> web.Response:
        try:
            document = await request.json()
            if not isinstance(document, dict):
                raise ValueError("the seed must be a JSON object")
            if document.get("reset"):
                self.records.clear()
            for spec in document.get("users", []):
                self.users[str(spec["name"])] = (str(spec["password"]), bool(spec.get("admin")))
            created = [self._seed_record(spec) for spec in document.get("records", [])]
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(
            {
                "records": [
                    {"id": r.id, "guid": r.guid, "fileLink": self.file_link(r)} for r in created
                ]
            }
        )

    def _seed_record(self, spec: dict[str, Any]) -> StoredRecord:
        if not isinstance(spec, dict):
            raise ValueError("each record must be a JSON object")
        known = set(RECORD_FIELDS) | {"relativeLink", "content", "text", "size"}
        unknown = set(spec) - known
        if unknown:
            raise ValueError(f"unknown record field(s): {', '.join(sorted(unknown))}")
        guid = str(spec.get("guid") or uuid.uuid4())
        for old in [r for r in self.records.values() if r.guid == guid]:
            del self.records[old.id]
        record_id = int(spec.get("id") or max(self.records, default=0) + 1)
        created = _when(spec.get("dateCreated", datetime.now(UTC).timestamp()), "dateCreated")
        record = StoredRecord(id=record_id, guid=guid, dateCreated=created)
        for name in RECORD_FIELDS[2:]:
            if name not in spec or name in ("dateCreated",):
                continue
            value = spec[name]
            if name == "fileLink":
                record.fileLink = None if value is None else str(value)
            elif name == "endTime":
                record.endTime = None if value is None else _when(value, name)
            elif name in _NILLABLE:
                setattr(record, name, None if value is None else str(value))
            elif name in ("webcast", "locked"):
                setattr(record, name, bool(value))
            elif name == "framerate":
                record.framerate = int(value)
            else:
                setattr(record, name, str(value))
        if not record.dateCreatedString:
            record.dateCreatedString = created.strftime("%Y-%m-%d %H:%M:%S")
        if "endTime" not in spec:
            record.endTime = created + timedelta(minutes=1)
        record.relative_link = bool(spec.get("relativeLink", False))
        record.path = self.files_dir / guid
        record.path.write_bytes(_content(spec, record_id))
        self.records[record.id] = record
        return record

    async def state(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "records": [
                    {
                        **{
                            name: _json_value(getattr(r, name))
                            for name in RECORD_FIELDS
                            if name != "fileLink"
                        },
                        "fileLink": self.file_link(r),
                    }
                    for r in sorted(self.records.values(), key=lambda r: r.id)
                ],
                "downloads": dict(self.downloads),
                "calls": dict(self.calls),
                "soapFault": self.soap_fault,
                "ignoreStart": self.ignore_start,
                "answerShape": self.answer_shape,
            }
        )

    async def settings(self, request: web.Request) -> web.Response:
        try:
            data = await request.json()
            if "soapFault" in data:
                fault = data["soapFault"]
                if fault is not None and fault.get("fault", "GeneralFault") not in _FAULTS:
                    raise ValueError(f"soapFault.fault must be one of {', '.join(_FAULTS)}")
                self.soap_fault = None if fault is None else dict(fault)
            if "ignoreStart" in data:
                self.ignore_start = bool(data["ignoreStart"])
            if "answerShape" in data:
                self.answer_shape = _answer_shape(data["answerShape"])
        except (ValueError, TypeError, AttributeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(
            {
                "soapFault": self.soap_fault,
                "ignoreStart": self.ignore_start,
                "answerShape": self.answer_shape,
            }
        )


def _values(payload: Any) -> dict[str, Any]:
    """A request's children by local name; a nil element reads as None."""
    values: dict[str, Any] = {}
    for child in payload.iterchildren(tag=etree.Element):
        nil = child.get(f"{{{XSI}}}nil") in ("true", "1")
        values[etree.QName(child).localname] = None if nil else (child.text or "")
    return values


def _in_scope(record: StoredRecord, scope: str, user: str) -> bool:
    """The stand-in's reading of ``recordScope``: ``allUser`` = the caller's own, ``new`` = of
    the last day, the others match the record's scope; ``all`` is everything."""
    if scope == "all":
        return True
    if scope == "allUser":
        return record.userName == user
    if scope == "new":
        return record.dateCreated > datetime.now(UTC) - timedelta(days=1)
    return record.recordScope == scope


def _ok(response: str) -> Any:
    """``UpdateRecordResponse``/``DeleteRecordResponse``: one ``OK`` member of enum ``OK``."""
    answer = etree.Element(_q(response), nsmap={"ns": NAMESPACE})
    etree.SubElement(answer, _q("OK")).text = "OK"
    return answer


def _answer_shape(value: Any) -> dict[str, Any] | None:
    """A checked ``answerShape`` setting (None: answers as the WSDL says)."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"extra", "omit", "reverse"}:
        raise ValueError("answerShape takes extra, omit and reverse")
    extra = value.get("extra") or {}
    omit = value.get("omit") or []
    if not isinstance(extra, dict) or not all(isinstance(v, str) for v in extra.values()):
        raise ValueError("answerShape.extra maps element names to their text")
    unknown = set(omit) - set(RECORD_FIELDS)
    if unknown or "id" in omit:
        raise ValueError(f"answerShape.omit names Record members other than id: {omit}")
    return {"extra": dict(extra), "omit": list(omit), "reverse": bool(value.get("reverse"))}


def _reshape(answer: Any, shape: dict[str, Any]) -> None:
    """``answer`` as a server with another WSDL gives it (see ``answerShape``)."""
    targets = [answer, *answer.iterchildren(_q("records"))]
    for element in targets:
        if element is not answer:
            for child in list(element):
                if etree.QName(child).localname in shape["omit"]:
                    element.remove(child)
        for name, text in shape["extra"].items():
            etree.SubElement(element, _q(name)).text = text
        if shape["reverse"]:  # the members' order; the records keep theirs, ahead of the rest
            records = [c for c in element if c.tag == _q("records")]
            others = [c for c in element if c.tag != _q("records")]
            element[:] = records + list(reversed(others))


def _content(spec: dict[str, Any], record_id: int) -> bytes:
    if "content" in spec:
        return base64.b64decode(spec["content"])
    if "text" in spec:
        return str(spec["text"]).encode()
    size = int(spec.get("size", DEFAULT_SIZE))
    return random.Random(record_id).randbytes(size)


def _json_value(value: Any) -> Any:
    return _wire_time(value) if isinstance(value, datetime) else value
