"""Event codes and log lines: the seed's codes, a code on every line, no secret in any line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from recstore.common import events

SEED_CODES = {
    15000: "info",
    15001: "info",
    15002: "alert",
    15003: "critical",
    15004: "critical",
    15005: "error",
    15006: "info",
    15007: "error",
    15008: "info",
    15009: "error",
    15010: "error",
    15011: "error",
    15012: "info",
    15013: "error",
    15014: "error",
    15015: "error",
    15016: "error",
    15017: "info",
    15018: "error",
}


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    yield buffer
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def test_seed_codes_with_their_levels() -> None:
    by_code = {e.code: e for e in events.ALL_EVENTS}
    assert {code: by_code[code].severity for code in SEED_CODES} == SEED_CODES
    assert len(by_code) == len(events.ALL_EVENTS), "an event code is used twice"


def test_json_lines_carry_code_worker_job_and_fields(stream: io.StringIO) -> None:
    events.setup_logging("info", "json", stream)
    worker = events.worker_var.set("file_transferer")
    job = events.job_var.set("acme/42")
    try:
        events.emit(logging.getLogger("t"), events.TRANSFER_STATUS, "uploaded %s", "x.mp4", size=10)
    finally:
        events.worker_var.reset(worker)
        events.job_var.reset(job)
    line = json.loads(stream.getvalue())
    assert line["code"] == 15006
    assert line["worker"] == "file_transferer"
    assert line["job_id"] == "acme/42"
    assert line["size"] == 10
    assert line["message"] == "uploaded x.mp4"
    assert line["level"] == "info"


def test_library_lines_get_a_code_too(stream: io.StringIO) -> None:
    events.setup_logging("info", "text", stream)
    logging.getLogger("somelib").warning("careful")
    assert " 15019 careful" in stream.getvalue()


def test_registered_secrets_never_reach_a_line(stream: io.StringIO) -> None:
    events.setup_logging("debug", "text", stream)
    events.register_secret("hunter2-very-secret")
    try:
        raise ValueError("login failed with hunter2-very-secret")
    except ValueError as exc:
        logging.getLogger("t").error("oops %s", "hunter2-very-secret", exc_info=exc)
    assert "hunter2-very-secret" not in stream.getvalue()
    assert "***" in stream.getvalue()


def test_a_workers_report_level_quiets_only_that_worker(stream: io.StringIO) -> None:
    events.setup_logging("info", "text", stream)
    events.set_worker_level("quiet_worker", "error")
    log = logging.getLogger("t")
    for worker in ("quiet_worker", "other_worker", None):
        token = events.worker_var.set(worker)
        try:
            events.emit(log, events.TRANSFER_STATUS, "status from %s", worker)
            events.emit(log, events.TRANSFER_ERROR, "failure from %s", worker)
        finally:
            events.worker_var.reset(token)
    lines = stream.getvalue()
    assert "status from quiet_worker" not in lines
    assert "failure from quiet_worker" in lines
    assert "status from other_worker" in lines
    assert "status from None" in lines


def test_each_event_is_counted_by_code_even_below_the_log_level(stream: io.StringIO) -> None:
    from recstore.common import metrics

    events.setup_logging("error", "text", stream)

    def count() -> float:
        return metrics.EVENTS.labels(code="15016")._value.get()  # type: ignore[no-any-return]

    before = count()
    events.emit(logging.getLogger("t"), events.GLOBAL_SHARER_ERROR, "a key skipped")
    events.emit(logging.getLogger("t"), events.GLOBAL_SHARER_ERROR, "another", level=logging.INFO)
    assert count() == before + 2
    assert stream.getvalue().count(" 15016 ") == 1  # the info one is below the level
