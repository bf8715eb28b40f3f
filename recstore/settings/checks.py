"""The cross-checks a model cannot make alone: what the enabled workers need, which buckets
are never a source, archive and VidyoReplay combinations. Each returns ``(key, message)``
problems so that every one is reported at once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from recstore.common.expiration import parse_expiration
from recstore.common.paths import check_template
from recstore.common.source_rules import SOURCE_BUCKETS_KEY, parse_rules
from recstore.settings.root import Settings
from recstore.settings.switches import AVAILABLE_WORKERS, SINGLETON_WORKERS, enabled_workers


def _instance_target_checks(settings: Settings) -> list[tuple[str, str]]:
    """The YAML's target templates and expirations, which are the operator's to fix.

    A fault of their own (an unknown variable, an absolute path, "2 yeers") would fail every
    job that uses them, so it stops the start instead. Configurator answers are not held to
    this: there a bad target fails, with its reason, only the jobs that use it.
    """
    problems: list[tuple[str, str]] = []
    for domain, instance in settings.instances.items():
        for i, target in enumerate(instance.recordings.dracoon.targets):
            for j, copy in enumerate(target.copy_to):
                key = f"instances.{domain}.recordings.dracoon.targets.{i}.copyTo.{j}"
                try:
                    check_template(copy.path)
                except ValueError as exc:
                    problems.append((f"{key}.path", str(exc)))
                try:
                    parse_expiration(copy.expiration)
                except ValueError as exc:
                    problems.append((f"{key}.expiration", str(exc)))
    return problems


def cross_checks(settings: Settings, workers: bool) -> list[tuple[str, str]]:
    """Rules that span sections, which field validators cannot see.

    ``workers`` false: a one-shot command, which runs no worker, is not held to what the
    workers need (a Kaltura command does not care whether the transfer queue is set up).
    """
    problems: list[tuple[str, str]] = []
    aws = settings.aws
    if (aws.access_key_id is None) != (aws.secret_access_key is None):
        missing = "aws.secretAccessKey" if aws.secret_access_key is None else "aws.accessKeyId"
        problems.append((missing, "give both aws.accessKeyId and aws.secretAccessKey, or neither"))
    http = settings.http
    if (http.status_user is None) != (http.status_password is None):
        missing = "http.statusPassword" if http.status_password is None else "http.statusUser"
        problems.append((missing, "give both http.statusUser and http.statusPassword, or neither"))
    if http.status_open and http.status_user is not None:
        problems.append(
            ("http.statusOpen", "the status page is either open or behind statusUser: not both")
        )
    problems += _instance_target_checks(settings)
    problems += _archive_checks(settings, workers)
    if workers:
        problems += _worker_checks(settings)
    return problems


def _worker_checks(settings: Settings) -> list[tuple[str, str]]:
    """What the workers the configuration turns on need to run."""
    problems: list[tuple[str, str]] = []
    transferer = settings.workers.file_transferer
    if transferer.enabled and "FileTransferer" in AVAILABLE_WORKERS:
        if transferer.count < 1:
            problems.append(("workers.FileTransferer.count", "must be at least 1 when enabled"))
        for key, value in (
            ("queue", transferer.queue),
            ("deadLetterQueue", transferer.dead_letter_queue),
        ):
            if not value.startswith(("http://", "https://")) and value not in settings.queues:
                problems.append(
                    (f"workers.FileTransferer.{key}", f"{value!r} is not a key of `queues`")
                )
        problems += _source_checks(settings)
    singletons = [name for name, _ in enabled_workers(settings) if name in SINGLETON_WORKERS]
    if singletons and settings.leases.enabled and not settings.leases.bucket:
        problems.append(
            (
                "leases.bucket",
                f"required while {', '.join(singletons)} runs "
                "(or set leases.enabled: false for a single replica)",
            )
        )
    sharer_on = settings.workers.dracoon_global_sharer.count > 0
    if sharer_on and not has_dracoon_account(settings):
        problems.append(
            (
                "workers.DracoonGlobalSharer.count",
                "no DRACOON account to serve: configure dracoon.*, instances or configurator.url "
                "(or set 0)",
            )
        )
    problems += _vidyo_checks(settings)
    for alias, key in enabled_workers(settings):
        if alias not in AVAILABLE_WORKERS:
            problems.append((f"workers.{alias}.{key}", "this worker is not in this version yet"))
    return problems


def protected_buckets(
    settings: Settings, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The buckets recstore writes itself, each with the key that names it, and the one its
    configuration (with every secret) was fetched from: never a source."""
    environ = os.environ if environ is None else environ
    fetched = environ.get("RECSTORE_CONFIG_S3_URI", "").removeprefix("s3://").split("/")[0]
    named = (
        ("RECSTORE_CONFIG_S3_URI", fetched),
        ("archive.bucket", settings.archive.bucket),
        ("leases.bucket", settings.leases.bucket),
    )
    return {bucket: key for key, bucket in reversed(named) if bucket}


def _source_checks(settings: Settings) -> list[tuple[str, str]]:
    """The FileTransferer copies and then deletes whatever a message names: it starts only
    with its sources listed, none of them a bucket recstore writes itself."""
    entries = settings.workers.file_transferer.source_buckets
    if entries is None:
        return [
            (
                SOURCE_BUCKETS_KEY,
                "required while the FileTransferer runs: list the buckets (or bucket/prefix) "
                "that job messages may name as their source, e.g. [recordings]",
            )
        ]
    if not entries:
        return [(SOURCE_BUCKETS_KEY, "names no bucket: no job could run (turn the worker off)")]
    protected = protected_buckets(settings)
    return [
        (SOURCE_BUCKETS_KEY, f"{rule.bucket!r} is {protected[rule.bucket]}: never a source")
        for rule in parse_rules(entries)
        if rule.bucket in protected
    ]


def _archive_checks(settings: Settings, for_workers: bool) -> list[tuple[str, str]]:
    """What the Archiver, Restorer and ArchiveActions workers need once one of them runs."""
    workers = settings.workers
    on = [
        name
        for name, enabled in (
            ("Archiver", workers.archiver.enabled),
            ("Restorer", workers.restorer.enabled),
            ("ArchiveActions", workers.archive_actions.enabled),
        )
        if enabled
    ]
    archive = settings.archive
    problems: list[tuple[str, str]] = []
    if archive.placeholder_video is not None and not archive.placeholder_video.is_file():
        problems.append(("archive.placeholderVideo", f"no such file: {archive.placeholder_video}"))
    if not on or not for_workers:
        return problems
    needed = f"required while {', '.join(on)} runs"
    kaltura = settings.kaltura
    for key, value in (
        ("kaltura.serviceUrl", kaltura.service_url),
        ("kaltura.partnerId", kaltura.partner_id),
        ("kaltura.adminSecret", kaltura.admin_secret),
        ("archive.bucket", archive.bucket),
    ):
        if value is None or value == "":
            problems.append((key, needed))
    for key, value in (("queue", archive.queue), ("deadLetterQueue", archive.dead_letter_queue)):
        if not value.startswith(("http://", "https://")) and value not in settings.queues:
            problems.append((f"archive.{key}", f"{value!r} is not a key of `queues`"))
    return problems


def _vidyo_checks(settings: Settings) -> list[tuple[str, str]]:
    """What VidyoSync needs once it runs: both ends of the sync."""
    if not settings.workers.vidyo_sync.enabled:
        return []
    vidyo, kaltura = settings.vidyo, settings.kaltura
    return [
        (key, "required while VidyoSync runs")
        for key, value in (
            ("vidyo.url", vidyo.url),
            ("vidyo.user", vidyo.user),
            ("vidyo.password", vidyo.password),
            ("kaltura.serviceUrl", kaltura.service_url),
            ("kaltura.partnerId", kaltura.partner_id),
            ("kaltura.adminSecret", kaltura.admin_secret),
        )
        if value is None or value == ""
    ]


def has_dracoon_account(settings: Settings) -> bool:
    """A DRACOON account to serve: the ``dracoon.*`` one, YAML instances', or those of the
    instances the configurator answers for (the ones whose jobs the daemon serves)."""
    dracoon = settings.dracoon
    return (
        bool(settings.instances)
        or bool(settings.configurator.url)
        or bool(dracoon.base_url and dracoon.login and dracoon.password)
    )
