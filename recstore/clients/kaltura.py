"""Kaltura API v3 over aiohttp: sessions, calls, multirequests, and listing past 10,000.

* Sessions (KS) are made locally (v2, as the official clients' ``generateSessionV2``), renewed
  before they expire and once more when the server answers ``INVALID_KS``.
* Requests are JSON with ``format=1``; Kaltura reports errors as ``KalturaAPIException``
  objects with HTTP 200, which become :class:`KalturaError` (permanent unless the code says the
  server failed inside). Transport errors and 5xx are transient and go through the retry helper.
  The error is also the kind its code means: ``*_NOT_FOUND`` (``ENTRY_ID_NOT_FOUND``,
  ``FLAVOR_ASSET_ID_NOT_FOUND`` ...) a :class:`~recstore.common.errors.NotFound`, a session
  refused (:data:`REFUSED_CODES`) an :class:`~recstore.common.errors.Unauthorised`, an HTTP
  status the kind it says; callers catch the kind, never compare codes.
* A multirequest answers one result per call; **every** element is checked and a failed one
  comes back as a :class:`KalturaError` in its place, so the caller decides per element.
* :meth:`KalturaClient.iter_entries` lists every entry matching a filter whatever the count:
  Kaltura pages only 10,000 results (an offset past them is refused), so it orders by
  ``+createdAt`` and moves a ``createdAtGreaterThanOrEqual`` window, de-duplicating the
  boundary second by id; a short page is no proof of the end, and a second fuller than a page
  is read whole before it is given (offsets shift when the caller's updates drop entries).
* ``...In`` lists longer than the 150 values the server reads are split into parts
  (:func:`split_in_lists`) by ``iter_entries``, ``count`` and ``list_all``.
* Internal errors of the server (``INTERNAL_SERVERL_ERROR``, ``INTERNAL_DATABASE_ERROR``,
  ``SEARCH_ENGINE_QUERY_FAILED``, ``LOCK_TIMED_OUT``) are retried like a 5xx.
* An upload is verified through ``uploadToken.get`` (the server checks little itself).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import os
import time
import urllib.parse
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from pydantic import ValidationError

from recstore.clients.http import connection_errors
from recstore.clients.kaltura_types import (
    KalturaFlavorAsset,
    KalturaMediaEntry,
    KalturaMetadata,
    KalturaMetadataProfile,
    KalturaObject,
    KalturaUploadToken,
)
from recstore.common.errors import (
    NotFound,
    RemoteError,
    Unauthorised,
    kind_of_status,
    remote_error,
    transient_status,
)
from recstore.common.retry import RetryPolicy, call_with_retry, parse_retry_after
from recstore.settings import KalturaSettings

REMOTE = "kaltura"
W = TypeVar("W", bound=KalturaObject)
#: An expired or unreadable session: ``INVALID_KS`` (``ERR_DESC`` EXPIRED, INVALID_STR, ...;
#: ``api_v3/lib/KalturaErrors.php``: the server has no separate code for expiry).
SESSION_ERRORS = frozenset({"INVALID_KS"})
#: Codes of a session the server refuses (no KS, or one without the privilege the service
#: needs; ``api_v3/lib/KalturaErrors.php``): :class:`Unauthorised`.
REFUSED_CODES = SESSION_ERRORS | {"MISSING_KS", "SERVICE_FORBIDDEN"}
#: Codes that say the server failed inside, not the request: worth another try. From
#: ``kaltura/server``: ``api_v3/lib/KalturaErrors.php`` (``INTERNAL_SERVERL_ERROR``, sic, the
#: catch-all of ``KalturaFrontController::getExceptionObject``; ``LOCK_TIMED_OUT``) and
#: ``alpha/apps/kaltura/lib/webservices/APIErrors.class.php`` (``INTERNAL_DATABASE_ERROR`` for a
#: PropelException, ``SEARCH_ENGINE_QUERY_FAILED`` for a failed Sphinx query).
TRANSIENT_CODES = frozenset(
    {
        "INTERNAL_SERVERL_ERROR",
        "INTERNAL_DATABASE_ERROR",
        "SEARCH_ENGINE_QUERY_FAILED",
        "LOCK_TIMED_OUT",
    }
)
#: The search engine keeps only this many values of a ``...In`` list and drops the rest
#: silently (``plugins/search/providers/sphinx_search/lib/SphinxCriterion.php``: MAX_IN_VALUES).
MAX_IN_VALUES = 150
#: ``...In`` fields naming one value per object, so a long list can be split into parts whose
#: answers add up (no object matches two parts).
SPLITTABLE_IN = frozenset(
    {"idIn", "referenceIdIn", "statusIn", "objectIdIn", "entryIdIn", "userIdIn", "typeIn"}
)
#: The search engine answers no row past this offset (``QUERY_EXCEEDED_MAX_MATCHES_ALLOWED``).
MAX_MATCHES = 10_000
#: Renew a session this long before it expires.
RENEW_MARGIN = 300.0
ADMIN = 2
#: How often a download is resumed after a transient failure (an upload chunk is resumed by
#: the client's retry policy).
DOWNLOAD_RESUMES = 5
#: One attempt: for a call that is itself a step of a retried attempt.
SEND_ONCE = RetryPolicy(attempts=1)
#: Bytes taken from the socket at a time while downloading.
READ_SIZE = 1024 * 1024


class KalturaError(RemoteError):
    """A ``KalturaAPIException`` (``code`` such as ``ENTRY_ID_NOT_FOUND``) or a failed call."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        args: Any = None,
        remote: str = REMOTE,
        **kw: Any,
    ):
        super().__init__(message, remote=remote, code=code, **kw)
        self.kaltura_args = args or {}


def kaltura_error(
    message: str, *, kind: type[RemoteError] = RemoteError, **fields: Any
) -> KalturaError:
    """A :class:`KalturaError` that is also ``kind`` (:class:`NotFound` ...)."""
    return remote_error(KalturaError, kind, message, **fields)


def kind_of_code(code: str) -> type[RemoteError]:
    """The kind of error a ``KalturaAPIException`` code says, :class:`RemoteError` if none."""
    if code in REFUSED_CODES:
        return Unauthorised
    if code.endswith("_NOT_FOUND"):
        return NotFound
    return RemoteError


def _http_error(what: str, answer: aiohttp.ClientResponse) -> KalturaError:
    return kaltura_error(
        f"{what} answered HTTP {answer.status}",
        kind=kind_of_status(answer.status),
        status=answer.status,
        transient=transient_status(answer.status),
        retry_after=parse_retry_after(answer.headers.get("Retry-After")),
    )


def _unreachable() -> contextlib.AbstractContextManager[None]:
    return connection_errors("kaltura unreachable", REMOTE, KalturaError)


def make_ks(
    secret: str,
    partner_id: int,
    user_id: str,
    *,
    session_type: int = ADMIN,
    lifetime: float = 86400,
    privileges: str = "",
    now: float | None = None,
) -> str:
    """A v2 KS, byte for byte as the official clients make it (random part aside)."""
    fields: dict[str, str] = {}
    for privilege in (p.strip() for p in privileges.split(",")):
        if not privilege:
            continue
        name, _, value = ("all:*" if privilege == "*" else privilege).partition(":")
        fields[name] = value
    fields["_e"] = str(int((now if now is not None else time.time()) + lifetime))
    fields["_t"] = str(session_type)
    fields["_u"] = user_id
    body = os.urandom(16) + urllib.parse.urlencode(fields).encode()
    body = hashlib.sha1(body).digest() + body  # noqa: S324 (the protocol's signature)
    body += b"\0" * (-len(body) % 16)
    key = hashlib.sha1(secret.encode()).digest()[:16]  # noqa: S324 (the protocol's key)
    encryptor = Cipher(algorithms.AES(key), modes.CBC(b"\0" * 16)).encryptor()
    sealed = encryptor.update(body) + encryptor.finalize()
    return base64.urlsafe_b64encode(f"v2|{partner_id}|".encode() + sealed).decode()


@dataclass(frozen=True)
class Call:
    """One call of a multirequest; values may reference earlier results as ``{N:result:id}``."""

    service: str
    action: str
    params: Mapping[str, Any] = field(default_factory=dict)


class KalturaClient:
    """One partner's API over the caller's aiohttp session."""

    def __init__(
        self,
        settings: KalturaSettings,
        session: aiohttp.ClientSession,
        policy: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not settings.service_url or settings.partner_id is None or not settings.admin_secret:
            raise ValueError(
                "kaltura.serviceUrl, kaltura.partnerId and kaltura.adminSecret are needed"
            )
        self._settings = settings
        self._secret = settings.admin_secret.get_secret_value()
        self._partner_id = settings.partner_id
        self._base = settings.service_url.rstrip("/") + "/api_v3/service"
        self._session = session
        self._policy = policy
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=settings.timeout)
        self._ks: str | None = None
        self._ks_expires = 0.0

    def __repr__(self) -> str:
        return f"KalturaClient(partner={self._settings.partner_id}, url={self._base!r})"

    # -- sessions --------------------------------------------------------------------------

    def _session_ks(self, renew: bool = False) -> str:
        now = self._clock()
        if renew or self._ks is None or now > self._ks_expires - RENEW_MARGIN:
            settings = self._settings
            self._ks = make_ks(
                self._secret,
                self._partner_id,
                settings.user_id,
                lifetime=settings.session_lifetime,
                privileges=settings.privileges,
                now=now,
            )
            self._ks_expires = now + settings.session_lifetime
        return self._ks

    # -- calls -----------------------------------------------------------------------------

    async def call(self, service: str, action: str, **params: Any) -> Any:
        """One API call; its result, or :class:`KalturaError`."""
        return await self._call(service, action, params, self._policy)

    async def _call(
        self, service: str, action: str, params: Mapping[str, Any], policy: RetryPolicy | None
    ) -> Any:
        path = f"service/{service}/action/{action}"
        result = await self._with_session(path, dict(params), policy)
        _raise_if_error(result, f"{service}.{action}")
        return result

    async def multirequest(self, calls: Sequence[Call]) -> list[Any]:
        """Every call's result in order; a failed call's place holds its KalturaError."""
        if not calls:
            return []
        body: dict[str, Any] = {}
        for index, item in enumerate(calls, start=1):
            body[str(index)] = {"service": item.service, "action": item.action, **item.params}
        answer = await self._with_session("service/multirequest", body, self._policy)
        _raise_if_error(answer, "multirequest")
        if not isinstance(answer, list) or len(answer) != len(calls):
            raise KalturaError("multirequest answered a different number of results")
        results: list[Any] = []
        for item, result in zip(calls, answer, strict=True):
            try:
                _raise_if_error(result, f"{item.service}.{item.action}")
            except KalturaError as exc:
                results.append(exc)
            else:
                results.append(result)
        return results

    async def _with_session(
        self, path: str, body: dict[str, Any], policy: RetryPolicy | None
    ) -> Any:
        """POST with a session, renewing it once when the server says it is no longer valid.

        The renewal follows the first call's retries, it does not run inside them: a refused
        session is an answer, not a failure, so at most two retried calls are made."""
        answer = await self._post(path, body, self._session_ks(), policy)
        if _error_code(answer) in SESSION_ERRORS or (
            isinstance(answer, list) and any(_error_code(a) in SESSION_ERRORS for a in answer)
        ):
            answer = await self._post(path, body, self._session_ks(renew=True), policy)
        return answer

    async def _post(
        self, path: str, body: dict[str, Any], ks: str, policy: RetryPolicy | None
    ) -> Any:
        url = f"{self._base.removesuffix('/service')}/{path}?format=1"
        payload = {**body, "ks": ks, "format": 1}

        async def attempt() -> Any:
            with _unreachable():
                async with self._session.post(url, json=payload, timeout=self._timeout) as answer:
                    if answer.status != 200:
                        raise _http_error("kaltura", answer)
                    result = await answer.json(content_type=None)
            # An internal error of the server (not of this request) is retried like a 5xx;
            # a multirequest's own elements are left to the caller.
            if _error_code(result) in TRANSIENT_CODES:
                _raise_if_error(result, path.removeprefix("service/").replace("/action/", "."))
            return result

        return await call_with_retry(attempt, remote=REMOTE, policy=policy)

    # -- listing ---------------------------------------------------------------------------

    async def iter_entries(
        self,
        entry_filter: Mapping[str, Any],
        *,
        service: str = "media",
        page_size: int | None = None,
    ) -> AsyncIterator[KalturaMediaEntry]:
        """Every entry matching ``entry_filter`` once, past Kaltura's 10,000.

        Oldest first within each part of a split ``...In`` list (see :func:`split_in_lists`).
        Correct when a page comes back short although more match (the server re-applies some
        criteria after the search), and when entries leave the filter while the caller
        consumes the listing (the window moves by ``createdAt``, not by offset; a second
        fuller than a page is read whole before any of it is given).
        """
        size = page_size or self._settings.page_size
        base = {k: v for k, v in entry_filter.items() if k != "orderBy"}
        base.setdefault("objectType", "KalturaMediaEntryFilter")
        for part in split_in_lists(base):
            async for entry in self._iter_window(service, part, size):
                yield entry

    async def _iter_window(
        self, service: str, base: dict[str, Any], size: int
    ) -> AsyncIterator[KalturaMediaEntry]:
        base = dict(base)
        window = base.pop("createdAtGreaterThanOrEqual", None)
        boundary: set[str] = set()  # ids already given at the window's first second
        while True:
            page_filter = {**base, "orderBy": "+createdAt"}
            if window is not None:
                page_filter["createdAtGreaterThanOrEqual"] = window
            page = await self._list_page(service, page_filter, size, 1)
            objects = [KalturaMediaEntry.model_validate(o) for o in _objects(page)]
            fresh = [entry for entry in objects if entry.id not in boundary]
            for entry in fresh:
                yield entry
            if not fresh:
                # Nothing new: the end, unless the server counts more in the window's first
                # second than its first page showed (a second fuller than a page, or rows
                # dropped after the search). Read that second whole, then go past it.
                if window is None or not objects or _total(page) <= len(objects):
                    return
                second = int(window)
                async for entry in self._one_second(service, base, second, size, boundary):
                    yield entry
                window, boundary = second + 1, set()
                continue
            last = objects[-1].created_at
            if window is None or last != int(window):
                boundary = set()
            boundary |= {e.id for e in objects if e.created_at == last}
            window = last

    async def _one_second(
        self, service: str, base: dict[str, Any], second: int, size: int, given: set[str]
    ) -> AsyncIterator[KalturaMediaEntry]:
        """The entries of one ``createdAt`` second not yet given, read whole before yielding.

        Offsets within the second shift when an entry leaves the filter (the caller's own
        update may do that), so every page is fetched before the first entry is handed out.
        """
        second_filter = {
            **base,
            "orderBy": "+createdAt",
            "createdAtGreaterThanOrEqual": second,
            "createdAtLessThanOrEqual": second,
        }
        found: dict[str, KalturaMediaEntry] = {}
        index = 1
        while True:
            if (index - 1) * size >= MAX_MATCHES:
                raise KalturaError(
                    f"more than {MAX_MATCHES} entries created in second {second} match the "
                    "filter; Kaltura cannot page them: narrow the filter",
                    code="QUERY_EXCEEDED_MAX_MATCHES_ALLOWED",
                )
            page = await self._list_page(service, second_filter, size, index)
            objects = [KalturaMediaEntry.model_validate(o) for o in _objects(page)]
            for entry in objects:
                found.setdefault(entry.id, entry)
            if not objects or index * size >= _total(page):
                break
            index += 1
        for entry_id, entry in found.items():
            if entry_id not in given:
                yield entry

    async def _list_page(
        self, service: str, flt: Mapping[str, Any], size: int, index: int
    ) -> dict[str, Any]:
        pager = {"objectType": "KalturaFilterPager", "pageSize": size, "pageIndex": index}
        return _object(await self.call(service, "list", filter=dict(flt), pager=pager))

    async def list_all(
        self, service: str, flt: Mapping[str, Any], model: type[W], *, page_size: int = 500
    ) -> list[W]:
        """Every object a short listing matches (a lookup by ids, not a scan of everything).

        ``...In`` lists longer than the server keeps are split (:func:`split_in_lists`); each
        part is paged by index until a page is empty or the server's ``totalCount`` is
        reached (a short page alone is no proof of the end), and read whole before it is
        returned, each as ``model``. At most 10,000 objects per part, as the server pages no
        further.
        """
        found: dict[Any, dict[str, Any]] = {}
        for part in split_in_lists(flt):
            index = 1
            while (index - 1) * page_size < MAX_MATCHES:
                page = await self._list_page(service, part, page_size, index)
                objects = _objects(page)
                for item in objects:
                    found.setdefault(item.get("id"), item)
                if not objects or index * page_size >= _total(page):
                    break
                index += 1
        return [model.model_validate(item) for item in found.values()]

    # -- services used by the archive and sync jobs ------------------------------------------

    async def count(self, entry_filter: Mapping[str, Any]) -> int:
        """``media.count``, summed over the parts of a split ``...In`` list."""
        total = 0
        for part in split_in_lists(entry_filter):
            total += int(await self.call("media", "count", filter=part))
        return total

    async def get_entry(self, entry_id: str) -> KalturaMediaEntry:
        return _wire(KalturaMediaEntry, await self.call("media", "get", entryId=entry_id))

    async def flavors(self, entry_id: str) -> list[KalturaFlavorAsset]:
        page = await self.call(
            "flavorAsset",
            "list",
            filter={"objectType": "KalturaFlavorAssetFilter", "entryIdEqual": entry_id},
            pager={"objectType": "KalturaFilterPager", "pageSize": 500, "pageIndex": 1},
        )
        return [KalturaFlavorAsset.model_validate(o) for o in _objects(page)]

    async def flavor_url(self, flavor_id: str) -> str:
        return str(await self.call("flavorAsset", "getUrl", id=flavor_id))

    async def download(self, url: str, chunk_size: int) -> AsyncIterator[bytes]:
        """The file at ``url`` (a flavor's download URL) in ``chunk_size`` pieces (the last less).

        Streamed, never held whole: memory is one piece plus what the socket hands over. A
        connection that breaks mid-file is reopened from the byte reached (``Range``; a server
        that ignores ranges is read past what was already given), up to
        :data:`DOWNLOAD_RESUMES` times, so a blip costs a reconnect, not the file.
        """
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        position = 0
        piece: list[bytes] = []  # what the socket gave since the last yield, joined once
        held = 0
        breaks = 0
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=self._timeout.total)
        while True:
            headers = {"Range": f"bytes={position}-"} if position else {}
            try:
                async with self._session.get(url, headers=headers, timeout=timeout) as answer:
                    if answer.status not in (200, 206):
                        raise _http_error("flavor download", answer)
                    skip = position if answer.status == 200 else 0
                    async for data in answer.content.iter_chunked(READ_SIZE):
                        if skip:
                            dropped = min(skip, len(data))
                            skip -= dropped
                            data = data[dropped:]
                        position += len(data)
                        while held + len(data) >= chunk_size:
                            cut = chunk_size - held
                            piece.append(data[:cut])
                            data = data[cut:]
                            yield b"".join(piece)
                            piece, held = [], 0
                        if data:
                            piece.append(data)
                            held += len(data)
                break
            except (aiohttp.ClientError, TimeoutError) as exc:
                breaks += 1
                if breaks > DOWNLOAD_RESUMES:
                    raise KalturaError(
                        f"flavor download kept breaking: {type(exc).__name__}", transient=True
                    ) from exc
        if piece:
            yield b"".join(piece)

    async def update_tags(self, entry_id: str, tags: Sequence[str]) -> KalturaMediaEntry:
        return _wire(
            KalturaMediaEntry,
            await self.call(
                "baseEntry",
                "update",
                entryId=entry_id,
                baseEntry={"objectType": "KalturaBaseEntry", "tags": ",".join(tags)},
            ),
        )

    async def add_media(self, entry: Mapping[str, Any]) -> KalturaMediaEntry:
        """``media.add``: a new entry (status NO_CONTENT until content is added)."""
        fields = {"objectType": "KalturaMediaEntry", "mediaType": 1, **entry}
        return _wire(KalturaMediaEntry, await self.call("media", "add", entry=fields))

    async def update_media(self, entry_id: str, fields: Mapping[str, Any]) -> KalturaMediaEntry:
        """``media.update``: a partial update of the named fields."""
        entry = {"objectType": "KalturaMediaEntry", **fields}
        return _wire(
            KalturaMediaEntry,
            await self.call("media", "update", entryId=entry_id, mediaEntry=entry),
        )

    async def add_content(self, entry_id: str, resource: Mapping[str, Any]) -> KalturaMediaEntry:
        """``media.addContent`` (only on NO_CONTENT entries); see :func:`url_resource`."""
        return _wire(
            KalturaMediaEntry,
            await self.call("media", "addContent", entryId=entry_id, resource=dict(resource)),
        )

    async def update_content(self, entry_id: str, resource: Mapping[str, Any]) -> KalturaMediaEntry:
        """``media.updateContent``: replace an entry's content (its id and embeds stay)."""
        return _wire(
            KalturaMediaEntry,
            await self.call("media", "updateContent", entryId=entry_id, resource=dict(resource)),
        )

    async def update_thumbnail(self, entry_id: str, offset_seconds: float) -> KalturaMediaEntry:
        """``media.updateThumbnail``: a new default thumbnail from this moment of the video."""
        return _wire(
            KalturaMediaEntry,
            await self.call(
                "media", "updateThumbnail", entryId=entry_id, timeOffset=offset_seconds
            ),
        )

    async def delete_flavor(self, flavor_id: str) -> None:
        await self.call("flavorAsset", "delete", id=flavor_id)

    async def add_upload_token(self, file_name: str, file_size: int | None) -> KalturaUploadToken:
        """``uploadToken.add``. The server keeps ``fileSize`` but checks nothing against it
        (only with ``autoFinalize``, ``kUploadTokenMgr::handleResume``): :meth:`upload`
        compares it with what the server holds at the end."""
        token: dict[str, Any] = {"objectType": "KalturaUploadToken", "fileName": file_name}
        if file_size is not None:
            token["fileSize"] = file_size
        return _wire(KalturaUploadToken, await self.call("uploadToken", "add", uploadToken=token))

    async def upload_token(self, token_id: str) -> KalturaUploadToken:
        return _wire(
            KalturaUploadToken, await self.call("uploadToken", "get", uploadTokenId=token_id)
        )

    async def upload(
        self, token_id: str, chunks: AsyncIterable[bytes], *, start_at: int = 0
    ) -> KalturaUploadToken:
        """Send ``chunks`` into an upload token, one ``uploadToken.upload`` call each.

        Resumable: a chunk whose call fails is resent from what the server reports as
        received (``uploadedFileSize``), so a dropped connection costs one chunk, not the
        file; ``start_at`` continues an upload an earlier run left unfinished (the chunks
        must then start at that byte). Memory is one chunk. The last call is marked
        ``finalChunk``; the server then checks only that the chunk lands where ``resumeAt``
        says, so the upload is verified here: ``uploadToken.get`` must report the token
        FULL_UPLOAD (2) holding every byte sent, and the ``fileSize`` given to ``add``.
        """
        position = start_at
        pending: bytes | None = None
        async for chunk in chunks:
            if pending is not None:
                position = await self._upload_chunk(token_id, pending, position, final=False)
            pending = bytes(chunk)
        token = await self._send_final(token_id, pending or b"", position)
        return token

    async def _send_final(self, token_id: str, data: bytes, position: int) -> KalturaUploadToken:
        end = await self._upload_chunk(token_id, data, position, final=True)
        token = await self.upload_token(token_id)
        held, announced, status = token.uploaded_file_size, token.file_size, token.status
        if held != end or (announced is not None and held != announced) or status != 2:
            raise KalturaError(
                f"upload token {token_id} holds {held} bytes (status {status}) after {end} were "
                f"sent for a file of {announced}: the upload is incomplete",
                code="UPLOAD_INCOMPLETE",
            )
        return token

    async def _upload_chunk(self, token_id: str, data: bytes, position: int, *, final: bool) -> int:
        """Upload ``data`` at ``position``; the position after it. Resumes a broken attempt.

        One retry loop (the client's policy) around each attempt: an attempt after a broken
        one first asks the token how much arrived and sends only the rest. That question is
        a step of the attempt, sent once, so no retry loop runs inside the retry loop.
        """
        sent = 0
        broken = False

        async def attempt() -> None:
            nonlocal sent, broken
            if broken:
                answer = await self._call(
                    "uploadToken", "get", {"uploadTokenId": token_id}, SEND_ONCE
                )
                received = _wire(KalturaUploadToken, answer).uploaded_file_size or 0
                if not position <= received <= position + len(data):
                    raise KalturaError(
                        f"upload token {token_id} holds {received} bytes, outside the chunk of "
                        f"{len(data)} at {position}: the upload cannot resume",
                        code="UPLOAD_INCOMPLETE",
                    )
                sent = received - position
            try:
                await self._upload_call(token_id, data[sent:], position + sent, final=final)
            except KalturaError as exc:
                broken = exc.transient
                raise

        await call_with_retry(attempt, remote=REMOTE, policy=self._policy)
        return position + len(data)

    async def _upload_call(self, token_id: str, data: bytes, at: int, *, final: bool) -> None:
        form = aiohttp.FormData()
        for name, value in (
            ("ks", self._session_ks()),
            ("format", "1"),
            ("uploadTokenId", token_id),
            ("resume", "1" if at else "0"),
            ("resumeAt", str(at)),
            ("finalChunk", "1" if final else "0"),
        ):
            form.add_field(name, value)
        # A file object, not bytes: aiohttp warns that a large bytes body blocks the loop.
        form.add_field(
            "fileData", io.BytesIO(data), filename="upload", content_type="application/octet-stream"
        )
        url = f"{self._base}/uploadtoken/action/upload?format=1"
        with _unreachable():
            async with self._session.post(url, data=form, timeout=self._timeout) as answer:
                if answer.status != 200:
                    raise _http_error("uploadToken.upload", answer)
                result = await answer.json(content_type=None)
        _raise_if_error(result, "uploadToken.upload")

    async def metadata_profiles(self, system_name: str) -> list[KalturaMetadataProfile]:
        """``metadataProfile.list`` by system name."""
        page = await self.call(
            "metadata_metadataProfile",
            "list",
            filter={"objectType": "KalturaMetadataProfileFilter", "systemNameEqual": system_name},
        )
        return [KalturaMetadataProfile.model_validate(o) for o in _objects(page)]

    async def metadata_profile(self, profile_id: int) -> KalturaMetadataProfile | None:
        """The profile of that id, None when there is none (``metadataProfile.list`` by id:
        an unknown id is an empty list, not an error)."""
        page = await self.call(
            "metadata_metadataProfile",
            "list",
            filter={"objectType": "KalturaMetadataProfileFilter", "idEqual": profile_id},
        )
        found = [KalturaMetadataProfile.model_validate(o) for o in _objects(page)]
        return found[0] if found else None

    async def add_metadata_profile(
        self, name: str, system_name: str, xsd: str, views: str | None = None
    ) -> KalturaMetadataProfile:
        """``metadataProfile.add`` for entry metadata (``metadataObjectType`` 1)."""
        profile = {
            "objectType": "KalturaMetadataProfile",
            "metadataObjectType": 1,
            "name": name,
            "systemName": system_name,
            "createMode": 1,
        }
        params: dict[str, Any] = {"metadataProfile": profile, "xsdData": xsd}
        if views is not None:
            params["viewsData"] = views
        return _wire(
            KalturaMetadataProfile, await self.call("metadata_metadataProfile", "add", **params)
        )

    async def list_metadata(self, profile_id: int, object_id: str) -> list[KalturaMetadata]:
        page = await self.call(
            "metadata_metadata",
            "list",
            filter={
                "objectType": "KalturaMetadataFilter",
                "metadataProfileIdEqual": profile_id,
                "objectIdEqual": object_id,
            },
        )
        return [KalturaMetadata.model_validate(o) for o in _objects(page)]

    async def add_metadata(self, profile_id: int, object_id: str, xml: str) -> KalturaMetadata:
        """``metadata.add`` on an entry (``objectType`` 1); the XML follows the profile's XSD."""
        return _wire(
            KalturaMetadata,
            await self.call(
                "metadata_metadata",
                "add",
                metadataProfileId=profile_id,
                objectType=1,
                objectId=object_id,
                xmlData=xml,
            ),
        )

    async def update_metadata(self, metadata_id: int, xml: str) -> KalturaMetadata:
        return _wire(
            KalturaMetadata,
            await self.call("metadata_metadata", "update", id=metadata_id, xmlData=xml),
        )


def url_resource(url: str) -> dict[str, Any]:
    """Content Kaltura fetches itself from ``url``."""
    return {"objectType": "KalturaUrlResource", "url": url}


def token_resource(token_id: str) -> dict[str, Any]:
    """Content from a finished upload token."""
    return {"objectType": "KalturaUploadedFileTokenResource", "token": token_id}


def split_in_lists(flt: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``flt`` as filters whose ``...In`` lists hold at most :data:`MAX_IN_VALUES` values.

    The server keeps the first 150 values of a list and drops the rest without a word, so a
    longer list is cut into parts (the answers of the parts add up: see
    :data:`SPLITTABLE_IN`). A long list of another field (an entry may match two parts)
    cannot be split exactly and is refused.
    """
    parts: list[dict[str, Any]] = [dict(flt)]
    for name, value in flt.items():
        if not name.endswith("In") or not isinstance(value, str):
            continue
        values = list(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
        if len(values) <= MAX_IN_VALUES:
            continue
        if name not in SPLITTABLE_IN:
            raise ValueError(
                f"filter field {name} holds {len(values)} values; Kaltura reads only "
                f"{MAX_IN_VALUES} and this field cannot be split"
            )
        chunks = [
            ",".join(values[i : i + MAX_IN_VALUES]) for i in range(0, len(values), MAX_IN_VALUES)
        ]
        parts = [{**part, name: chunk} for part in parts for chunk in chunks]
    return parts


def _total(page: Mapping[str, Any]) -> int:
    try:
        return int(page.get("totalCount") or 0)
    except (TypeError, ValueError):
        return 0


def _object(result: Any) -> dict[str, Any]:
    if not isinstance(result, dict):
        raise KalturaError(f"kaltura answered {type(result).__name__} where an object was due")
    return result


def _objects(page: Any) -> list[Any]:
    """The ``objects`` of a list response (``KalturaListResponse``)."""
    objects = _object(page).get("objects") or []
    if not isinstance(objects, list):
        raise KalturaError("kaltura answered a list whose objects are no list")
    return objects


def _wire(model: type[W], result: Any) -> W:
    """``result`` read as ``model``; an answer that does not fit is the server's error."""
    try:
        return model.model_validate(_object(result))
    except ValidationError as exc:
        raise KalturaError(
            f"kaltura answered a {model.__name__} that does not fit: {exc}"
        ) from None


def _error_code(result: Any) -> str | None:
    if isinstance(result, dict) and result.get("objectType") == "KalturaAPIException":
        return str(result.get("code"))
    return None


def _raise_if_error(result: Any, what: str) -> None:
    code = _error_code(result)
    if code is None:
        return
    assert isinstance(result, dict)
    raise kaltura_error(
        f"{what} failed: {code}: {result.get('message', '')}",
        kind=kind_of_code(code),
        code=code,
        args=result.get("args"),
        transient=code in TRANSIENT_CODES,
    )
