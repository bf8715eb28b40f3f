"""Every Prometheus metric recstore exports, declared in one place.

Workers and clients import the metric they update from here, so ``/metrics`` and the README's
metrics table have one source. Names follow Prometheus conventions: a ``recstore_`` prefix,
base units, ``_total`` on counters.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

# ``*_created`` series double the output and no dashboard or alert of ours reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]  # (the library lacks annotations)

RETRIES = Counter(
    "recstore_retries_total",
    "Calls to a remote that were retried, by remote and reason (HTTP status, error code).",
    ["remote", "reason"],
)
WORKER_RESTARTS = Counter(
    "recstore_worker_restarts_total",
    "Times the supervisor restarted a worker after it crashed.",
    ["worker"],
)
WORKER_HEALTHY = Gauge(
    "recstore_worker_healthy",
    "1 while the worker is healthy, 0 while it crash-loops or cannot reach a dependency.",
    ["worker"],
)
WORKER_RUNNING = Gauge(
    "recstore_worker_running",
    "1 while the worker's task is alive.",
    ["worker"],
)
JOBS = Counter(
    "recstore_jobs_total",
    "Queue jobs finished, by worker and outcome "
    "(done, done_undeleted, retried, dead_lettered, handed_back).",
    ["worker", "outcome"],
)
SQS_RECEIVED = Counter(
    "recstore_sqs_received_messages_total",
    "Messages received from the work queue (label: the SQS queue's name).",
    ["queue"],
)
SQS_DELETED = Counter(
    "recstore_sqs_deleted_messages_total",
    "Messages deleted from the work queue: jobs done or moved to the dead-letter queue.",
    ["queue"],
)
SQS_DEAD_LETTERED = Counter(
    "recstore_sqs_dead_lettered_messages_total",
    "Messages of the work queue sent to its dead-letter queue as permanent failures.",
    ["queue"],
)
LEASE_HELD = Gauge(
    "recstore_lease_held", "1 while this replica holds the singleton lease of the job.", ["job"]
)
LAST_SUCCESS = Gauge(
    "recstore_periodic_last_success_timestamp_seconds",
    "When the periodic worker last finished a run without error (Unix time).",
    ["worker"],
)
BYTES_TRANSFERRED = Counter(
    "recstore_transferred_bytes_total", "Bytes of recordings uploaded to their destination."
)
TRANSFER_SECONDS = Histogram(
    "recstore_transfer_duration_seconds",
    "Time to stream, encrypt and upload one file to one target.",
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 3600, 7200),
)
JOBS_IN_FLIGHT = Gauge(
    "recstore_jobs_in_flight",
    "Queue jobs running now, by worker (each holds one SQS message hidden).",
    ["worker"],
)
PERIODIC_RUNS = Counter(
    "recstore_periodic_runs_total",
    "Runs of a periodic worker, by outcome (success, failed, lease_lost, crashed).",
    ["worker", "outcome"],
)
SQS_QUEUE_MESSAGES = Gauge(
    "recstore_sqs_queue_messages",
    "SQS's approximate message count of the work and dead-letter queues, sampled every "
    "daemon.queueDepthInterval; state is visible (waiting) or not_visible (being worked on).",
    ["queue", "role", "state"],
)
ARCHIVE_ACTIONS = Counter(
    "recstore_archive_actions_total",
    "Per-entry archive actions finished, by action (s3copy, replace-video, restore, repair) "
    "and outcome (DONE, DONE_BEFORE, WOULD_DO, SKIPPED, WAIT_GLACIER, WAIT, FAILED).",
    ["action", "outcome"],
)
ARCHIVE_BYTES = Counter(
    "recstore_archive_bytes_total",
    "Bytes of Kaltura originals moved, by direction (to_s3, to_kaltura).",
    ["direction"],
)
VIDYO_RECORDINGS = Counter(
    "recstore_vidyo_sync_recordings_total",
    "VidyoReplay recordings VidyoSync worked on, by outcome (imported, repaired, failed).",
    ["outcome"],
)
EVENTS = Counter(
    "recstore_events_total",
    "Events recstore logged, by event code (the README's table), whether or not "
    "logger.level writes the line: alerts key on codes without a log pipeline.",
    ["code"],
)
