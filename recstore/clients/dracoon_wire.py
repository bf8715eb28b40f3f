"""What DRACOON answers, read at the client's boundary: its JSON as types, errors as kinds.

The models follow the API's OpenAPI description (``tests/data/specs/dracoon-api-v4.26.7.json``,
schema names in each docstring) with only the fields recstore reads: unknown fields are
ignored, so a newer DRACOON that adds some changes nothing, and names are the API's camelCase
as aliases. An answer that does not fit (a proxy's page, a field gone) is a transient
:class:`DracoonError` naming the request, not a KeyError deep in a caller. Key containers
travel on to :mod:`recstore.crypto` as the JSON it reads (:meth:`Wire.to_json`).

Every DRACOON module of this layer (:mod:`~recstore.clients.dracoon`, the upload channels
:mod:`~recstore.clients.dracoon_uploads`, the transfer's adapter
:mod:`~recstore.clients.dracoon_rooms`) decodes answers through here. An error answer becomes a
:class:`DracoonError` that is also of the kind its status says
(:func:`~recstore.common.errors.kind_of_status`: NotFound, Conflict, Throttled, QuotaExceeded,
Unauthorised ...), so callers decide with ``except NotFound``, never by comparing statuses. An
upload channel's token, a bearer secret, never appears in an error's text.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping
from typing import Any, TypeVar

import aiohttp
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from recstore.clients.http import connection_errors
from recstore.common.errors import RemoteError, kind_of_status, remote_error, transient_status
from recstore.common.retry import parse_retry_after

REMOTE = "dracoon"

# errorCodes worth naming (docs/design/dracoon.md)
NAME_CONFLICT = -40010
FILE_KEY_REQUIRED = -40763
S3_DIRECT_UPLOAD_ENFORCED = -90033
CHANNEL_CLOSED = -20503
NO_KEY_PAIR = -70020


class DracoonError(RemoteError):
    """A DRACOON call failed; ``error_code`` is the API's negative errorCode, when it sent one."""

    @property
    def error_code(self) -> int | None:
        return self.code if isinstance(self.code, int) else None


def dracoon_error(kind: type[RemoteError], message: str, **fields: Any) -> DracoonError:
    """A DracoonError that is also of ``kind`` (:func:`kind_of_status`: NotFound, Conflict,
    Throttled ...), so a caller catches whichever it decides by."""
    return remote_error(DracoonError, kind, message, remote=REMOTE, **fields)


def unreachable(what: str) -> contextlib.AbstractContextManager[None]:
    return connection_errors(what, REMOTE, DracoonError)


def is_absolute(path: str) -> bool:
    return path.startswith(("http://", "https://"))


def shown_path(path: str) -> str:
    """What a message may say of a request's path: an upload URL carries the channel's token,
    which lets anyone upload without logging in, so it is named, not shown."""
    return "the upload channel's uploadUrl" if is_absolute(path) else without_tokens(path)


async def json_or_text(response: aiohttp.ClientResponse) -> Any:
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
        return json.loads(raw)
    except ValueError:  # UnicodeDecodeError included
        if response.status < 400:
            raise DracoonError(
                f"DRACOON answered {response.status} with {response.content_type}, not JSON",
                remote=REMOTE,
                status=response.status,
                transient=True,
            ) from None
        return {"message": raw[:200].decode("utf-8", "replace")}


def error_of_answer(status: int, body: Any, headers: Mapping[str, str], what: str) -> DracoonError:
    """The answer's error, of the kind its status says (:func:`kind_of_status`): a
    DracoonError that is also NotFound, Conflict, Throttled, QuotaExceeded ..."""
    info = body if isinstance(body, dict) else {}
    error_code = info.get("errorCode")
    retry_after = parse_retry_after(headers.get("Retry-After"))
    return dracoon_error(
        kind_of_status(status),
        without_tokens(f"DRACOON {what} failed: {status} {info.get('message', '')}".strip()),
        status=status,
        code=error_code if isinstance(error_code, int) else None,
        transient=transient_status(status),
        retry_after=retry_after,
    )


#: A legacy upload channel's token, in its URL (``/api/v4/uploads/<token>``) or the completion's
#: path: a bearer secret for that channel, so never part of an error text (issue 33 §5).
_UPLOAD_TOKEN = re.compile(r"(/uploads/)[^/?#\s\"']+")


def without_tokens(text: str) -> str:
    """``text`` with every upload channel token masked, wherever an error text is made."""
    return _UPLOAD_TOKEN.sub(r"\1***", text)


# -- the answers recstore reads (OpenAPI schema names in the docstrings) --


class Wire(BaseModel):
    """A DRACOON JSON object: camelCase on the wire, unknown fields ignored, read-only."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )

    def to_json(self) -> dict[str, Any]:
        """The object as DRACOON writes it (what :mod:`recstore.crypto` reads)."""
        return self.model_dump(by_alias=True, exclude_none=True)


W = TypeVar("W", bound=BaseModel)


def parse(model: type[W], body: Any, what: str) -> W:
    """``body`` as ``model``; an answer that does not fit is a transient DracoonError."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        fields = ", ".join(".".join(map(str, e["loc"])) or "answer" for e in exc.errors()[:3])
        raise DracoonError(
            without_tokens(f"DRACOON {what} answered what its API does not describe ({fields})"),
            remote=REMOTE,
            transient=True,
        ) from None


class OAuthToken(BaseModel):
    """The token endpoint's answer (RFC 6749 5.1: snake_case, not the API's camelCase)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    access_token: str
    refresh_token: str | None = None
    expires_in: float = 3600.0


class Range(Wire):
    """``Range``."""

    offset: int = 0
    limit: int = 0
    total: int = 0


class Node(Wire):
    """``Node``: a room, folder or file."""

    id: int
    name: str
    type: str
    parent_id: int | None = None
    size: int | None = None
    notes: str | None = None
    is_encrypted: bool | None = None
    expire_at: str | None = None


class NodeList(Wire):
    """``NodeList``: one page of nodes."""

    range: Range = Range()
    items: list[Node] = []


class SystemInfo(Wire):
    """``SystemInfo``: which upload channel the server takes."""

    use_s3_storage: bool = False


class PublicKeyContainer(Wire):
    """``PublicKeyContainer``."""

    version: str
    public_key: str


class PrivateKeyContainer(Wire):
    """``PrivateKeyContainer``: a private key, locked with the encryption password."""

    version: str
    private_key: str


class UserKeyPair(Wire):
    """``UserKeyPairContainer``: one key pair of the account, one per version."""

    public_key_container: PublicKeyContainer
    private_key_container: PrivateKeyContainer


class FileKey(Wire):
    """``FileKey``: a file key encrypted for one key pair (``tag`` once the file is sealed)."""

    key: str
    iv: str
    version: str
    tag: str | None = None


class UserIdFileId(Wire):
    """``UserIdFileIdItem``: one user lacking one file's key."""

    user_id: int
    file_id: int


class UserPublicKey(Wire):
    """``UserUserPublicKey``."""

    id: int
    public_key_container: PublicKeyContainer | None = None


class FileFileKey(Wire):
    """``FileFileKeys``: a file key the account holds (one per key pair version)."""

    id: int
    file_key_container: FileKey | None = None


class MissingKeys(Wire):
    """``MissingKeysResponse``: a page of missing file keys, with what serving them needs."""

    range: Range = Range()
    items: list[UserIdFileId] = []
    users: list[UserPublicKey] = []
    files: list[FileFileKey] = []


class RoomUser(Wire):
    """``RoomUser``: a member of a room."""

    id: int
    login: str | None = None
    public_key_container: PublicKeyContainer | None = None


class RoomUserList(Wire):
    """``RoomUserList``."""

    range: Range = Range()
    items: list[RoomUser] = []


class UploadChannel(Wire):
    """``CreateFileUploadResponse`` (``token`` is deprecated since API 4.3: not read)."""

    upload_id: str
    upload_url: str


class UploadErrorDetails(Wire):
    """``ErrorResponse``: why DRACOON could not finish an upload (``code``: an HTTP status)."""

    code: int | None = None
    message: str | None = None
    error_code: int | None = None


class UploadStatus(Wire):
    """``S3FileUploadStatus``: ``transfer``, ``finishing``, ``done`` (with the node) or
    ``error`` (with its details)."""

    status: str
    node: Node | None = None
    error_details: UploadErrorDetails | None = None


class PresignedUrl(Wire):
    """``PresignedUrl``."""

    url: str
    part_number: int


class PresignedUrlList(Wire):
    """``PresignedUrlList``."""

    urls: list[PresignedUrl]


class DownloadLink(Wire):
    """``DownloadTokenGenerateResponse``."""

    download_url: str
