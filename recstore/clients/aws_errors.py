"""Translation of botocore/aiobotocore failures into :class:`recstore.common.errors.RemoteError`.

Done once here for S3 and SQS so both clients agree on what is transient: throttling, 5xx,
timeouts and broken connections are; missing objects, refused credentials and failed
preconditions are not. Each answer is raised as the kind it means (:mod:`recstore.common.errors`):
``NoSuchKey`` and other 404s as :class:`NotFound` (a missing bucket as :class:`NoSuchBucket`, a
NotFound that is the deployment's fault), ``InvalidObjectState`` as :class:`ArchivedObject`,
412 as :class:`PreconditionFailed`, 409 as :class:`Conflict`, ``SlowDown``/429 as
:class:`Throttled`, ``AccessDenied``/403 and refused credentials as :class:`Unauthorised`, so
callers write ``except NotFound`` and never compare codes.

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
from recstore.common.errors import (
    ArchivedObject,
    Conflict,
    NotFound,
    PreconditionFailed,
    RemoteError,
    Throttled,
    Unauthorised,
    kind_of_status,
    transient_status,
)
from recstore.common.retry import parse_retry_after

log = logging.getLogger(__name__)

#: Error codes of AWS asking to slow down (S3 sends ``SlowDown`` with 503, SQS 400).
THROTTLING_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestThrottled",
        "AWS.SimpleQueueService.RequestThrottled",
    }
)
TRANSIENT_CODES = THROTTLING_CODES | {
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "InternalError",
    "ServiceUnavailable",
}
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


class NoSuchBucket(NotFound):
    """The bucket itself does not exist: a NotFound that is the deployment's, not a job's
    (a delete of a key already gone succeeds, one in a missing bucket does not)."""


#: The kind an error code means whatever its status (``InvalidObjectState`` comes with 403,
#: ``SlowDown`` with 503, SQS's missing queue with 400).
_KIND_OF_CODE: dict[str, type[RemoteError]] = {
    "NoSuchKey": NotFound,
    "NoSuchUpload": NotFound,
    "NoSuchVersion": NotFound,
    "NoSuchBucket": NoSuchBucket,
    "AWS.SimpleQueueService.NonExistentQueue": NotFound,
    "QueueDoesNotExist": NotFound,
    "InvalidObjectState": ArchivedObject,
    "PreconditionFailed": PreconditionFailed,
    "ConditionalRequestConflict": Conflict,
    "RestoreAlreadyInProgress": Conflict,
    "AccessDenied": Unauthorised,
    **dict.fromkeys(SESSION_CODES, Unauthorised),
    **dict.fromkeys(THROTTLING_CODES, Throttled),
}
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
        kind = _KIND_OF_CODE.get(code) or kind_of_status(status)
        headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        return kind(
            message,
            remote=remote,
            status=status,
            code=code,
            transient=transient,
            retry_after=parse_retry_after(headers.get("retry-after")),
        )
    if isinstance(exc, _NO_SESSION):
        return Unauthorised(f"{remote} {what} failed: {exc}", remote=remote, transient=False)
    if isinstance(exc, (*_NETWORK, TimeoutError, OSError)):
        return RemoteError(
            f"{remote} {what} failed: {type(exc).__name__}", remote=remote, transient=True
        )
    return RemoteError(f"{remote} {what} failed: {exc}", remote=remote, transient=False)
