"""VidyoReplay's content-management SOAP service, over zeep's async transport (httpx).

* The WSDL is the project's own (no official one is public), kept beside this module in
  ``vidyo/`` and loaded from the package, never fetched: the dev stack's stand-in serves the
  same file, so client and stand-in cannot disagree. Calls go to ``<vidyo.url>`` +
  :data:`SERVICE_PATH` over the SOAP 1.2 binding, with HTTP Basic auth.
* Requests are built from the WSDL (zeep); answers are read leniently, as the seed's PHP
  ``SoapClient`` read them: members by name, in any order, unknown ones ignored, missing or
  nil ones empty (:func:`read_answer`). The WSDL is reconstructed, so one element a real server
  adds, leaves out or orders differently must not stop the sync.
* ``RecordsSearch`` pages at most :data:`MAX_LIMIT` (200) records at a time. A page with one
  record may come back as the record itself rather than a list (seen on real servers), and
  older servers give ``fileLink`` relative to the server: :class:`Record` always holds a list's
  worth of records and an absolute link. ``recordScope`` goes nil unless asked for, as the
  seed sent it.
* Transport errors, timeouts and HTTP 408/429/5xx are transient and go through the one retry
  helper; SOAP faults (``GeneralFault``, ``AccessViolationFault``) and 401/403 are not. Each
  becomes a :class:`VidyoError` at this boundary.
* The password travels only in the ``Authorization`` header; no URL this module builds or logs
  carries it (:func:`strip_credentials` for any link that might).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from lxml import etree

from recstore.common.errors import (
    RemoteError,
    Unauthorised,
    kind_of_status,
    remote_error,
    transient_status,
)
from recstore.common.retry import RetryPolicy, call_with_retry
from recstore.settings import VidyoSettings

REMOTE = "vidyo"
NAMESPACE = "http://replay.vidyo.com/apiservice"
SERVICE_PATH = "/replay/services/VidyoReplayContentManagementService"
#: The project's WSDL; the stand-in serves this very file.
WSDL_PATH = Path(__file__).with_name("vidyo") / "VidyoReplayContentManagementService.wsdl"
BINDING = f"{{{NAMESPACE}}}VidyoReplayContentManagementServiceSoap12Binding"
#: "VidyoReplay's API max limit" (seed 000, syncv2k.php: "max 200/null"); the WSDL's classes
#: show no bound, so the client keeps it and the stand-in answers at most this many.
MAX_LIMIT = 200
RECORD_SCOPES = ("all", "allUser", "new", "private", "organizational", "public")


class VidyoError(RemoteError):
    """A failed VidyoReplay call; ``code`` is the SOAP fault's name where there was one."""

    def __init__(self, message: str, **kw: Any) -> None:
        super().__init__(message, remote=REMOTE, **kw)


@dataclass(frozen=True)
class Record:
    """One recording as ``RecordsSearch``/``RecordsById`` describe it (the spec's field order)."""

    id: int
    guid: str
    tenant_name: str = ""
    user_name: str = ""
    user_full_name: str = ""
    date_created: datetime | None = None
    date_created_string: str = ""
    end_time: datetime | None = None
    duration: str = ""
    resolution: str = ""
    framerate: int | None = None
    pin: str | None = None
    record_scope: str = ""
    title: str = ""
    room_name: str = ""
    #: Absolute, without credentials (relative links of older servers are resolved).
    file_link: str = ""
    recorder_id: str = ""
    webcast: bool = False
    tags: str | None = None
    comments: str | None = None
    locked: bool = False
    external_playback_link: str | None = None


@dataclass(frozen=True)
class SearchPage:
    """One ``RecordsSearch`` answer: its records and the server's counts."""

    records: list[Record]
    search_count: int
    all_count: int


XSI = "http://www.w3.org/2001/XMLSchema-instance"
_ENVELOPES = (
    "http://schemas.xmlsoap.org/soap/envelope/",
    "http://www.w3.org/2003/05/soap-envelope",
)


def as_list(value: Any) -> list[Any]:
    """A repeated element as a list, whether it came as nothing, one object or a list."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def records_of(answer: Mapping[str, Any]) -> list[Any]:
    """The records of an answer; one record may come as the record rather than a list."""
    return [r for r in as_list(answer.get("records")) if isinstance(r, Mapping)]


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _parser() -> Any:
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


def members(element: Any) -> dict[str, Any]:
    """An element's children by local name, whatever their order or namespace.

    A child with children is a dict of its own; a nil or empty leaf is None, any other its
    text. A name that repeats becomes a list (in document order). Nothing is checked against
    the WSDL: unknown members are carried along and ignored by whoever reads the dict.
    """
    found: dict[str, Any] = {}
    for child in element.iterchildren(tag=etree.Element):
        name = _local(child.tag)
        if child.get(f"{{{XSI}}}nil") in ("true", "1"):
            value: Any = None
        elif len(child):
            value = members(child)
        else:
            value = child.text
        if name in found:
            previous = found[name]
            found[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            found[name] = value
    return found


def _child(element: Any, name: str) -> Any:
    return next((c for c in element.iterchildren(tag=etree.Element) if _local(c.tag) == name), None)


#: SOAP faults that refuse the caller (the WSDL's ``AccessViolationFault``): :class:`Unauthorised`.
REFUSED_FAULTS = frozenset({"AccessViolationFault"})


def vidyo_error(
    message: str, *, kind: type[RemoteError] = RemoteError, **fields: Any
) -> VidyoError:
    """A :class:`VidyoError` that is also ``kind`` (:class:`Unauthorised` ...)."""
    return remote_error(VidyoError, kind, message, **fields)


def _http_error(operation: str, status: int) -> VidyoError:
    return vidyo_error(
        f"VidyoReplay {operation} answered HTTP {status}",
        kind=kind_of_status(status),
        status=status,
        transient=transient_status(status),
    )


def read_answer(operation: str, status: int, content: bytes) -> dict[str, Any]:
    """The SOAP answer's payload as :func:`members`; a fault or a bad answer as VidyoError.

    SOAP 1.1 and 1.2 envelopes alike. An HTTP error without a SOAP fault is an HTTP error
    (transient as its status says); a fault is final and named by its detail (``GeneralFault``,
    ``AccessViolationFault``).
    """
    try:
        envelope = etree.fromstring(content, _parser()) if content else None
    except etree.XMLSyntaxError:
        envelope = None
    body = None
    if envelope is not None and envelope.tag in {f"{{{ns}}}Envelope" for ns in _ENVELOPES}:
        body = _child(envelope, "Body")
    payload = None if body is None else next(body.iterchildren(tag=etree.Element), None)
    if payload is not None and _local(payload.tag) == "Fault":
        raise _fault(operation, payload)
    if status != 200:
        raise _http_error(operation, status)
    if payload is None:
        raise VidyoError(f"VidyoReplay {operation} answered no SOAP payload")
    return members(payload)


def strip_credentials(url: str) -> str:
    """``url`` without any ``user:password@`` part, for log lines and error messages."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _optional(value: Any) -> str | None:
    return None if value is None else str(value)


def _flag(value: Any) -> bool:
    """xsd:boolean's lexical forms; anything else (missing included) is false."""
    return str(value).strip().lower() in ("true", "1") if value is not None else False


def _number(value: Any) -> int | None:
    try:
        return None if value is None else int(str(value).strip())
    except ValueError:
        return None


def _when(value: Any) -> datetime | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(str(value).strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def record_from_wire(data: Mapping[str, Any], server: str) -> Record:
    """A :class:`Record` from a ``Record``'s members; ``server`` resolves a relative link.

    Only ``id`` is needed (every step of the sync names the recording by it); a member that is
    missing, nil or unreadable leaves its field empty, as PHP's ``SoapClient`` did.
    """
    record_id = _number(data.get("id"))
    if record_id is None:
        raise VidyoError(
            f"VidyoReplay answered a record without a numeric id (guid {data.get('guid')!r})"
        )
    link = _text(data.get("fileLink")).strip()
    if link:
        link = strip_credentials(urllib.parse.urljoin(server.rstrip("/") + "/", link))
    return Record(
        id=record_id,
        guid=_text(data.get("guid")).strip(),
        tenant_name=_text(data.get("tenantName")),
        user_name=_text(data.get("userName")),
        user_full_name=_text(data.get("userFullName")),
        date_created=_when(data.get("dateCreated")),
        date_created_string=_text(data.get("dateCreatedString")),
        end_time=_when(data.get("endTime")),
        duration=_text(data.get("duration")),
        resolution=_text(data.get("resolution")),
        framerate=_number(data.get("framerate")),
        pin=_optional(data.get("pin")),
        record_scope=_text(data.get("recordScope")),
        title=_text(data.get("title")),
        room_name=_text(data.get("roomName")),
        file_link=link,
        recorder_id=_text(data.get("recorderId")),
        webcast=_flag(data.get("webcast")),
        tags=_optional(data.get("tags")),
        comments=_optional(data.get("comments")),
        locked=_flag(data.get("locked")),
        external_playback_link=_optional(data.get("externalPlaybackLink")),
    )


class VidyoClient:
    """One VidyoReplay server. Use as ``async with VidyoClient(settings) as vidyo:``."""

    def __init__(self, settings: VidyoSettings, policy: RetryPolicy | None = None) -> None:
        if not settings.url or not settings.user or settings.password is None:
            raise ValueError("vidyo.url, vidyo.user and vidyo.password are needed")
        # zeep (and the requests stack its sync transport brings, ~60 ms) is imported by the
        # first client: every daemon and CLI command imports this module, few talk to Vidyo.
        import zeep
        from zeep.proxy import AsyncServiceProxy
        from zeep.transports import AsyncTransport

        self._settings = settings
        self._policy = policy
        self.server = settings.url.rstrip("/")
        self.service_url = self.server + SERVICE_PATH
        timeout = httpx.Timeout(settings.timeout)
        self._http = httpx.AsyncClient(
            auth=httpx.BasicAuth(settings.user, settings.password.get_secret_value()),
            timeout=timeout,
        )
        # zeep reads the WSDL through a synchronous client; ours is a local file, so this one
        # never sends a request. It is still ours to close.
        self._wsdl_http = httpx.Client(timeout=timeout)
        # zeep has no annotations; its objects are Any here and typed at this boundary.
        transport = AsyncTransport(  # type: ignore[no-untyped-call]
            client=self._http, wsdl_client=self._wsdl_http
        )
        self._zeep = zeep.AsyncClient(  # type: ignore[no-untyped-call]
            str(WSDL_PATH),
            transport=transport,
            # zeep builds and sends the request; the answer comes back raw for read_answer.
            settings=zeep.Settings(raw_response=True, xml_huge_tree=False, forbid_entities=True),
        )
        # AsyncClient.create_service hands out a synchronous proxy (zeep 4.3), so the async
        # one is built here from the binding, as AsyncClient.bind would.
        self._service = AsyncServiceProxy(  # type: ignore[no-untyped-call]
            self._zeep, self._zeep.wsdl.bindings[BINDING], address=self.service_url
        )
        self._closed = False

    def __repr__(self) -> str:
        return f"VidyoClient(url={self.service_url!r}, user={self._settings.user!r})"

    async def __aenter__(self) -> VidyoClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._http.aclose()
            self._wsdl_http.close()

    # -- operations ----------------------------------------------------------------------------

    async def search(
        self,
        *,
        start: int = 0,
        limit: int | None = None,
        sort_by: str = "date",
        direction: str = "ASC",
        scope: str | None = None,
        query: str | None = None,
        tenant: str | None = None,
        room: str | None = None,
        user: str | None = None,
        webcast: bool | None = None,
    ) -> SearchPage:
        """One ``RecordsSearch`` page: ``limit`` records (``vidyo.pageSize``) from ``start``.

        Filters left None go nil, ``recordScope`` included: the seed asked for its whole
        library that way (``RecordsSearchRequest(null, null, null, null, null, ...)``).
        """
        limit = self._settings.page_size if limit is None else limit
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
        if start < 0:
            raise ValueError("start must not be negative")
        if scope is not None and scope not in RECORD_SCOPES:
            raise ValueError(f"scope must be one of {', '.join(RECORD_SCOPES)}, not {scope!r}")
        answer = await self._call(
            "RecordsSearch",
            tenantName=tenant,
            roomFilter=room,
            usernameFilter=user,
            query=query,
            recordScope=scope,
            sortBy=sort_by,
            dir=direction,
            limit=limit,
            start=start,
            webcast=webcast,
        )
        return SearchPage(
            records=[record_from_wire(r, self.server) for r in records_of(answer)],
            search_count=_number(answer.get("searchCount")) or 0,
            all_count=_number(answer.get("allVideosCount")) or 0,
        )

    async def pages(self, page_size: int | None = None) -> AsyncIterator[list[Record]]:
        """Every record, oldest first, a page at a time.

        Sorted by date ascending, a recording added during the walk lands at the end rather
        than shifting the pages already read. Some server versions ignore ``start`` and answer
        the first page again: a page that brings no record not seen yet ends the walk instead
        of looping forever.
        """
        size = page_size or self._settings.page_size
        start = 0
        seen: set[int] = set()
        while True:
            page = await self.search(start=start, limit=size)
            fresh = [r for r in page.records if r.id not in seen]
            seen.update(r.id for r in fresh)
            if fresh:
                yield fresh
            if len(page.records) < size or not fresh:
                return
            start += len(page.records)

    async def record(self, record_id: int) -> Record | None:
        """``RecordsById``: the record, or None when the server knows no such id."""
        records = records_of(await self._call("RecordsById", id=record_id))
        return record_from_wire(records[0], self.server) if records else None

    # -- plumbing ------------------------------------------------------------------------------

    async def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        """The operation's answer as :func:`read_answer` gives it."""
        if self._closed:
            raise RuntimeError("this VidyoClient is closed")
        method = getattr(self._service, operation)
        import zeep.exceptions  # loaded with the client (__init__)

        async def attempt() -> dict[str, Any]:
            try:
                response = await method(**params)
            except httpx.HTTPError as exc:
                raise VidyoError(
                    f"VidyoReplay unreachable: {type(exc).__name__}", transient=True
                ) from exc
            except zeep.exceptions.Error as exc:  # our request does not fit the WSDL
                raise ValueError(f"VidyoReplay {operation} request: {exc}") from exc
            return read_answer(operation, int(response.status_code), bytes(response.content))

        return await call_with_retry(attempt, remote=REMOTE, policy=self._policy)


def _fault(operation: str, fault: Any) -> VidyoError:
    """The fault's name (its detail's element: ``GeneralFault``...) as the code, its reason
    as the message; SOAP 1.2 (``Code``/``Reason``/``Detail``) or 1.1 (``faultcode``...)."""
    detail = _child(fault, "Detail")
    if detail is None:
        detail = _child(fault, "detail")
    first = None if detail is None else next(detail.iterchildren(tag=etree.Element), None)
    name = _local(first.tag) if first is not None else None
    reason = _child(fault, "Reason")
    text = _child(reason, "Text") if reason is not None else _child(fault, "faultstring")
    message = "".join(text.itertext()).strip() if text is not None else ""
    code = _child(fault, "Code")
    value = _child(code, "Value") if code is not None else _child(fault, "faultcode")
    soap_code = (value.text or "").strip() if value is not None else ""
    return vidyo_error(
        f"VidyoReplay {operation} failed: {name or 'SOAP fault'}: {message}",
        kind=Unauthorised if name in REFUSED_FAULTS else RemoteError,
        code=name or soap_code or "Fault",
    )
