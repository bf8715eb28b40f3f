"""What the archive tests share: an in-process Kaltura stand-in, seeding, and state snapshots."""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import boto3
from pydantic import SecretStr

from recstore.clients.kaltura import KalturaClient
from recstore.clients.kaltura_types import KalturaMediaEntry
from recstore.common.retry import RetryPolicy
from recstore.devstack.kaltura import KalturaStandIn
from recstore.devstack.stack import serving
from recstore.settings import KalturaSettings

FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)
MiB = 1024 * 1024
T0 = 1_500_000_000
ARCHIVE_BUCKET = "kaltura-archive"


class StandIn:
    """A Kaltura stand-in served on this test's event loop (its store is at hand)."""

    def __init__(self, server: KalturaStandIn) -> None:
        self.server = server
        self.state = server.state_entries()
        self.url: str = self.state["kaltura_url"]

    def settings(self, **extra: Any) -> KalturaSettings:
        return KalturaSettings(
            service_url=self.url,
            partner_id=self.state["kaltura_partner_id"],
            admin_secret=SecretStr(self.state["kaltura_admin_secret"]),
            **extra,
        )

    async def seed(self, entries: list[dict[str, Any]]) -> None:
        await seed_entries(self.url, entries)

    async def play(self, entry_id: str) -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{self.url}/_devstack/play", json={"entryId": entry_id}) as answer,
        ):
            assert answer.status == 200, await answer.text()

    async def snapshot(self) -> dict[str, Any]:
        return await kaltura_snapshot(self.url)


async def seed_entries(url: str, entries: list[dict[str, Any]]) -> None:
    """Seed ``entries`` (see :func:`entry`) into the Kaltura stand-in at ``url``: a test's own
    (:class:`StandIn`) or the dev stack's (``state["kaltura_url"]``)."""
    async with aiohttp.ClientSession() as session:
        body = io.BytesIO(json.dumps({"entries": entries}).encode())
        answer = await session.post(
            f"{url}/_devstack/seed", data=body, headers={"Content-Type": "application/json"}
        )
        assert answer.status == 200, await answer.text()


async def kaltura_settings(url: str, **values: Any) -> None:
    """Set the Kaltura stand-in's behaviour (``conversionDelay``, ``callFaults``, ...)."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/_devstack/settings", json=values) as answer,
    ):
        assert answer.status == 200, await answer.text()


async def kaltura_snapshot(url: str) -> dict[str, Any]:
    """Everything the Kaltura stand-in at ``url`` holds: entries, flavors, upload tokens."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{url}/_devstack/state") as answer,
    ):
        state: dict[str, Any] = await answer.json()
        return state


@asynccontextmanager
async def stand_in(data_dir: Path, conversion_delay: float = 0.2) -> AsyncIterator[StandIn]:
    server = KalturaStandIn(data_dir, conversion_delay=conversion_delay)
    async with serving(server):
        yield StandIn(server)


def video(size: int) -> bytes:
    return os.urandom(size)


def entry(entry_id: str, content: bytes, **fields: Any) -> dict[str, Any]:
    """A seed entry whose original flavor holds ``content``; played long ago by default."""
    doc: dict[str, Any] = {
        "id": entry_id,
        "name": f"recording {entry_id}",
        "createdAt": T0,
        "lastPlayedAt": T0 + 86400,
        "plays": 2,
        "tags": "lecture",
        "flavors": [
            {"isOriginal": True, "content": base64.b64encode(content).decode()},
            {"isOriginal": False, "sizeInBytes": max(len(content) // 3, 1)},
        ],
    }
    doc.update(fields)
    return doc


async def original_bytes(client: KalturaClient, entry_id: str) -> bytes:
    """The entry's original flavor as Kaltura serves it now."""
    flavors = await client.flavors(entry_id)
    [original] = [f for f in flavors if f.is_original]
    url = await client.flavor_url(original.id)
    return b"".join([piece async for piece in client.download(url, MiB)])


def tags_of(entry: KalturaMediaEntry | dict[str, Any]) -> set[str]:
    """The tag words of an entry as the client reads it or as the stand-in's state holds it."""
    tags = entry.tags if isinstance(entry, KalturaMediaEntry) else entry.get("tags")
    return {t.strip() for t in (tags or "").split(",") if t.strip()}


async def moto_restore_transition(endpoint: str, times: int | None) -> None:
    """Make moto's Glacier restores take ``times`` lookups per step (None: immediate again)."""
    async with aiohttp.ClientSession() as session:
        if times is None:
            answer = await session.post(
                f"{endpoint}/moto-api/state-manager/unset-transition",
                json={"model_name": "s3::keyrestore"},
            )
        else:
            answer = await session.post(
                f"{endpoint}/moto-api/state-manager/set-transition",
                json={
                    "model_name": "s3::keyrestore",
                    "transition": {"progression": "manual", "times": times},
                },
            )
        assert answer.status in (200, 201), await answer.text()


async def bucket_snapshot(s3: Any, bucket: str) -> dict[str, Any]:
    """Every object with what a change would alter: size, ETag, class, restore, metadata."""
    snapshot: dict[str, Any] = {}
    paginator = s3.get_paginator("list_objects_v2")
    async for page in paginator.paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            head = await s3.head_object(Bucket=bucket, Key=item["Key"])
            snapshot[item["Key"]] = (
                head["ContentLength"],
                head["ETag"],
                head.get("StorageClass"),
                head.get("Restore"),
                head.get("Metadata"),
            )
    uploads = await s3.list_multipart_uploads(Bucket=bucket)
    snapshot["__multipart_uploads__"] = len(uploads.get("Uploads", []))
    return snapshot


def sync_s3(state: dict[str, Any]) -> Any:
    """A plain boto3 S3 client on the dev stack's S3, for a test's own checks and seeding."""
    return boto3.client(
        "s3",
        endpoint_url=state["s3_endpoint"],
        region_name=state["region"],
        aws_access_key_id=state["aws_access_key_id"],
        aws_secret_access_key=state["aws_secret_access_key"],
    )
