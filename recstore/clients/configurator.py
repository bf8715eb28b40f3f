"""The configurator service: per-instance configuration over HTTP.

``GET {url}/instances/{domain}`` answers the instance's configuration, either nested
(``{"recordings": {"dracoon": {...}}}``) or with the seed's dotted keys
(``{"recordings.dracoon.parent-room-id": 42, ...}``); both are accepted. 404 with a JSON
body means the instance is unknown (:class:`~recstore.common.errors.UnknownInstance`, permanent for
its jobs). A 404 page that is not JSON comes from something in front of the configurator (an
ingress's default backend during a rollout) and says nothing about the instance: it is a
:class:`RemoteError` like anything else that fails, and the job is retried later. Only network
faults and 408/429/5xx are retried here, within the request (after the ``Retry-After`` it
names). Other answers are raised as the kind their status says (401/403
:class:`~recstore.common.errors.Unauthorised`, 429 :class:`~recstore.common.errors.Throttled`
...).
Answers are cached for ``configurator.cacheTtl`` so a busy queue does not hammer the service.

The answer is the instance's whole configuration, of which recstore reads ``recordings``; the
seed's configurator serves other sections beside it (``wrapup.*`` for the meeting's wrap-up
form), which are ignored, each named once per process in a debug line. ``recordings.dracoon.
targets`` is read as a list or as the JSON string the seed stores it as
(:class:`~recstore.settings.InstanceDracoon`).
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import quote

import aiohttp
from pydantic import ValidationError

from recstore.clients.http import connection_errors
from recstore.common.errors import (
    NotFound,
    RemoteError,
    UnknownInstance,
    kind_of_status,
    transient_status,
)
from recstore.common.retry import RetryPolicy, call_with_retry, parse_retry_after
from recstore.settings import ConfiguratorSettings, InstanceSettings

REMOTE = "configurator"
#: The sections of an instance's configuration that recstore reads.
USED_SECTIONS = frozenset(InstanceSettings.model_fields)

log = logging.getLogger(__name__)
#: Unused sections already named in a debug line, so a busy queue does not repeat them.
_unused_seen: set[str] = set()


class ConfiguratorClient:
    """Fetches and caches instance configuration; one aiohttp session for its lifetime."""

    def __init__(
        self,
        settings: ConfiguratorSettings,
        session: aiohttp.ClientSession,
        policy: RetryPolicy | None = None,
    ) -> None:
        if not settings.url:
            raise ValueError("configurator.url is not set")
        self._base = settings.url.rstrip("/")
        self._ttl = settings.cache_ttl
        self._timeout = aiohttp.ClientTimeout(total=settings.timeout)
        self._session = session
        self._policy = policy
        self._cache: dict[str, tuple[float, InstanceSettings]] = {}

    async def instance(self, domain: str, *, fresh: bool = False) -> InstanceSettings:
        """The domain's settings, from the cache unless ``fresh`` (a health probe asks the
        service itself)."""
        cached = self._cache.get(domain)
        if not fresh and cached is not None and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        settings = await call_with_retry(
            lambda: self._fetch(domain), remote=REMOTE, policy=self._policy
        )
        self._cache[domain] = (time.monotonic(), settings)
        return settings

    async def _fetch(self, domain: str) -> InstanceSettings:
        url = f"{self._base}/instances/{quote(domain, safe='')}"
        with connection_errors("configurator unreachable", REMOTE):
            async with self._session.get(url, timeout=self._timeout) as response:
                if response.status == 404 and response.content_type.endswith("json"):
                    raise UnknownInstance(
                        f"the configurator has no instance {domain!r}", remote=REMOTE, status=404
                    )
                if response.status != 200:
                    kind = kind_of_status(response.status)
                    if kind is NotFound:  # not JSON: not the configurator's word on the instance
                        kind = RemoteError
                    raise kind(
                        f"configurator answered {response.status} for instance {domain!r}",
                        remote=REMOTE,
                        status=response.status,
                        transient=transient_status(response.status),
                        retry_after=parse_retry_after(response.headers.get("Retry-After")),
                    )
                try:
                    document = await response.json(content_type=None)
                except ValueError:
                    raise RemoteError(
                        f"configurator's answer for {domain!r} is not JSON",
                        remote=REMOTE,
                        transient=False,
                    ) from None
        try:
            return InstanceSettings.model_validate(used_sections(unflatten(document), domain))
        except ValidationError as exc:
            fields = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors())
            raise RemoteError(
                f"configurator's answer for {domain!r} is invalid at: {fields}",
                remote=REMOTE,
                transient=False,
            ) from None


def used_sections(document: Any, domain: str) -> Any:
    """The answer without the sections recstore does not use; each is logged once (debug)."""
    if not isinstance(document, dict):
        return document
    unused = sorted(str(key) for key in document if key not in USED_SECTIONS)
    new = [section for section in unused if section not in _unused_seen]
    if new:
        _unused_seen.update(new)
        log.debug(
            "configurator's answer for %s carries sections recstore does not use, ignored: %s",
            domain,
            ", ".join(new),
        )
    return {key: value for key, value in document.items() if key in USED_SECTIONS}


def unflatten(document: Any) -> Any:
    """``{"a.b": 1}`` → ``{"a": {"b": 1}}``; nested documents pass through unchanged."""
    if not isinstance(document, dict):
        return document
    result: dict[str, Any] = {}
    for key, value in document.items():
        target = result
        parts = str(key).split(".")
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        last = parts[-1]
        value = unflatten(value)
        if isinstance(value, dict) and isinstance(target.get(last), dict):
            target[last].update(value)
        else:
            target[last] = value
    return result
