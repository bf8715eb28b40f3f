"""Every Prometheus metric recstore exports, declared in one place.

Workers and clients import the metric they update from here, so ``/metrics`` and the README's
metrics table have one source. Names follow Prometheus conventions: a ``recstore_`` prefix,
base units, ``_total`` on counters.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
    "Queue jobs finished, by worker and outcome (done, retried, dead_lettered, handed_back).",
    ["worker", "outcome"],
)
SQS_RECEIVED = Counter(
    "recstore_sqs_received_messages_total", "Messages received from SQS.", ["queue"]
)
SQS_DELETED = Counter(
    "recstore_sqs_deleted_messages_total", "Messages deleted from SQS.", ["queue"]
)
SQS_DEAD_LETTERED = Counter(
    "recstore_sqs_dead_lettered_messages_total",
    "Messages sent to the dead-letter queue as permanent failures.",
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
