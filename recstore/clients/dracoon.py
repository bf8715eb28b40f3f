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
import time
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from pydantic import SecretStr

from recstore.clients.dracoon_uploads import UploadChannels
from recstore.clients.dracoon_wire import (
    NO_KEY_PAIR,
    REMOTE,
    DownloadLink,
    DracoonError,
    FileKey,
    MissingKeys,
    Node,
    NodeList,
    OAuthToken,
    PublicKeyContainer,
    RoomUser,
    RoomUserList,
    SystemInfo,
    UserKeyPair,
    W,
    dracoon_error,
    error_of_answer,
    is_absolute,
    json_or_text,
    parse,
    shown_path,
    unreachable,
)
from recstore.clients.http import http_session
from recstore.common.errors import (
    Conflict,
    NotFound,
    Unauthorised,
    kind_of_status,
    transient_status,
)
from recstore.common.retry import RetryPolicy, call_with_retry, parse_retry_after

PAGE = 500
KEYS_PER_REQUEST = 100
#: Refresh the access token this long before the server says it expires.
TOKEN_MARGIN = 60.0
#: OAuth errors that refuse the client or the user's credentials (RFC 6749 5.2).
_REFUSED = frozenset({"invalid_grant", "invalid_client", "unauthorized_client"})


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
        self._key_pair: UserKeyPair | None = None
        self._key_pairs: list[UserKeyPair] | None = None
        self._system_info: SystemInfo | None = None
        # One creator per room name at a time; a lock lives while a request holds it, not for
        # as long as the daemon runs.
        self._path_locks: weakref.WeakValueDictionary[tuple[int, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        #: Upload channels (S3 direct and legacy): ``client.uploads.upload(...)``.
        self.uploads = UploadChannels(self, policy, upload_poll_timeout)

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
    async def http_request(
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
            self._token = answer.access_token
            self._refresh = answer.refresh_token
            self._token_expires = time.monotonic() + answer.expires_in
            return self._token

    def _password_grant(self) -> dict[str, str]:
        return {
            "grant_type": "password",
            "username": self.account.login,
            "password": self.account.password.get_secret_value(),
        }

    async def _oauth(self, form: dict[str, str]) -> OAuthToken:
        """One token request, never retried here: the request that needs the token is the
        outer call, retried as a whole (a retry in here too made up to 36 logins a call)."""
        client = f"{self.account.client_id}:{self.account.client_secret.get_secret_value()}"
        headers = {"Authorization": "Basic " + base64.b64encode(client.encode()).decode()}
        with unreachable("DRACOON unreachable"):
            async with self.http_request(
                "POST", f"{self._base}/oauth/token", data=form, headers=headers
            ) as response:
                body = await json_or_text(response)
                if response.status == 200 and isinstance(body, dict) and "access_token" in body:
                    return parse(OAuthToken, body, "login")
                reason = body.get("error", "error") if isinstance(body, dict) else "error"
                # OAuth answers refused credentials with 400 (RFC 6749 5.2): still refused ones
                kind = Unauthorised if reason in _REFUSED else kind_of_status(response.status)
                raise dracoon_error(
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
                raise error_of_answer(status, body, headers, f"{method} {shown_path(path)}")
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
        url = path if is_absolute(path) else f"{self._base}/api{path}"
        with unreachable(f"DRACOON unreachable during {method} {shown_path(path)}"):
            async with self.http_request(
                method, url, json=json, params=clean, headers=headers
            ) as response:
                return response.status, await json_or_text(response), response.headers

    async def call(
        self,
        model: type[W],
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        retry: bool = True,
    ) -> W:
        """:meth:`request`, its answer read as ``model`` (see :mod:`.dracoon_wire`)."""
        body = await self.request(method, path, json=json, params=params, retry=retry)
        return parse(model, body, f"{method} {shown_path(path)}")

    # -- capabilities and keys --

    async def system_info(self) -> SystemInfo:
        if self._system_info is None:
            self._system_info = await self.call(SystemInfo, "GET", "/v4/public/system/info")
        return self._system_info

    async def key_pair(self) -> UserKeyPair:
        """The key pair the server gives when no version is asked for: the one whose public
        key the uploader encrypts its own file key with."""
        if self._key_pair is None:
            path = "/v4/user/account/keypair"
            self._key_pair = parse(UserKeyPair, await self._keys_of_account(path), f"GET {path}")
        return self._key_pair

    async def key_pairs(self) -> list[UserKeyPair]:
        """Every key pair of the account (``requestUserKeyPairs``, API 4.24), one per version."""
        if self._key_pairs is None:
            path = "/v4/user/account/keypairs"
            pairs = await self._keys_of_account(path)
            if not pairs:
                raise self._no_key_pair()
            self._key_pairs = [parse(UserKeyPair, pair, f"GET {path}") for pair in pairs]
        return self._key_pairs

    async def _keys_of_account(self, path: str) -> Any:
        try:
            return await self.request("GET", path)
        except NotFound as exc:
            raise self._no_key_pair() from exc

    def _no_key_pair(self) -> DracoonError:
        return dracoon_error(
            NotFound,
            f"DRACOON account {self.account.login!r} has no key pair",
            status=404,
            code=NO_KEY_PAIR,
        )

    async def public_key_container(self) -> PublicKeyContainer:
        return (await self.key_pair()).public_key_container

    # -- nodes and rooms --

    async def nodes(self, parent_id: int, node_filter: str | None = None) -> AsyncIterator[Node]:
        offset = 0
        while True:
            params = {"parent_id": parent_id, "filter": node_filter, "offset": offset}
            page = await self.call(NodeList, "GET", "/v4/nodes", params={**params, "limit": PAGE})
            for item in page.items:
                yield item
            offset += len(page.items)
            if not page.items or offset >= page.range.total:
                return

    async def child_named(
        self, parent_id: int, name: str, node_type: str | None = None
    ) -> Node | None:
        expression = f"name:eq:{name}" + (f"|type:eq:{node_type}" if node_type else "")
        async for node in self.nodes(parent_id, expression):
            if node.name == name and (node_type is None or node.type == node_type):
                return node
        return None

    async def ensure_room_path(self, parent_id: int, names: Sequence[str]) -> Node:
        """The room at ``names`` below ``parent_id``, creating each missing level.

        Concurrent creators in this process wait for each other (one lock per level); another
        process that wins the race makes our create fail with a name conflict, and we re-read.
        """
        node = await self.call(Node, "GET", f"/v4/nodes/{parent_id}")
        for name in names:
            lock = self._path_locks.setdefault((node.id, name), asyncio.Lock())
            async with lock:
                found = await self.child_named(node.id, name, "room")
                if found is None:
                    room = {"name": name, "parentId": node.id, "inheritPermissions": True}
                    try:
                        found = await self.call(Node, "POST", "/v4/nodes/rooms", json=room)
                    except Conflict:
                        found = await self.child_named(node.id, name, "room")
                        if found is None:
                            raise
            node = found
        return node

    async def remove_node(self, node_id: int) -> None:
        """Delete a node (a file goes to its room's recycle bin); one already gone is done."""
        with contextlib.suppress(NotFound):  # a retry after a lost answer finds it gone
            await self.request("DELETE", f"/v4/nodes/{node_id}")

    async def room_users(self, room_id: int) -> list[RoomUser]:
        users: list[RoomUser] = []
        offset = 0
        while True:
            page = await self.call(
                RoomUserList,
                "GET",
                f"/v4/nodes/rooms/{room_id}/users",
                params={"offset": offset, "limit": PAGE},
            )
            users.extend(page.items)
            offset += len(page.items)
            if not page.items or offset >= page.range.total:
                return users

    # -- file keys --

    async def missing_file_keys_page(
        self, *, offset: int = 0, room_id: int | None = None, file_id: int | None = None
    ) -> MissingKeys:
        params = {"offset": offset, "limit": KEYS_PER_REQUEST, "room_id": room_id}
        path = "/v4/nodes/missingFileKeys"
        return await self.call(MissingKeys, "GET", path, params={**params, "file_id": file_id})

    async def set_file_keys(self, items: Sequence[Mapping[str, Any]]) -> None:
        """Write file keys (``UserFileKeySetRequest`` items), a hundred a request."""
        for start in range(0, len(items), KEYS_PER_REQUEST):
            batch = [dict(item) for item in items[start : start + KEYS_PER_REQUEST]]
            await self.request("POST", "/v4/nodes/files/keys", json={"items": batch})

    async def user_file_key(self, file_id: int, version: str | None = None) -> FileKey:
        path = f"/v4/nodes/files/{file_id}/user_file_key"
        return await self.call(FileKey, "GET", path, params={"version": version})

    async def download(self, file_id: int, chunk_size: int = 1024 * 1024) -> AsyncIterator[bytes]:
        """The stored (encrypted) bytes of a file, as any DRACOON client fetches them."""
        link = await self.call(DownloadLink, "POST", f"/v4/nodes/files/{file_id}/downloads")
        async with self.http_request("GET", link.download_url) as response:
            if response.status >= 400:
                raise dracoon_error(
                    kind_of_status(response.status),
                    f"download answered {response.status}",
                    status=response.status,
                )
            async for piece in response.content.iter_chunked(chunk_size):
                yield piece
