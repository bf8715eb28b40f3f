"""Which S3 objects a job message may name as its source (issue 33 §1).

A job message names its own bucket and keys, and the FileTransferer copies them into DRACOON
and then deletes them. Whoever can write to the work queue could otherwise name any object the
daemon's credentials reach (the Kaltura archive, the lease bucket, another team's bucket) and
have it shared and destroyed. So a source must be allowed explicitly:

* ``workers.FileTransferer.sourceBuckets`` lists what any job may name: ``recordings`` (the
  whole bucket) or ``recordings/incoming/`` (keys under that prefix, compared as S3 and IAM
  compare prefixes: as plain text). Unset, nothing is allowed: the daemon refuses to start
  the FileTransferer, and ``recstore transfer`` refuses each job, naming the key.
* An instance's configuration may narrow it (``recordings.source-buckets``, from the
  configurator or ``instances:``): its jobs must then match both lists.
* The buckets recstore writes itself (``archive.bucket``, which also holds the run reports,
  and ``leases.bucket``) and the one its configuration came from (``RECSTORE_CONFIG_S3_URI``)
  are never a source, whatever either list says (``config.protected_buckets``).

A refused job is a :class:`PermanentJobError`: it goes to the dead-letter queue with the
reason, before anything is read or uploaded. The keys are not repeated in the reason (a file
name may carry personal data); the dead-letter queue keeps the message anyway.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from recstore.common.errors import PermanentJobError
from recstore.common.source_rules import (
    INSTANCE_SOURCE_BUCKETS_KEY,
    SOURCE_BUCKETS_KEY,
    SourceRule,
    parse_rules,
)


class SourceRefused(PermanentJobError):
    """The job names a source it may not: a bucket or key outside the allowed ones."""


class SourcePolicy:
    """Decides, before anything is read, whether a job may use its bucket and keys."""

    def __init__(self, allowed: Sequence[str] | None, protected: Mapping[str, str]) -> None:
        """``allowed``: the configured entries, None when unset; ``protected``: each bucket
        recstore writes itself, with the configuration key that names it."""
        self._allowed = None if allowed is None else parse_rules(allowed)
        self._protected = {bucket: key for bucket, key in protected.items() if bucket}

    def check(
        self, bucket: str, keys: Sequence[str], instance_allowed: Sequence[str] | None = None
    ) -> None:
        """Nothing when every key may be read (and removed); SourceRefused saying why."""
        if bucket in self._protected:
            raise SourceRefused(
                f"source bucket {bucket!r} is recstore's own ({self._protected[bucket]}) "
                "and never a source"
            )
        if self._allowed is None:
            raise SourceRefused(
                f"source bucket {bucket!r} is not allowed: {SOURCE_BUCKETS_KEY} is not set "
                "(list the buckets, or bucket/prefix, that job messages may name)"
            )
        self._check_list(bucket, keys, self._allowed, SOURCE_BUCKETS_KEY)
        if instance_allowed is not None:
            rules = parse_rules(instance_allowed)
            self._check_list(bucket, keys, rules, f"the instance's {INSTANCE_SOURCE_BUCKETS_KEY}")

    @staticmethod
    def _check_list(
        bucket: str, keys: Sequence[str], rules: Sequence[SourceRule], where: str
    ) -> None:
        if not any(rule.bucket == bucket for rule in rules):
            raise SourceRefused(f"source bucket {bucket!r} is not allowed by {where}")
        outside = [i for i, key in enumerate(keys) if not any(r.allows(bucket, key) for r in rules)]
        if outside:
            which = ", ".join(f"keys[{i}]" for i in outside[:5])
            prefixes = ", ".join(repr(r.prefix) for r in rules if r.bucket == bucket)
            raise SourceRefused(
                f"{which} of bucket {bucket!r} outside the key prefixes {where} allows ({prefixes})"
            )
