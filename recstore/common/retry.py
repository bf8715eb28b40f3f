"""The one retry helper of recstore.

Every client retries the same way (rclone's ``pacer.Call`` idea): the caller supplies the call
and, where the remote needs it, its own ``should_retry``; the helper supplies backoff with full
jitter, honours a server's ``Retry-After`` and counts retries by remote and reason for
``/metrics``. Nothing else in the project writes a retry loop.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from recstore.common import metrics
from recstore.common.errors import RemoteError

T = TypeVar("T")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. The defaults suit one HTTP call to a remote that has a bad minute."""

    attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    deadline: float = 300.0
    max_retry_after: float = 120.0


DEFAULT_POLICY = RetryPolicy()


def is_transient(exc: BaseException) -> bool:
    """Retry what the client itself declared transient; everything else surfaces at once."""
    return isinstance(exc, RemoteError) and exc.transient


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header, in either of its forms (RFC 9110
    10.2.3): delay-seconds (``120``) or an HTTP-date (``Wed, 21 Oct 2015 07:28:00 GMT``),
    counted from ``now``. None when absent or unreadable: the caller's backoff then applies."""
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP-date is always GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class _Wait:
    """Full-jitter exponential backoff, but never shorter than the server's ``Retry-After``."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self._jitter = wait_random_exponential(multiplier=policy.base_delay, max=policy.max_delay)

    def __call__(self, state: RetryCallState) -> float:
        delay = self._jitter(state)
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RemoteError) and exc.retry_after is not None:
            delay = max(delay, min(exc.retry_after, self._policy.max_retry_after))
        return float(delay)


async def call_with_retry(
    fn: Callable[[], Awaitable[T]],
    *,
    remote: str,
    policy: RetryPolicy | None = None,
    should_retry: Callable[[BaseException], bool] = is_transient,
) -> T:
    """Await ``fn()`` until it succeeds, raises something not worth retrying, or the policy ends.

    ``fn`` is a zero-argument factory because a coroutine can be awaited only once; the last
    exception is re-raised unchanged so callers see the client's own typed error.
    """
    policy = policy or DEFAULT_POLICY

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        reason = exc.reason if isinstance(exc, RemoteError) else type(exc).__name__
        metrics.RETRIES.labels(remote=remote, reason=reason).inc()
        log.debug("retrying %s call (attempt %d, reason %s)", remote, state.attempt_number, reason)

    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.deadline),
        wait=_Wait(policy),
        retry=retry_if_exception(should_retry),
        before_sleep=before_sleep,
        reraise=True,
    )

    async def attempt() -> T:
        # tenacity awaits only coroutine functions; a lambda returning a coroutine is not one.
        return await fn()

    return await retrying(attempt)
