"""Event codes and logging: one place for both, so every log line carries a code.

The codes 15000-15018 are seed 004's ("Recording Storage: 15000-15999"), with its levels and
meanings; codes from 15019 on were added by recstore. Monitoring rules key on the code, so a
code's meaning never changes once released.

Logging writes one event per line, ``text`` for terminals and journald or ``json`` for log
shippers, each with timestamp, level, event code, worker and job id (from context variables
the worker sets, so call sites need not pass them). Every secret value the configuration holds
is registered with :func:`register_secret` and replaced by ``***`` in every line, whatever
code wrote it — a second line of defence behind ``SecretStr``.
"""

from __future__ import annotations

import collections
import contextvars
import json
import logging
import sys
import time
from dataclasses import dataclass
from typing import Any, TextIO

from pydantic import BaseModel, SecretStr

from recstore.common import metrics

#: The worker a log line comes from; set by the supervisor for each worker's task.
worker_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("worker", default=None)
#: The job a log line is about; set by a worker around each job.
job_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("job", default=None)

_LEVELS = {
    "info": logging.INFO,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "alert": logging.CRITICAL,  # syslog's "alert" is above critical; Python stops at CRITICAL
    "warning": logging.WARNING,
}


@dataclass(frozen=True)
class Event:
    """One event code: its number, its seed severity and what it means."""

    code: int
    severity: str
    meaning: str
    #: When recstore logs it, for the README's table; a seed code recstore never has occasion
    #: to log says so there.
    occasion: str = ""

    @property
    def level(self) -> int:
        return _LEVELS[self.severity]


START_APPLICATION = Event(
    15000,
    "info",
    "Start application",
    occasion="The daemon (`recstore run`) started.",
)
START_CLI = Event(
    15001,
    "info",
    "Start CLI application",
    occasion=(
        "A one-shot command started: `transfer`, `share-keys`, `vidyo sync`, `vidyo "
        "setup-metadata`."
    ),
)
CONFIG_LOAD_FAILED = Event(
    15002,
    "alert",
    "Application (or worker) can not load config for workers",
    occasion=(
        "`recstore run` does not start: its configuration has problems (each one a 15018 "
        "line before it)."
    ),
)
AMAZON_SESSION_ERROR = Event(
    15003,
    "critical",
    "Amazon session error",
    occasion="AWS credentials missing or refused (S3, SQS).",
)
AMAZON_CONFIG_ERROR = Event(
    15004,
    "critical",
    "Amazon configuration error",
    occasion=(
        "An AWS setting names what does not exist or lies elsewhere: a queue that does "
        "not exist, a bucket in another region, no region."
    ),
)
SQS_ERROR = Event(
    15005,
    "error",
    "SQS error",
    occasion="An SQS receive, delete, send or visibility change failed.",
)
TRANSFER_STATUS = Event(
    15006,
    "info",
    "Transferer status",
    occasion="A transfer's steps and outcome (uploaded, job done).",
)
TRANSFER_ERROR = Event(
    15007,
    "error",
    "Transferer error",
    occasion="A transfer job failed (DRACOON, the message): retried or dead-lettered.",
)
WORKER_PROFILING = Event(
    15008,
    "info",
    "Worker profiling",
    occasion=(
        "A periodic worker's run ended, with its duration (DracoonGlobalSharer, "
        "VidyoSync, Archiver, Restorer)."
    ),
)
AMAZON_TO_DRACOON_ERROR = Event(
    15009,
    "error",
    "AmazonToDracoon error",
    occasion="Copying a recording from S3 into DRACOON failed.",
)
REST_CLIENT_ERROR = Event(
    15010,
    "error",
    "REST client error",
    occasion="Cancelling a failed DRACOON upload failed.",
)
STORAGE_ERROR = Event(
    15011,
    "error",
    "Storage error",
    occasion=(
        "S3 refused or failed a transfer's source (the job's line, retried); a multipart "
        "upload could not be aborted."
    ),
)
STORAGE_STATUS = Event(
    15012,
    "info",
    "Storage status",
    occasion="A transfer's S3 source was removed once every target held it.",
)
INSTANCE_JOB_RUNNER_ERROR = Event(
    15013,
    "error",
    "InstanceJobRunner error",
    occasion=(
        "A job's instance has no usable configuration: unknown, configurator down or "
        "refusing, no target for the meeting type."
    ),
)
HEALTHCHECK_ERROR = Event(
    15014,
    "error",
    "HealthCheck error",
    occasion="`/healthcheck` answered unhealthy.",
)
WORKER_ERROR = Event(
    15015,
    "error",
    "Worker error",
    occasion="A worker crashed or stopped; a lease renewal or a periodic run failed.",
)
GLOBAL_SHARER_ERROR = Event(
    15016,
    "error",
    "DracoonGlobalSharer error",
    occasion="Key sharing failed for an account or a file.",
)
GLOBAL_SHARER_STATUS = Event(
    15017,
    "info",
    "DracoonGlobalSharer status",
    occasion="A key-sharing run's counts.",
)
CONFIGURATION_ERROR = Event(
    15018,
    "error",
    "Configuration error",
    occasion="A configuration problem, one line per key, before the command exits 2.",
)
# Added by recstore.
LIBRARY_MESSAGE = Event(15019, "info", "Message from a library (level as logged)")
WORKER_STATUS = Event(15020, "info", "Worker status (started, stopped, restarted, healthy)")
STOP_APPLICATION = Event(15021, "info", "Stop application (drain started, drain finished)")
ARCHIVE_STATUS = Event(15022, "info", "Archive action status (an entry's outcome)")
ARCHIVE_ERROR = Event(15023, "error", "Archive action error (an entry's action failed)")
ARCHIVE_PLAN = Event(15024, "info", "Archive or restore run planned (entries enqueued)")
VIDYO_SYNC_STATUS = Event(15025, "info", "VidyoSync cycle status (started, counts, finished)")
VIDYO_SYNC_RECORDING = Event(15026, "info", "VidyoSync recording step done (SUCCESS lines)")
VIDYO_SYNC_ERROR = Event(
    15027, "error", "VidyoSync error (a recording, a batch or the cycle failed; retried next cycle)"
)

ALL_EVENTS: tuple[Event, ...] = tuple(
    value for value in list(globals().values()) if isinstance(value, Event)
)

_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Redact ``value`` from every log line from now on (values under 4 characters are not)."""
    if value and len(value) >= 4:
        _secrets.add(value)


def register_secrets_in(value: Any) -> None:
    """Register every ``SecretStr`` found in ``value`` (settings, or a configurator's answer).

    Walking the model rather than naming fields means a secret field added later is covered
    without anyone remembering this place.
    """
    if isinstance(value, SecretStr):
        register_secret(value.get_secret_value())
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            register_secrets_in(getattr(value, name))
    elif isinstance(value, dict):
        for item in value.values():
            register_secrets_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            register_secrets_in(item)


def redact(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return text


def emit(
    logger: logging.Logger,
    event: Event,
    message: str,
    *args: object,
    level: int | None = None,
    exc_info: bool | BaseException | None = None,
    **fields: Any,
) -> None:
    """Log ``message`` under ``event``; ``fields`` become key=value (text) or JSON members.

    Callers pass identifiers, sizes and durations as fields, never personal data or secrets.
    Each event is counted by code (``recstore_events_total``), for alert rules.
    """
    metrics.EVENTS.labels(code=str(event.code)).inc()
    logger.log(
        event.level if level is None else level,
        message,
        *args,
        exc_info=exc_info,
        extra={"event": event, "fields": fields},
    )


class _Formatter(logging.Formatter):
    def __init__(self, as_json: bool) -> None:
        super().__init__()
        self._json = as_json

    def format(self, record: logging.LogRecord) -> str:
        event: Event = getattr(record, "event", LIBRARY_MESSAGE)
        fields: dict[str, Any] = dict(getattr(record, "fields", {}))
        worker = fields.pop("worker", None) or worker_var.get()
        job = fields.pop("job_id", None) or job_var.get()
        timestamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        timestamp += f".{int(record.msecs):03d}Z"
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        if self._json:
            doc: dict[str, Any] = {
                "ts": timestamp,
                "level": record.levelname.lower(),
                "code": event.code,
                "event": event.meaning,
                "logger": record.name,
                "worker": worker,
                "job_id": job,
                "message": message,
            }
            doc.update(fields)
            line = json.dumps(doc, default=str, ensure_ascii=False)
        else:
            context = "".join(
                f" {key}={value}" for key, value in (("worker", worker), ("job", job)) if value
            )
            extras = "".join(f" {key}={value}" for key, value in fields.items())
            line = f"{timestamp} {record.levelname:<8} {event.code}{context} {message}{extras}"
        return redact(line)


class RecentFailures(logging.Handler):
    """Keeps the last errors (code, worker, job, message) for the status page."""

    def __init__(self, size: int = 20) -> None:
        super().__init__(logging.ERROR)
        self.records: collections.deque[dict[str, Any]] = collections.deque(maxlen=size)

    def emit(self, record: logging.LogRecord) -> None:
        event: Event = getattr(record, "event", LIBRARY_MESSAGE)
        self.records.append(
            {
                "time": record.created,
                "code": event.code,
                "worker": worker_var.get(),
                "job_id": job_var.get(),
                "message": redact(record.getMessage()),
            }
        )


#: The daemon's recent failures; installed on the root logger by :func:`setup_logging`.
RECENT_FAILURES = RecentFailures()


#: Per-worker thresholds (``workers.<Name>.reportLevel``), worker name → level number.
_worker_levels: dict[str, int] = {}


def set_worker_level(worker: str, level: str) -> None:
    """Write only lines of ``level`` and above from ``worker``'s tasks.

    A busy transfer pool writes several status lines per job; an operator who only wants its
    failures sets ``reportLevel: error`` without silencing the other workers. This raises the
    bar above ``logger.level`` and never lowers it; the status page's recent failures keep
    everything.
    """
    _worker_levels[worker] = logging.getLevelNamesMapping()[level.upper()]


def _worker_level_filter(record: logging.LogRecord) -> bool:
    worker = getattr(record, "fields", {}).get("worker") or worker_var.get()  # as the line says
    return worker is None or record.levelno >= _worker_levels.get(worker, logging.NOTSET)


def setup_logging(level: str = "info", fmt: str = "text", stream: TextIO | None = None) -> None:
    """Configure the root logger once for the daemon or a CLI command (idempotent)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_Formatter(as_json=fmt == "json"))
    handler.addFilter(_worker_level_filter)
    _worker_levels.clear()  # each worker sets its own again when it starts
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.addHandler(RECENT_FAILURES)
    root.setLevel(logging.getLevelNamesMapping()[level.upper()])
    # Chatty libraries log at INFO about every request; their warnings still come through.
    for name in ("aiobotocore", "botocore", "aiohttp.access", "urllib3", "zeep", "httpx"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
