"""DRACOON REST API v4: one account over one aiohttp session.

What it speaks: OAuth2 password grant with refresh before expiry (and once more on 401); the
account's key pairs, all of them (an account moving from RSA-2048 to RSA-4096 holds one of
each, and a file key opens only with the pair of its version), fetched, not unlocked
(:class:`~recstore.transfer.keys.AccountKeys` unlocks them); rooms found or created along a
path; room members and their public keys; uploads of a stream of chunks through S3 direct
upload (one presigned URL per part, parts of at least 5 MB but the last) or the legacy upload
channel, chosen by the server's ``useS3Storage``; missing file keys and setting file keys;
downloads.

It neither encrypts nor decrypts: callers pass encrypted chunks and file key JSON
(:mod:`recstore.crypto` holds the rules). Errors become :class:`DracoonError` with the HTTP
status, the API's negative ``errorCode`` and a transient/permanent verdict, each also of the
kind its status says (:func:`~recstore.common.errors.kind_of_status`: NotFound, Conflict,
Throttled, QuotaExceeded, Unauthorised ...), so callers decide with ``except NotFound``, never
by comparing statuses. Transient ones are retried through :mod:`recstore.common.retry`, once
per call and only at the outermost level: the token fetch a request makes is one attempt of
that request, not a retried call of its own. Credentials and tokens never appear in a message
or a log line.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import io
import json as json_module  # `json` names request bodies here, as in aiohttp
import logging
import re
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import aiohttp
from pydantic import SecretStr

from recstore.clients.http import connection_errors, http_session
from recstore.clients.s3 import MAX_PARTS, smallest_part  # direct uploads are S3 multipart
from recstore.common import events
from recstore.common.errors import (
    Conflict,
    NotFound,
    RemoteError,
    Unauthorised,
    kind_of_status,
    remote_error,
    transient_status,
)
from recstore.common.retry import RetryPolicy, call_with_retry, parse_retry_after

log = logging.getLogger(__name__)

REMOTE = "dracoon"
PAGE = 500
KEYS_PER_REQUEST = 100
#: Refresh the access token this long before the server says it expires.
TOKEN_MARGIN = 60.0

# errorCodes worth naming (docs/design/dracoon.md)
NAME_CONFLICT = -40010
FILE_KEY_REQUIRED = -40763
S3_DIRECT_UPLOAD_ENFORCED = -90033
CHANNEL_CLOSED = -20503
NO_KEY_PAIR = -70020
#: OAuth errors that refuse the client or the user's credentials (RFC 6749 5.2).
_REFUSED = frozenset({"invalid_grant", "invalid_client", "unauthorized_client"})


class DracoonError(RemoteError):
    """A DRACOON call failed; ``error_code`` is the API's negative errorCode, when it sent one."""

    @property
    def error_code(self) -> int | None:
        return self.code if isinstance(self.code, int) else None


@dataclass(frozen=True)
class DracoonAccount:
    """Everything needed to act as one DRACOON user."""

    base_url: str
    login: str
    password: SecretStr
    encryption_password: SecretStr | None = None
    client_id: str = "dracoon_legacy_scripting"
    client_secret: SecretStr = field(default_factory=lambda: SecretStr(""))
    timeout: float = 60.0


def _failure(kind: type[RemoteError], message: str, **fields: Any) -> DracoonError:
    """A DracoonError that is also of ``kind`` (:func:`kind_of_status`: NotFound, Conflict,
    Throttled ...), so a caller catches whichever it decides by."""
    error = remote_error(DracoonError, kind, message, remote=REMOTE, **fields)
    assert isinstance(error, DracoonError)
    return error


def _unreachable(what: str) -> contextlib.AbstractContextManager[None]:
    return connection_errors(what, REMOTE, DracoonError)


class ChannelRecord(Protocol):
    """Hears of an upload channel while it is open (see :meth:`DracoonClient.upload`)."""

    async def opened(self, upload_id: str) -> None: ...

    async def closed(self, upload_id: str) -> None: ...


class DracoonClient:
    """The API for one account. Use as ``async with DracoonClient(account) as dracoon``."""

    def __init__(
        self,
        account: DracoonAccount,
        session: aiohttp.ClientSession | None = None,
        policy: RetryPolicy | None = None,
        upload_poll_timeout: float = 600.0,
    ) -> None:
        self.account = account
        self._base = account.base_url.rstrip("/")
        self._own_session = session is None
        self._session = session
        self._policy = policy
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=30, sock_read=account.timeout
        )
        self._token: str | None = None
        self._refresh: str | None = None
        self._token_expires = 0.0
        self._auth_lock = asyncio.Lock()
        self._key_pair: dict[str, Any] | None = None
        self._key_pairs: list[dict[str, Any]] | None = None
        self._system_info: dict[str, Any] | None = None
        # One creator per room name at a time; a lock lives while a request holds it, not for
        # as long as the daemon runs.
        self._path_locks: weakref.WeakValueDictionary[tuple[int, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self._poll_timeout = upload_poll_timeout

    def __repr__(self) -> str:
        return f"DracoonClient(url={self._base!r}, login={self.account.login!r})"

    async def __aenter__(self) -> DracoonClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            if not self._own_session:
                raise RuntimeError("the DRACOON client's session is closed")
            self._session = http_session(self.account.timeout, self._timeout)
        return self._session

    @contextlib.asynccontextmanager
    async def _http_request(
        self, method: str, url: str, **kwargs: Any
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """A request with this account's timeout, which a session shared with other clients
        (the daemon's) does not carry."""
        async with self._http().request(method, url, timeout=self._timeout, **kwargs) as response:
            yield response

    # -- authentication --

    async def _access_token(self, refused: str | None = None) -> str:
        """A token to call the API with. ``refused``: one the server answered 401 to, renewed
        with the password unless another request has renewed it meanwhile (a revoked token
        fails every request in flight at once, and each would log in again)."""
        async with self._auth_lock:
            if self._token is not None:
                if refused is not None and self._token != refused:
                    return self._token  # renewed meanwhile
                if refused is None and time.monotonic() < self._token_expires - TOKEN_MARGIN:
                    return self._token
            if self._refresh and refused is None:
                try:
                    answer = await self._oauth(
                        {"grant_type": "refresh_token", "refresh_token": self._refresh}
                    )
                except DracoonError:
                    answer = await self._oauth(self._password_grant())
            else:
                answer = await self._oauth(self._password_grant())
            self._token = str(answer["access_token"])
            self._refresh = answer.get("refresh_token")
            self._token_expires = time.monotonic() + float(answer.get("expires_in", 3600))
            return self._token

    def _password_grant(self) -> dict[str, str]:
        return {
            "grant_type": "password",
            "username": self.account.login,
            "password": self.account.password.get_secret_value(),
        }

    async def _oauth(self, form: dict[str, str]) -> dict[str, Any]:
        """One token request, never retried here: the request that needs the token is the
        outer call, retried as a whole (a retry in here too made up to 36 logins a call)."""
        client = f"{self.account.client_id}:{self.account.client_secret.get_secret_value()}"
        headers = {"Authorization": "Basic " + base64.b64encode(client.encode()).decode()}
        with _unreachable("DRACOON unreachable"):
            async with self._http_request(
                "POST", f"{self._base}/oauth/token", data=form, headers=headers
            ) as response:
                body = await _json_or_text(response)
                if response.status == 200 and isinstance(body, dict) and "access_token" in body:
                    return body
                reason = body.get("error", "error") if isinstance(body, dict) else "error"
                # OAuth answers refused credentials with 400 (RFC 6749 5.2): still refused ones
                kind = Unauthorised if reason in _REFUSED else kind_of_status(response.status)
                raise _failure(
                    kind,
                    f"DRACOON login of {self.account.login!r} refused: {reason} "
                    f"(HTTP {response.status})",
                    status=response.status,
                    code=reason,
                    transient=transient_status(response.status),
                    retry_after=parse_retry_after(response.headers.get("Retry-After")),
                )

    # -- requests --

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        retry: bool = True,
    ) -> Any:
        """Call ``/api{path}``; the JSON answer (None for 204). 401 renews the token once."""

        async def attempt() -> Any:
            token = await self._access_token()
            status, body, headers = await self._send(method, path, token, json, params)
            if status == 401:
                token = await self._access_token(refused=token)
                status, body, headers = await self._send(method, path, token, json, params)
            if status >= 400:
                raise _error(status, body, headers, f"{method} {_shown(path)}")
            return body

        if not retry:
            return await attempt()
        return await call_with_retry(attempt, remote=REMOTE, policy=self._policy)

    async def _send(
        self, method: str, path: str, token: str, json: Any, params: Mapping[str, Any] | None
    ) -> tuple[int, Any, Mapping[str, str]]:
        headers = {"Authorization": f"Bearer {token}"}
        clean = {k: str(v) for k, v in (params or {}).items() if v is not None}
        # A URL the server handed out (an upload channel's uploadUrl) is used as it is.
        url = path if _absolute(path) else f"{self._base}/api{path}"
        with _unreachable(f"DRACOON unreachable during {method} {_shown(path)}"):
            async with self._http_request(
                method, url, json=json, params=clean, headers=headers
            ) as response:
                return response.status, await _json_or_text(response), response.headers

    # -- capabilities and keys --

    async def system_info(self) -> dict[str, Any]:
        if self._system_info is None:
            self._system_info = await self.request("GET", "/v4/public/system/info")
        return self._system_info

    async def key_pair(self) -> dict[str, Any]:
        """The key pair the server gives when no version is asked for: the one whose public
        key the uploader encrypts its own file key with."""
        if self._key_pair is None:
            self._key_pair = await self._keys_of_account("/v4/user/account/keypair")
        return self._key_pair

    async def key_pairs(self) -> list[dict[str, Any]]:
        """Every key pair of the account (``requestUserKeyPairs``, API 4.24), one per version."""
        if self._key_pairs is None:
            pairs = await self._keys_of_account("/v4/user/account/keypairs")
            if not pairs:
                raise self._no_key_pair()
            self._key_pairs = list(pairs)
        return self._key_pairs

    async def _keys_of_account(self, path: str) -> Any:
        try:
            return await self.request("GET", path)
        except NotFound as exc:
            raise self._no_key_pair() from exc

    def _no_key_pair(self) -> DracoonError:
        return _failure(
            NotFound,
            f"DRACOON account {self.account.login!r} has no key pair",
            status=404,
            code=NO_KEY_PAIR,
        )

    async def public_key_container(self) -> dict[str, Any]:
        container: dict[str, Any] = (await self.key_pair())["publicKeyContainer"]
        return container

    # -- nodes and rooms --

    async def nodes(
        self, parent_id: int, node_filter: str | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        offset = 0
        while True:
            page = await self.request(
                "GET",
                "/v4/nodes",
                params={
                    "parent_id": parent_id,
                    "filter": node_filter,
                    "offset": offset,
                    "limit": PAGE,
                },
            )
            items: list[dict[str, Any]] = page.get("items", [])
            for item in items:
                yield item
            offset += len(items)
            if not items or offset >= int(page.get("range", {}).get("total", 0)):
                return

    async def child_named(
        self, parent_id: int, name: str, node_type: str | None = None
    ) -> dict[str, Any] | None:
        expression = f"name:eq:{name}" + (f"|type:eq:{node_type}" if node_type else "")
        async for node in self.nodes(parent_id, expression):
            if node["name"] == name and (node_type is None or node["type"] == node_type):
                return node
        return None

    async def ensure_room_path(self, parent_id: int, names: Sequence[str]) -> dict[str, Any]:
        """The room at ``names`` below ``parent_id``, creating each missing level.

        Concurrent creators in this process wait for each other (one lock per level); another
        process that wins the race makes our create fail with a name conflict, and we re-read.
        """
        node: dict[str, Any] = await self.request("GET", f"/v4/nodes/{parent_id}")
        for name in names:
            key = (int(node["id"]), name)
            lock = self._path_locks.setdefault(key, asyncio.Lock())
            async with lock:
                found = await self.child_named(int(node["id"]), name, "room")
                if found is None:
                    try:
                        found = await self.request(
                            "POST",
                            "/v4/nodes/rooms",
                            json={"name": name, "parentId": node["id"], "inheritPermissions": True},
                        )
                    except Conflict:
                        found = await self.child_named(int(node["id"]), name, "room")
                        if found is None:
                            raise
            node = found
        return node

    async def remove_node(self, node_id: int) -> None:
        """Delete a node (a file goes to its room's recycle bin); one already gone is done."""
        with contextlib.suppress(NotFound):  # a retry after a lost answer finds it gone
            await self.request("DELETE", f"/v4/nodes/{node_id}")

    async def room_users(self, room_id: int) -> list[dict[str, Any]]:
        users: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = await self.request(
                "GET", f"/v4/nodes/rooms/{room_id}/users", params={"offset": offset, "limit": PAGE}
            )
            items = page.get("items", [])
            users.extend(items)
            offset += len(items)
            if not items or offset >= int(page.get("range", {}).get("total", 0)):
                return users

    # -- uploads --

    async def upload(
        self,
        parent_id: int,
        name: str,
        size: int | None,
        chunks: AsyncIterator[bytes | bytearray | memoryview],
        *,
        expire_at: datetime | None = None,
        notes: str | None = None,
        file_key: Callable[[], Mapping[str, Any]] | None = None,
        resolution: str = "autorename",
        channels: ChannelRecord | None = None,
    ) -> dict[str, Any]:
        """Upload ``chunks`` as file ``name``; the new node. The upload is cancelled on failure.

        ``file_key`` is called after the last chunk (the GCM tag exists only then) and gives
        the uploader's encrypted file key, needed in encrypted rooms. ``channels`` hears of the
        channel while it is open (opened, then closed once cancelled or handed over for
        completion), so that a later attempt can cancel one a killed process left open.
        """
        direct = bool((await self.system_info()).get("useS3Storage"))
        body: dict[str, Any] = {"parentId": parent_id, "name": name, "directS3Upload": direct}
        if size is not None:
            body["size"] = size
        if notes:
            body["notes"] = notes
        if expire_at is not None:
            body["expiration"] = {
                "enableExpiration": True,
                "expireAt": expire_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            }
        channel = await self.request("POST", "/v4/nodes/files/uploads", json=body)
        upload_id = str(channel["uploadId"])
        try:
            if channels is not None:
                await channels.opened(upload_id)
            if direct:
                parts = await self._upload_s3(upload_id, size, chunks)
                url = f"/v4/nodes/files/uploads/{upload_id}/s3"
                completion = {"parts": parts, **self._completion(name, file_key, resolution)}
            else:
                await self._upload_legacy(channel, size, chunks)
                url = str(channel["uploadUrl"])  # `token` is deprecated since API 4.3
                completion = self._completion(name, file_key, resolution)
        except BaseException:
            await asyncio.shield(self.cancel_upload(upload_id))
            if channels is not None:
                await asyncio.shield(channels.closed(upload_id))
            raise
        try:
            node = await self._complete(upload_id, url, completion)
        finally:  # handed over: DRACOON closes the channel with the completion
            if channels is not None:
                await asyncio.shield(channels.closed(upload_id))
        # DRACOON accepted the completion and assembles the file (S3), or has made it (legacy).
        # Cancelling from here on could throw away a file it is finishing; if the wait ends
        # first (a timeout, a shutdown), the next attempt of the job finds the finished file
        # by its marker.
        return node if node is not None else await self._wait_until_done(upload_id)

    async def _complete(
        self, upload_id: str, url: str, completion: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """Send the completion once; the legacy channel's node, or None (S3: wait for it).

        A completion closes the channel: DRACOON answers a second one with -20503 ("Upload
        channel is closed"), so one whose answer was lost or failed is not simply sent again.
        The upload's status decides: "transfer" (it never arrived) sends it again, within the
        retry policy; "finishing", "done" or "error" leave the rest to the wait. A completion
        DRACOON refused (a name conflict, a missing file key) leaves the channel open and is
        cancelled, as before; any other failure leaves it alone, since DRACOON may be
        finishing the file.
        """

        async def attempt() -> dict[str, Any] | None:
            try:
                node: dict[str, Any] | None = await self.request(
                    "PUT", url, json=completion, retry=False
                )
            except DracoonError as exc:
                if not exc.transient and exc.error_code != CHANNEL_CLOSED:
                    await asyncio.shield(self.cancel_upload(upload_id))
                    raise
                if await self._upload_status(upload_id, exc) == "transfer":
                    raise  # it never arrived: the retry policy sends it again
                return None
            return node if _absolute(url) else None  # the legacy channel answers the node

        answer: dict[str, Any] | None = await call_with_retry(
            attempt, remote=REMOTE, policy=self._policy
        )
        return answer

    async def _upload_status(self, upload_id: str, lost: DracoonError) -> str:
        """The upload's status after its completion's answer was lost or failed."""
        try:
            status = await self.request("GET", f"/v4/nodes/files/uploads/{upload_id}")
        except DracoonError as exc:
            raise DracoonError(
                f"DRACOON upload {upload_id} completion {lost}; its status is unknown ({exc}): "
                "left to DRACOON, which may be finishing it",
                remote=REMOTE,
                status=exc.status,
                transient=True,
            ) from lost
        return str(status.get("status"))

    async def cancel_upload(self, upload_id: str) -> None:
        """Cancel an upload channel (its stored parts go); a failure is logged, not raised."""
        try:
            await self.request("DELETE", f"/v4/nodes/files/uploads/{upload_id}", retry=False)
        except DracoonError as exc:  # DRACOON expires abandoned uploads; say it was left open
            events.emit(
                log, events.REST_CLIENT_ERROR, "cancel of upload %s failed: %s", upload_id, exc
            )

    def _completion(
        self, name: str, file_key: Callable[[], Mapping[str, Any]] | None, resolution: str
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "resolutionStrategy": resolution,
            "fileName": name,
            "keepShareLinks": False,
        }
        if file_key is not None:
            body["fileKey"] = dict(file_key())
        return body

    async def _upload_s3(
        self,
        upload_id: str,
        size: int | None,
        chunks: AsyncIterator[bytes | bytearray | memoryview],
    ) -> list[dict[str, Any]]:
        """The parts, each through its presigned URL; what the completion lists of them."""
        parts: list[dict[str, Any]] = []
        pending = bytearray()
        smallest = smallest_part(size)  # above 52 GB, chunks are gathered (copied) into parts
        with _PartUrls(functools.partial(self._part_url, upload_id), size) as urls:
            async for chunk in chunks:
                if not pending and len(chunk) >= smallest:
                    parts.append(await self._put_part(urls, len(parts) + 1, chunk))
                    continue
                pending += chunk  # smaller pieces are gathered into parts of `smallest`
                if len(pending) >= smallest:
                    parts.append(await self._put_part(urls, len(parts) + 1, pending))
                    pending = bytearray()
            if pending or not parts:
                parts.append(await self._put_part(urls, len(parts) + 1, pending))
        return parts

    async def _put_part(
        self, urls: _PartUrls, number: int, data: bytes | bytearray | memoryview
    ) -> dict[str, Any]:
        url = await urls.get(number, len(data))

        async def attempt() -> str:
            with _unreachable(f"S3 part {number} upload failed"):
                async with self._http_request(
                    "PUT", url, data=_slices(data), headers={"Content-Length": str(len(data))}
                ) as response:
                    if response.status >= 400:
                        raise _failure(
                            kind_of_status(response.status),
                            f"S3 part {number} upload answered {response.status}",
                            status=response.status,
                            transient=transient_status(response.status),
                        )
                    return response.headers.get("ETag", "").strip('"')

        etag = await call_with_retry(attempt, remote=REMOTE, policy=self._policy)
        return {"partNumber": number, "partEtag": etag}

    async def _part_url(self, upload_id: str, number: int, size: int) -> str:
        urls = await self.request(
            "POST",
            f"/v4/nodes/files/uploads/{upload_id}/s3_urls",
            json={"size": size, "firstPartNumber": number, "lastPartNumber": number},
        )
        return str(urls["urls"][0]["url"])

    async def _wait_until_done(self, upload_id: str) -> dict[str, Any]:
        delay, deadline = 0.05, time.monotonic() + self._poll_timeout
        while True:
            status = await self.request("GET", f"/v4/nodes/files/uploads/{upload_id}")
            if status.get("status") == "done":
                node: dict[str, Any] = status["node"]
                return node
            if status.get("status") == "error":
                # The channel is closed either way. What DRACOON refused (a name taken under
                # "fail", a missing file key: 4xx) stays refused; what went wrong on its side
                # (S3 unreachable, -90027 504) is worth a new upload, so it is transient.
                details = status.get("errorDetails") or {}
                code = details.get("code")
                http_status = code if isinstance(code, int) else None
                raise _failure(
                    kind_of_status(http_status),
                    f"DRACOON could not finish the upload: {details.get('message', 'error')}",
                    status=http_status,
                    code=details.get("errorCode"),
                    transient=transient_status(code) if isinstance(code, int) else True,
                )
            if time.monotonic() > deadline:
                raise DracoonError(
                    "DRACOON did not finish the upload in time", remote=REMOTE, transient=True
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _upload_legacy(
        self,
        channel: Mapping[str, Any],
        size: int | None,
        chunks: AsyncIterator[bytes | bytearray | memoryview],
    ) -> None:
        """The chunks, through the channel's ``uploadUrl`` with their ``Content-Range``."""
        url, offset = channel["uploadUrl"], 0
        total = "*" if size is None else str(size)
        async for chunk in chunks:
            data = bytes(chunk)
            span = f"bytes {offset}-{offset + len(data) - 1}/{total}"

            async def attempt(data: bytes = data, span: str = span) -> None:
                form = aiohttp.FormData()
                form.add_field(
                    "file",
                    io.BytesIO(data),
                    filename="chunk",
                    content_type="application/octet-stream",
                )
                with _unreachable("chunk upload failed"):
                    async with self._http_request(
                        "POST", url, data=form, headers={"Content-Range": span}
                    ) as response:
                        if response.status >= 400:
                            raise _error(
                                response.status,
                                await _json_or_text(response),
                                response.headers,
                                "chunk upload",
                            )

            await call_with_retry(attempt, remote=REMOTE, policy=self._policy)
            offset += len(data)

    # -- file keys --

    async def missing_file_keys_page(
        self, *, offset: int = 0, room_id: int | None = None, file_id: int | None = None
    ) -> dict[str, Any]:
        page: dict[str, Any] = await self.request(
            "GET",
            "/v4/nodes/missingFileKeys",
            params={
                "offset": offset,
                "limit": KEYS_PER_REQUEST,
                "room_id": room_id,
                "file_id": file_id,
            },
        )
        return page

    async def set_file_keys(self, items: Sequence[Mapping[str, Any]]) -> None:
        for start in range(0, len(items), KEYS_PER_REQUEST):
            batch = [dict(item) for item in items[start : start + KEYS_PER_REQUEST]]
            await self.request("POST", "/v4/nodes/files/keys", json={"items": batch})

    async def user_file_key(self, file_id: int, version: str | None = None) -> dict[str, Any]:
        key: dict[str, Any] = await self.request(
            "GET", f"/v4/nodes/files/{file_id}/user_file_key", params={"version": version}
        )
        return key

    async def download(self, file_id: int, chunk_size: int = 1024 * 1024) -> AsyncIterator[bytes]:
        """The stored (encrypted) bytes of a file, as any DRACOON client fetches them."""
        link = await self.request("POST", f"/v4/nodes/files/{file_id}/downloads")
        async with self._http_request("GET", link["downloadUrl"]) as response:
            if response.status >= 400:
                raise _failure(
                    kind_of_status(response.status),
                    f"download answered {response.status}",
                    status=response.status,
                )
            async for piece in response.content.iter_chunked(chunk_size):
                yield piece


class _PartUrls:
    """Presigned part URLs, each asked for while the part before it uploads.

    The round trip for a URL would otherwise stall the upload stream once per part (measured:
    1-7 ms per 20 MB part on loopback, a tenth of the part's time). The guess for the next
    part is "as large as this one, or what is left of ``total``", right for a stream of equal
    chunks; a wrong guess costs one more request, never a wrong URL (each is signed for a
    size). With ``total`` known, nothing is asked for beyond the last part.
    """

    def __init__(self, fetch: Callable[[int, int], Awaitable[str]], total: int | None) -> None:
        self._fetch = fetch  # (part number, size) → URL
        self._left = total
        self._ahead: tuple[int, int, asyncio.Future[str]] | None = None

    async def get(self, number: int, size: int) -> str:
        """The URL for part ``number`` of ``size`` bytes; the next one is asked for now."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[:2] == (number, size):
            task = ahead[2]
        else:
            _discard(ahead)
            task = asyncio.ensure_future(self._fetch(number, size))
        guess = size
        if self._left is not None:
            self._left -= size
            guess = min(size, self._left)
        if guess > 0 and number < MAX_PARTS:
            self._ahead = (number + 1, guess, asyncio.ensure_future(self._fetch(number + 1, guess)))
        return await task

    def __enter__(self) -> _PartUrls:
        return self

    def __exit__(self, *exc_info: object) -> None:
        _discard(self._ahead)
        self._ahead = None


def _discard(ahead: tuple[int, int, asyncio.Future[str]] | None) -> None:
    """Drop a URL asked for ahead and not needed; its outcome, error or not, is of no use."""
    if ahead is not None:
        task = ahead[2]
        task.cancel()
        task.add_done_callback(lambda t: t.cancelled() or t.exception())


async def _slices(
    data: bytes | bytearray | memoryview, size: int = 1024 * 1024
) -> AsyncIterator[memoryview]:
    """A part as a stream of views: no copy, and aiohttp does not hold it as one body."""
    view = memoryview(data)
    for start in range(0, len(view), size):
        yield view[start : start + size]


def _absolute(path: str) -> bool:
    return path.startswith(("http://", "https://"))


def _shown(path: str) -> str:
    """What a message may say of a request's path: an upload URL carries the channel's token,
    which lets anyone upload without logging in, so it is named, not shown."""
    return "the upload channel's uploadUrl" if _absolute(path) else _without_tokens(path)


async def _json_or_text(response: aiohttp.ClientResponse) -> Any:
    """The answer's JSON; None when empty; ``{"message": ...}`` for an error that is not JSON.

    Something in front of DRACOON may answer HTML: a 502 page becomes a DracoonError with
    its status, not a JSONDecodeError that names neither DRACOON nor the request. A success
    that is not JSON (a login portal's 200 page) is not DRACOON's answer at all: taking it
    as one would read as "no files here", so it is a transient error too.
    """
    raw = await response.read()
    if not raw:
        return None
    try:
        return json_module.loads(raw)
    except ValueError:  # UnicodeDecodeError included
        if response.status < 400:
            raise DracoonError(
                f"DRACOON answered {response.status} with {response.content_type}, not JSON",
                remote=REMOTE,
                status=response.status,
                transient=True,
            ) from None
        return {"message": raw[:200].decode("utf-8", "replace")}


def _error(status: int, body: Any, headers: Mapping[str, str], what: str) -> DracoonError:
    """The answer's error, of the kind its status says (:func:`kind_of_status`): a
    DracoonError that is also NotFound, Conflict, Throttled, QuotaExceeded ..."""
    info = body if isinstance(body, dict) else {}
    error_code = info.get("errorCode")
    retry_after = parse_retry_after(headers.get("Retry-After"))
    return _failure(
        kind_of_status(status),
        _without_tokens(f"DRACOON {what} failed: {status} {info.get('message', '')}".strip()),
        status=status,
        code=error_code if isinstance(error_code, int) else None,
        transient=transient_status(status),
        retry_after=retry_after,
    )


#: A legacy upload channel's token, in its URL (``/api/v4/uploads/<token>``) or the completion's
#: path: a bearer secret for that channel, so never part of an error text (issue 33 §5).
_UPLOAD_TOKEN = re.compile(r"(/uploads/)[^/?#\s\"']+")


def _without_tokens(text: str) -> str:
    """``text`` with every upload channel token masked, wherever an error text is made."""
    return _UPLOAD_TOKEN.sub(r"\1***", text)
