"""aiobotocore clients for S3 and SQS, built from ``aws.*`` in one place.

Endpoints for S3-compatible services (moto, MinIO, rclone) force path-style addressing, since
their host names carry no bucket. Throttling, 5xx and broken connections are retried through
:mod:`recstore.common.retry` like every other remote, so botocore's own retries are off.
"""

from __future__ import annotations

import functools
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session
from botocore.loaders import Loader, create_loader

from recstore.clients.http import stall_limited_sockets
from recstore.settings import AwsSettings

Service = Literal["s3", "sqs"]


def endpoint_for(settings: AwsSettings, service: Service) -> str | None:
    specific = settings.s3_endpoint_url if service == "s3" else settings.sqs_endpoint_url
    return specific or settings.endpoint_url


def _s3_options(endpoint: str | None) -> dict[str, Any]:
    """Path-style for S3-compatible endpoints; no SHA-256 of request bodies for signing.

    botocore hashes every body it signs over plain ``http://`` (an S3-compatible service on
    the local network), in the event loop, which costs a core-second per few GB uploaded.
    Part uploads carry their own SHA-256 checksum and every other upload a CRC32 (botocore's
    default), so the server still refuses damaged bytes; over ``https://`` this is what
    botocore does anyway.
    """
    options: dict[str, Any] = {"payload_signing_enabled": False}
    if endpoint:
        options["addressing_style"] = "path"
    return options


def _verify(endpoint: str | None, ca_bundle: Path | None = None) -> bool | str | None:
    """False for plain http without a proxy: no certificate to check, and botocore's default
    would still load the CA bundle on a worker thread for the first request (measured: a fresh
    daemon's first S3 HEAD, in its first job, 47 → 8-11 ms). With a proxy, its TLS connection
    keeps botocore's checks. ``aws.caBundle``, when set, is the bundle checked against."""
    if endpoint and endpoint.startswith("http://") and not urllib.request.getproxies():
        return False
    return str(ca_bundle) if ca_bundle is not None else None


@functools.cache
def _loader(data_path: str | None) -> Loader:
    """botocore's reader of its service models, one per process (per ``AWS_DATA_PATH``).

    Each botocore session makes its own and parses the models again, about 0.05-0.2 CPU-s
    per client (the endpoints, the service's model and rules); recstore opens a client per
    use, so the parsed models are kept here. The loader holds read-only data, no
    credentials and nothing bound to an event loop or thread.
    """
    return create_loader(data_path)


def _session() -> AioSession:
    """A new session (its credentials and state its own) sharing the process's :func:`_loader`."""
    session = get_session()
    session.register_component("data_loader", _loader(session.get_config_variable("data_path")))
    return session


@asynccontextmanager
async def aws_client(
    settings: AwsSettings,
    service: Service,
    *,
    max_pool_connections: int = 10,
    read_timeout: float = 60.0,
) -> AsyncIterator[Any]:
    """An open client for ``service``; closed (connections released) on exit."""
    endpoint = endpoint_for(settings, service)
    config = AioConfig(
        region_name=settings.region,
        retries={"mode": "standard", "total_max_attempts": 1},  # recstore.common.retry retries
        connect_timeout=10,
        read_timeout=read_timeout,
        max_pool_connections=max_pool_connections,
        s3=_s3_options(endpoint),
        # an upload the server stops reading fails after read_timeout, as a silent answer does
        connector_args={"socket_factory": stall_limited_sockets(read_timeout)},
    )
    secret = settings.secret_access_key.get_secret_value() if settings.secret_access_key else None
    async with _session().create_client(
        service,
        region_name=settings.region,
        endpoint_url=endpoint,
        verify=_verify(endpoint, settings.ca_bundle),
        aws_access_key_id=settings.access_key_id,
        aws_secret_access_key=secret,
        config=config,
    ) as client:
        yield client
