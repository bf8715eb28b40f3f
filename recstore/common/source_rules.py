"""The grammar of allowed sources: S3 bucket names and ``bucket/prefix`` rules.

Settings check ``workers.FileTransferer.sourceBuckets`` with it at load, and the transfer
domain's :class:`recstore.transfer.sources.SourcePolicy` decides with it per job, so it lives
below both.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

SOURCE_BUCKETS_KEY = "workers.FileTransferer.sourceBuckets"
INSTANCE_SOURCE_BUCKETS_KEY = "recordings.source-buckets"

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def bucket_name_problem(value: str) -> str | None:
    """Why ``value`` is no S3 general purpose bucket name (legacy upper case refused); None
    when it is one. A full match: ``"recordings\\n"`` is refused, not read as ``recordings``."""
    if (
        not _BUCKET.fullmatch(value)
        or ".." in value
        or ".-" in value
        or "-." in value
        or value.startswith(_BUCKET_PREFIXES)
        or value.endswith(_BUCKET_SUFFIXES)
        or _is_ipv4_address(value)
    ):
        return (
            "is not a valid S3 bucket name (3-63 characters of a-z, 0-9, '.' and '-', "
            "starting and ending with a letter or digit, not an IP address)"
        )
    return None


def _is_ipv4_address(value: str) -> bool:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class SourceRule:
    """One allowed source: a bucket and a key prefix ("" for the whole bucket)."""

    bucket: str
    prefix: str = ""

    def allows(self, bucket: str, key: str) -> bool:
        return bucket == self.bucket and key.startswith(self.prefix)

    def __str__(self) -> str:
        return f"{self.bucket}/{self.prefix}" if self.prefix else self.bucket


def parse_rule(entry: str) -> SourceRule:
    """``bucket`` or ``bucket/prefix``; ValueError with the reason otherwise."""
    bucket, _, prefix = entry.partition("/")
    problem = bucket_name_problem(bucket)
    if problem is not None:
        raise ValueError(f"{entry!r}: the bucket {problem}")
    if any(not char.isprintable() for char in prefix):
        raise ValueError(f"{entry!r}: the key prefix holds a control or invisible character")
    return SourceRule(bucket, prefix)


def parse_rules(entries: Sequence[str]) -> tuple[SourceRule, ...]:
    """Every entry as a rule; the first entry's fault otherwise (ValueError)."""
    return tuple(parse_rule(entry) for entry in entries)
