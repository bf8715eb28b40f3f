"""Translation of botocore/aiobotocore failures into :class:`recstore.errors.RemoteError`.

Done once here for S3 and SQS so both clients agree on what is transient: throttling, 5xx,
timeouts and broken connections are; missing objects, refused credentials and failed
preconditions are not.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from recstore.errors import RemoteError, transient_status

TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "InternalError",
        "ServiceUnavailable",
        "Throttling",
        "ThrottlingException",
        "RequestThrottled",
        "AWS.SimpleQueueService.RequestThrottled",
    }
)
_NETWORK = (
    EndpointConnectionError,
    ConnectionClosedError,
    ConnectTimeoutError,
    ReadTimeoutError,
    ResponseStreamingError,
    aiohttp.ClientError,  # a body read straight from aiohttp (S3 ranged reads) breaking off
)


@contextmanager
def aws_errors(remote: str, what: str) -> Iterator[None]:
    """Re-raise AWS library failures inside the block as :class:`RemoteError`."""
    try:
        yield
    except (BotoCoreError, ClientError, aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise translate(exc, remote, what) from exc


def translate(exc: BaseException, remote: str, what: str) -> RemoteError:
    """A RemoteError for ``exc``; ``what`` names the operation (never a secret or a body)."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        transient = code in TRANSIENT_CODES or (status is not None and transient_status(status))
        message = f"{remote} {what} failed: {code}"
        if error.get("Message"):
            message += f" ({error['Message']})"
        return RemoteError(message, remote=remote, status=status, code=code, transient=transient)
    if isinstance(exc, (*_NETWORK, TimeoutError, OSError)):
        return RemoteError(
            f"{remote} {what} failed: {type(exc).__name__}", remote=remote, transient=True
        )
    return RemoteError(f"{remote} {what} failed: {exc}", remote=remote, transient=False)
