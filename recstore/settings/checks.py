"""The cross-checks a model cannot make alone (pairs of keys, the instances' targets) and the
buckets that are never a source. Each returns ``(key, message)`` problems so that every one is
reported at once; what each worker needs is checked by its declaration (workers/registry.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from recstore.common.expiration import parse_expiration
from recstore.common.paths import check_template
from recstore.settings.root import Settings


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


def cross_checks(settings: Settings) -> list[tuple[str, str]]:
    """Rules that span sections, which field validators cannot see. What a worker needs to
    run is its own declaration's (:mod:`recstore.workers.registry`), asked only of the workers
    that run."""
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
    archive = settings.archive
    if archive.placeholder_video is not None and not archive.placeholder_video.is_file():
        problems.append(("archive.placeholderVideo", f"no such file: {archive.placeholder_video}"))
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
