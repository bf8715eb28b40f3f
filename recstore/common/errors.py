"""The exception tree of recstore, in one place.

::

    RecstoreError
    ├── ConfigError              bad configuration; the CLI exits 2 and names the key
    ├── RemoteError              a remote system answered badly or not at all
    │   │                        (.remote, .status, .code, .transient, .retry_after)
    │   ├── NotFound             the object, node, entry or key is not there (404, NoSuchKey,
    │   │                        ENTRY_ID_NOT_FOUND)
    │   ├── Conflict             it exists already, or changed meanwhile (409)
    │   ├── PreconditionFailed   a conditional request's condition does not hold (412)
    │   ├── ArchivedObject       an S3 object in an archive storage class, not yet restored
    │   ├── Throttled            the remote asks us to slow down (429, SlowDown; .retry_after)
    │   ├── Unauthorised         the credentials are refused (401, 403, a Kaltura KS refused)
    │   ├── QuotaExceeded        the remote's storage is full (DRACOON's 507)
    │   ├── UnknownInstance      the configurator has no configuration for a domain
    │   └── (a subclass per client that adds protocol detail: DracoonError, KalturaError,
    │        VidyoError, LdapError; S3 and SQS raise the kinds above or RemoteError itself,
    │        a missing bucket as NoSuchBucket, a NotFound of clients.aws_errors)
    └── JobError                 a job cannot be done as asked
        └── PermanentJobError    retrying will not help: the message goes to the dead-letter queue

``CryptoError`` (in :mod:`recstore.crypto`) also derives from :class:`RecstoreError`.

Clients translate aiohttp, botocore and zeep errors into :class:`RemoteError` at their boundary
(``raise ... from exc``), choosing the kind of the answer, so the rest of the code decides with
``except NotFound`` or ``.transient`` (as httpx's exception tree lets its users do) and never
compares status codes or error code strings, nor imports a transport library's exceptions. A
client's own class (``DracoonError`` ...) and a kind combine by multiple inheritance where a
caller needs both (:func:`remote_error` builds one). Messages never carry secrets or personal
data.
"""

from __future__ import annotations

from typing import TypeVar


class RecstoreError(Exception):
    """Base class of every error recstore raises on purpose."""


class ConfigError(RecstoreError):
    """The configuration is unusable. ``problems`` holds one ``(key, message)`` per fault."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{key}: {msg}" for key, msg in problems))


class RemoteError(RecstoreError):
    """A call to a remote system failed.

    ``transient`` says whether the same call may succeed later (network trouble, 5xx, 429,
    timeouts); ``retry_after`` is the server's own hint in seconds, when it gave one.
    """

    def __init__(
        self,
        message: str,
        *,
        remote: str,
        status: int | None = None,
        code: int | str | None = None,
        transient: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.remote = remote
        self.status = status
        self.code = code
        self.transient = transient
        self.retry_after = retry_after

    @property
    def reason(self) -> str:
        """A short label for metrics: the status, the code, or the class name."""
        if self.status is not None:
            return str(self.status)
        if self.code is not None:
            return str(self.code)
        return type(self).__name__


class NotFound(RemoteError):
    """What the call names is not there: an S3 key or bucket, a DRACOON node, a Kaltura entry."""


class Conflict(RemoteError):
    """What the call would create exists already, or changed while it was asked (409)."""


class PreconditionFailed(RemoteError):
    """A conditional request's condition does not hold (412: ``If-Match``/``If-None-Match``)."""


class ArchivedObject(RemoteError):
    """An S3 object in an archive storage class (Glacier, Deep Archive) that is not restored:
    it cannot be read until a restore completes (S3's ``InvalidObjectState``)."""


class Throttled(RemoteError):
    """The remote asks to slow down (429, S3's ``SlowDown``); ``retry_after`` when it said."""


class Unauthorised(RemoteError):
    """The remote refuses the credentials (401, 403, an expired or refused Kaltura session)."""


class QuotaExceeded(RemoteError):
    """The remote's storage is full (DRACOON's 507): final until an operator makes room."""


class UnknownInstance(RemoteError):
    """The configurator has no configuration for a domain: the one answer of it that is final.

    Here, not in the configurator's client, because the rule that reads it (an unknown
    instance dead-letters its jobs, any other configurator failure retries them) is not a
    protocol matter.
    """


class JobError(RecstoreError):
    """A job failed; a plain JobError is worth another attempt later.

    ``retry_after`` (seconds) is when the job knows it is worth trying again (an entry lock
    of another worker runs out by then), instead of the queue's growing retry delay.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentJobError(JobError):
    """A job can never succeed as it stands (malformed message, unknown instance, ...)."""


#: 5xx answers that are the server's last word rather than an outage: Not Implemented, HTTP
#: Version Not Supported, Insufficient Storage (DRACOON's quota). Asking again changes nothing.
FINAL_5XX = frozenset({501, 505, 507})


def transient_status(status: int) -> bool:
    """Whether an HTTP answer is worth another attempt: a timeout, throttling, an outage."""
    return status in (408, 429) or (status >= 500 and status not in FINAL_5XX)


def kind_of_status(status: int | None) -> type[RemoteError]:
    """The kind of error an HTTP status says, :class:`RemoteError` when it says none."""
    return _KIND_OF_STATUS.get(status, RemoteError) if status is not None else RemoteError


E = TypeVar("E", bound=RemoteError)


def remote_error(base: type[E], kind: type[RemoteError], message: str, **fields: object) -> E:
    """An error that is both a client's own class (``base``) and a ``kind``, so a caller may
    catch either: ``DracoonError`` for everything DRACOON, ``NotFound`` for a missing node."""
    if kind is RemoteError or issubclass(base, kind):
        cls: type[E] = base
    elif issubclass(kind, base):
        cls = kind
    else:
        cls = _combined(base, kind)
    return cls(message, **fields)  # type: ignore[arg-type]


_COMBINED: dict[tuple[type[RemoteError], type[RemoteError]], type[RemoteError]] = {}


def _combined(base: type[E], kind: type[RemoteError]) -> type[E]:
    key = (base, kind)
    if key not in _COMBINED:
        _COMBINED[key] = type(f"{base.__name__}{kind.__name__}", (kind, base), {})
    return _COMBINED[key]  # type: ignore[return-value]  # made above as a subclass of base


_KIND_OF_STATUS: dict[int, type[RemoteError]] = {
    401: Unauthorised,
    403: Unauthorised,
    404: NotFound,
    409: Conflict,
    412: PreconditionFailed,
    429: Throttled,
    507: QuotaExceeded,
}
