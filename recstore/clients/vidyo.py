"""VidyoReplay's content-management SOAP service, over zeep's async transport (httpx).

* The WSDL is the project's own (no official one is public), kept beside this module in
  ``vidyo/`` and loaded from the package, never fetched: the dev stack's stand-in serves the
  same file, so client and stand-in cannot disagree. Calls go to ``<vidyo.url>`` +
  :data:`SERVICE_PATH` over the SOAP 1.2 binding, with HTTP Basic auth.
* ``RecordsSearch`` pages at most :data:`MAX_LIMIT` (200) records at a time. A page with one
  record may come back as the record itself rather than a list (seen on real servers), and
  older servers give ``fileLink`` relative to the server: :class:`Record` always holds a list's
  worth of records and an absolute link.
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
import zeep
import zeep.exceptions
import zeep.helpers
from zeep.proxy import AsyncServiceProxy
from zeep.transports import AsyncTransport

from recstore.config import VidyoSettings
from recstore.errors import RemoteError, transient_status
from recstore.retry import RetryPolicy, call_with_retry

REMOTE = "vidyo"
NAMESPACE = "http://replay.vidyo.com/apiservice"
SERVICE_PATH = "/replay/services/VidyoReplayContentManagementService"
#: The project's WSDL; the stand-in serves this very file.
WSDL_PATH = Path(__file__).with_name("vidyo") / "VidyoReplayContentManagementService.wsdl"
BINDING = f"{{{NAMESPACE}}}VidyoReplayContentManagementServiceSoap12Binding"
#: The server refuses larger pages.
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


def as_list(value: Any) -> list[Any]:
    """A repeated element as a list, whether it came as nothing, one object or a list."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def records_of(answer: Any) -> list[Any]:
    """The records of an answer: zeep unwraps a response whose only child is ``records`` into
    the records themselves, and one record may come as the record rather than a list."""
    if isinstance(answer, Mapping) and "records" in answer:
        return as_list(answer["records"])
    return as_list(answer)


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


def _when(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def record_from_wire(data: Mapping[str, Any], server: str) -> Record:
    """A :class:`Record` from a serialized ``Record``; ``server`` resolves a relative link."""
    link = _text(data.get("fileLink")).strip()
    if link:
        link = strip_credentials(urllib.parse.urljoin(server.rstrip("/") + "/", link))
    framerate = data.get("framerate")
    return Record(
        id=int(data["id"]),
        guid=_text(data.get("guid")).strip(),
        tenant_name=_text(data.get("tenantName")),
        user_name=_text(data.get("userName")),
        user_full_name=_text(data.get("userFullName")),
        date_created=_when(data.get("dateCreated")),
        date_created_string=_text(data.get("dateCreatedString")),
        end_time=_when(data.get("endTime")),
        duration=_text(data.get("duration")),
        resolution=_text(data.get("resolution")),
        framerate=None if framerate is None else int(framerate),
        pin=_optional(data.get("pin")),
        record_scope=_text(data.get("recordScope")),
        title=_text(data.get("title")),
        room_name=_text(data.get("roomName")),
        file_link=link,
        recorder_id=_text(data.get("recorderId")),
        webcast=bool(data.get("webcast")),
        tags=_optional(data.get("tags")),
        comments=_optional(data.get("comments")),
        locked=bool(data.get("locked")),
        external_playback_link=_optional(data.get("externalPlaybackLink")),
    )


class VidyoClient:
    """One VidyoReplay server. Use as ``async with VidyoClient(settings) as vidyo:``."""

    def __init__(self, settings: VidyoSettings, policy: RetryPolicy | None = None) -> None:
        if not settings.url or not settings.user or settings.password is None:
            raise ValueError("vidyo.url, vidyo.user and vidyo.password are needed")
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
            settings=zeep.Settings(strict=True, xml_huge_tree=False, forbid_entities=True),
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
        scope: str = "all",
        query: str | None = None,
        tenant: str | None = None,
        room: str | None = None,
        user: str | None = None,
        webcast: bool | None = None,
    ) -> SearchPage:
        """One ``RecordsSearch`` page: ``limit`` records (``vidyo.pageSize``) from ``start``."""
        limit = self._settings.page_size if limit is None else limit
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
        if start < 0:
            raise ValueError("start must not be negative")
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
        if not isinstance(answer, Mapping):
            raise VidyoError("VidyoReplay RecordsSearch answered no RecordsSearchResponse")
        return SearchPage(
            records=[record_from_wire(r, self.server) for r in records_of(answer)],
            search_count=int(answer.get("searchCount") or 0),
            all_count=int(answer.get("allVideosCount") or 0),
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
        answer = await self._call("RecordsById", id=record_id)
        records = records_of(answer)
        return record_from_wire(records[0], self.server) if records else None

    # -- plumbing ------------------------------------------------------------------------------

    async def _call(self, operation: str, **params: Any) -> Any:
        """The operation's answer as plain dicts and lists (zeep's objects serialized)."""
        if self._closed:
            raise RuntimeError("this VidyoClient is closed")
        method = getattr(self._service, operation)

        async def attempt() -> Any:
            try:
                answer = await method(**params)
            except zeep.exceptions.Fault as exc:
                raise _fault(operation, exc) from exc
            except zeep.exceptions.TransportError as exc:
                status = int(exc.status_code or 0)
                raise VidyoError(
                    f"VidyoReplay {operation} answered HTTP {status}",
                    status=status,
                    transient=transient_status(status),
                ) from exc
            except httpx.HTTPError as exc:
                raise VidyoError(
                    f"VidyoReplay unreachable: {type(exc).__name__}", transient=True
                ) from exc
            except zeep.exceptions.Error as exc:
                raise VidyoError(f"VidyoReplay {operation} answered badly: {exc}") from exc
            return zeep.helpers.serialize_object(  # type: ignore[no-untyped-call]
                answer, dict
            )

        return await call_with_retry(attempt, remote=REMOTE, policy=self._policy)


def _fault(operation: str, exc: zeep.exceptions.Fault) -> VidyoError:
    """The fault's name (``GeneralFault``...) as the code, its message as the reason."""
    name = None
    detail = exc.detail
    if detail is not None and len(detail):
        tag = detail[0].tag
        name = tag.rsplit("}", 1)[-1] if isinstance(tag, str) else None
    return VidyoError(
        f"VidyoReplay {operation} failed: {name or 'SOAP fault'}: {exc.message}",
        code=name or _text(exc.code) or "Fault",
    )
