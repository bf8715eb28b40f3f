"""/metrics after real work: one transfer (through two injected DRACOON errors), one dead
letter, one run of the DracoonGlobalSharer under its lease. Every family recstore declares
must be in the scrape, with the values that work implies."""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.request

from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from recstore.common import metrics
from recstore.devstack.appconfig import DEMO_INSTANCE
from tests.dracoon_helpers import admin
from tests.transfer_helpers import Setup, job

MiB = 1024 * 1024
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> tuple[set[str], Samples]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    families: set[str] = set()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        families.add(family.name)
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return families, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def test_metrics_after_a_transfer_a_dead_letter_and_a_periodic_run(setup: Setup) -> None:
    size = 12 * MiB + 3
    [key] = setup.objects({"measured.mp4": size})
    # The first two part uploads answer 503: retried in place, counted by remote and reason.
    faults = {"error_rate": 1.0, "error_status": 503, "count": 2, "path_pattern": "^/_s3/"}
    asyncio.run(admin(setup.state, "faults", faults))
    setup.send(
        json.dumps(job(DEMO_INSTANCE, [key], [{"path": f"Measured {setup.tag}"}], meeting=5)),
        "this is not json",
    )
    started = time.time()
    setup.start(
        setup.config(
            daemon={"queueDepthInterval": "1s"}, leases={"prefix": f"metrics-test/{setup.tag}/"}
        )
    )
    setup.wait(lambda: setup.depth() == (0, 0) and setup.depth(dead=True)[0] == 1)
    found = re.search(r" 15000 .*http_port=(\d+)", setup.logs())
    assert found is not None
    port = int(found.group(1))
    work, dead = f"work-{setup.tag}", f"dlq-{setup.tag}"

    deadline = time.monotonic() + 20
    while True:  # the depth sampler runs every second; wait for the one after the dead letter
        families, samples = scrape(port)
        depth = samples.get(
            (
                "recstore_sqs_queue_messages",
                frozenset({"queue": dead, "role": "dead_letter", "state": "visible"}.items()),
            )
        )
        if depth == 1:
            break
        assert time.monotonic() < deadline, f"dead-letter depth never sampled as 1: {depth}"
        time.sleep(0.5)

    declared = {
        family.name
        for collector in vars(metrics).values()
        if isinstance(collector, MetricWrapperBase)
        for family in collector.describe()
    }
    assert len(declared) >= 15
    assert declared <= families, f"missing from /metrics: {sorted(declared - families)}"

    worker = "file_transferer"
    assert value(samples, "recstore_jobs_total", worker=worker, outcome="done") == 1
    assert value(samples, "recstore_jobs_total", worker=worker, outcome="dead_lettered") == 1
    assert value(samples, "recstore_jobs_total", worker=worker, outcome="retried") == 0
    assert value(samples, "recstore_jobs_total", worker=worker, outcome="handed_back") == 0
    assert value(samples, "recstore_jobs_in_flight", worker=worker) == 0
    assert value(samples, "recstore_transferred_bytes_total") == size
    assert value(samples, "recstore_transfer_duration_seconds_count") == 1
    assert 0 < value(samples, "recstore_transfer_duration_seconds_sum") < 60
    assert value(samples, "recstore_transfer_duration_seconds_bucket", le="+Inf") == 1
    assert value(samples, "recstore_sqs_received_messages_total", queue=work) == 2
    assert value(samples, "recstore_sqs_deleted_messages_total", queue=work) == 2
    assert value(samples, "recstore_sqs_dead_lettered_messages_total", queue=work) == 1
    assert value(samples, "recstore_retries_total", remote="dracoon", reason="503") == 2
    assert (
        value(samples, "recstore_sqs_queue_messages", queue=work, role="work", state="visible") == 0
    )
    sharer = "dracoon_global_sharer"
    for name in (worker, sharer):
        assert value(samples, "recstore_worker_restarts_total", worker=name) == 0
        assert value(samples, "recstore_worker_healthy", worker=name) == 1
        assert value(samples, "recstore_worker_running", worker=name) == 1
    assert value(samples, "recstore_lease_held", job=sharer) == 1
    assert value(samples, "recstore_periodic_runs_total", worker=sharer, outcome="success") >= 1
    assert value(samples, "recstore_periodic_runs_total", worker=sharer, outcome="failed") == 0
    last = value(samples, "recstore_periodic_last_success_timestamp_seconds", worker=sharer)
    assert started - 1 <= last <= time.time()


def test_queue_depths_cover_every_queue_consumer_that_runs_here() -> None:
    from recstore.runtime.queue_depth import watched_queues
    from recstore.settings import Settings

    base = "https://sqs.eu-central-1.amazonaws.com/123456789012/"
    queues = {n: base + n for n in ("recordings", "recordings-dlq", "archive", "archive-dlq")}

    def watched(workers: dict[str, object]) -> list[tuple[str, str]]:
        settings = Settings.model_validate({"queues": queues, "workers": workers})
        return [(q.name, q.role) for q in watched_queues(settings)]

    assert watched({"FileTransferer": {"enabled": False}}) == []
    assert watched({"FileTransferer": {"enabled": True}}) == [
        ("recordings", "work"),
        ("recordings-dlq", "dead_letter"),
    ]
    assert watched({"FileTransferer": {"enabled": False}, "ArchiveActions": {"enabled": True}}) == [
        ("archive", "work"),
        ("archive-dlq", "dead_letter"),
    ]
