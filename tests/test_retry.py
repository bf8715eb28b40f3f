"""The one retry helper: transient errors retried with backoff, Retry-After honoured, others not."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from recstore.common import metrics
from recstore.common.errors import RemoteError
from recstore.common.retry import RetryPolicy, call_with_retry, parse_retry_after

FAST = RetryPolicy(attempts=4, base_delay=0.001, max_delay=0.01, deadline=10)


def counter(remote: str, reason: str) -> float:
    value = metrics.RETRIES.labels(remote=remote, reason=reason)._value.get()
    return float(value)


async def test_transient_errors_are_retried_until_success() -> None:
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise RemoteError("busy", remote="t1", status=503, transient=True)
        return "ok"

    before = counter("t1", "503")
    assert await call_with_retry(flaky, remote="t1", policy=FAST) == "ok"
    assert calls == 3
    assert counter("t1", "503") == before + 2


async def test_permanent_errors_surface_at_once() -> None:
    calls = 0

    async def refused() -> None:
        nonlocal calls
        calls += 1
        raise RemoteError("quota", remote="t2", status=507, code=-40200, transient=False)

    with pytest.raises(RemoteError) as caught:
        await call_with_retry(refused, remote="t2", policy=FAST)
    assert calls == 1
    assert caught.value.code == -40200


async def test_gives_up_after_the_attempts_with_the_last_error() -> None:
    calls = 0

    async def down() -> None:
        nonlocal calls
        calls += 1
        raise RemoteError(f"down {calls}", remote="t3", status=502, transient=True)

    with pytest.raises(RemoteError, match="down 4"):
        await call_with_retry(down, remote="t3", policy=FAST)
    assert calls == 4


async def test_retry_after_is_honoured() -> None:
    stamps: list[float] = []

    async def throttled() -> str:
        stamps.append(time.monotonic())
        if len(stamps) == 1:
            raise RemoteError("slow down", remote="t4", status=429, transient=True, retry_after=0.3)
        return "ok"

    assert await call_with_retry(throttled, remote="t4", policy=FAST) == "ok"
    assert stamps[1] - stamps[0] >= 0.3


async def test_a_lambda_returning_a_coroutine_is_awaited() -> None:
    calls = 0

    async def fetch(value: int) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RemoteError("reset", remote="t6", transient=True)
        return value

    assert await call_with_retry(lambda: fetch(7), remote="t6", policy=FAST) == 7
    assert calls == 2


async def test_other_exceptions_are_not_retried_by_default() -> None:
    calls = 0

    async def bug() -> None:
        nonlocal calls
        calls += 1
        raise KeyError("x")

    with pytest.raises(KeyError):
        await call_with_retry(bug, remote="t5", policy=FAST)
    assert calls == 1


def test_retry_after_is_read_in_both_its_forms() -> None:
    """RFC 9110 10.2.3: delay-seconds or an HTTP-date; an HTTP-date used to be dropped, and
    the client's own backoff (milliseconds) went before the time the server asked for."""
    now = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after("Mon, 07 Dec 2026 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("Mon, 07 Dec 2026 11:59:00 GMT", now) == 0.0  # already past
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("", now) is None


def test_a_dracoon_answer_with_an_http_date_retry_after_is_waited_for() -> None:
    from email.utils import format_datetime

    from recstore.clients.dracoon_wire import error_of_answer

    later = format_datetime(datetime.now(UTC) + timedelta(seconds=40), usegmt=True)
    error = error_of_answer(503, {"message": "busy"}, {"Retry-After": later}, "GET /v4/nodes")
    assert error.retry_after is not None
    assert 35 < error.retry_after <= 40
