"""The exception tree of recstore, in one place.

::

    RecstoreError
    ├── ConfigError              bad configuration; the CLI exits 2 and names the key
    ├── RemoteError              a remote system answered badly or not at all
    │   │                        (.remote, .status, .code, .transient, .retry_after)
    │   ├── (a subclass per client that adds to it: DracoonError, KalturaError, VidyoError,
    │   │    LdapError; S3 and SQS raise RemoteError itself)
    │   └── UnknownInstance      the configurator has no configuration for a domain
    └── JobError                 a job cannot be done as asked
        └── PermanentJobError    retrying will not help: the message goes to the dead-letter queue

``CryptoError`` (in :mod:`recstore.crypto`) also derives from :class:`RecstoreError`.

Clients translate aiohttp, botocore and zeep errors into :class:`RemoteError` at their boundary
(``raise ... from exc``), so the rest of the code decides on ``.transient`` (and, for the
configurator, on :class:`UnknownInstance`) and never imports a transport library's
exceptions. Messages never carry secrets or personal data.
"""

from __future__ import annotations


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
