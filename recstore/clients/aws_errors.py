"""Translation of botocore/aiobotocore failures into :class:`recstore.common.errors.RemoteError`.

Done once here for S3 and SQS so both clients agree on what is transient: throttling, 5xx,
timeouts and broken connections are; missing objects, refused credentials and failed
preconditions are not.

Two kinds of failure are the deployment's, not a job's, and are logged here, where they are
told apart, with seed 004's codes: credentials missing or refused (15003, "Amazon session
error") and an AWS setting that names what does not exist or lies elsewhere (15004, "Amazon
configuration error": a queue that does not exist, a bucket in another region, no region).
The caller's own line about the failure follows as before.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from recstore.common import events
from recstore.common.errors import RemoteError, transient_status

log = logging.getLogger(__name__)

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
#: Error codes of AWS refusing the credentials themselves (not a permission on a resource).
SESSION_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidToken",
        "UnrecognizedClientException",
    }
)
#: Error codes of an AWS setting that names something absent or elsewhere.
CONFIGURATION_CODES = frozenset(
    {
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
        "PermanentRedirect",
        "AuthorizationHeaderMalformed",
    }
)
_NO_SESSION = (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError)
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
    error = _translate(exc, remote, what)
    if isinstance(exc, _NO_SESSION) or error.code in SESSION_CODES:
        events.emit(log, events.AMAZON_SESSION_ERROR, "AWS credentials: %s", error, remote=remote)
    elif isinstance(exc, NoRegionError) or error.code in CONFIGURATION_CODES:
        events.emit(log, events.AMAZON_CONFIG_ERROR, "AWS configuration: %s", error, remote=remote)
    return error


def _translate(exc: BaseException, remote: str, what: str) -> RemoteError:
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
