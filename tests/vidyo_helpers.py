"""What the VidyoReplay tests share: the SOAP stand-in on the test's loop, seeding, settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr

from recstore.common.retry import RetryPolicy
from recstore.devstack.stack import serving
from recstore.devstack.vidyo import VidyoStandIn
from recstore.settings import VidyoSettings

FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)


class VidyoServer:
    """A VidyoReplay stand-in served on this test's event loop, driven over its admin routes."""

    def __init__(self, server: VidyoStandIn) -> None:
        self.server = server
        self.state = server.state_entries()
        self.url: str = self.state["vidyo_url"]
        self.user: str = self.state["vidyo_user"]
        self.password: str = self.state["vidyo_password"]

    def settings(self, **extra: Any) -> VidyoSettings:
        return VidyoSettings(
            url=self.url, user=self.user, password=SecretStr(self.password), **extra
        )

    async def _post(self, route: str, document: Any) -> Any:
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{self.url}/_devstack/{route}", json=document) as answer,
        ):
            body = await answer.json()
            assert answer.status == 200, body
            return body

    async def seed(self, records: list[dict[str, Any]], **extra: Any) -> list[dict[str, Any]]:
        answer = await self._post("seed", {"records": records, **extra})
        created: list[dict[str, Any]] = answer["records"]
        return created

    async def configure(self, **settings: Any) -> None:
        await self._post("settings", settings)

    async def faults(self, **plan: Any) -> None:
        await self._post("faults", plan)

    async def snapshot(self) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{self.url}/_devstack/state") as answer,
        ):
            state: dict[str, Any] = await answer.json()
            return state


@asynccontextmanager
async def vidyo_stand_in(data_dir: Path) -> AsyncIterator[VidyoServer]:
    server = VidyoStandIn(data_dir)
    async with serving(server):
        yield VidyoServer(server)


def recording(n: int, **fields: Any) -> dict[str, Any]:
    """A seed record with every field of the spec's ``Record`` set."""
    doc: dict[str, Any] = {
        "id": n,
        "guid": f"00000000-0000-4000-8000-{n:012d}",
        "tenantName": "Default",
        "userName": "alice",
        "userFullName": "Alice Example",
        "dateCreated": 1_358_323_356 + n * 3600,
        "dateCreatedString": f"recording {n} start",
        "endTime": 1_358_323_356 + n * 3600 + 1800,
        "duration": "00:30:00",
        "resolution": "1280x720",
        "framerate": 30,
        "pin": None,
        "recordScope": "public",
        "title": f"Lecture {n}",
        "roomName": "Lecture Hall",
        "recorderId": "recorder-1",
        "webcast": False,
        "tags": "lecture",
        "comments": f"comments {n}",
        "locked": False,
        "externalPlaybackLink": None,
        "text": f"video bytes of recording {n} " * 40,
    }
    doc.update(fields)
    return doc
