"""The transfer's :class:`~recstore.transfer.transferer.Destination`, over the DRACOON client.

Translation only: DRACOON's node JSON into the transfer's small types, and the job's marker
into the node's notes (searched among the room's files whose names start like the upload's,
since a name conflict may have renamed it to ``name (1).ext``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from recstore.clients.dracoon import ChannelRecord, DracoonClient
from recstore.crypto import UserPrivateKey
from recstore.transfer.transferer import Room, StoredFile


class DracoonDestination:
    def __init__(self, client: DracoonClient, channels: ChannelRecord | None = None) -> None:
        self.client = client
        #: Where the job's open upload channels are recorded (None: not recorded).
        self.channels = channels

    async def ensure_room_path(self, parent_id: int, names: Sequence[str]) -> Room:
        node = await self.client.ensure_room_path(parent_id, names)
        return Room(int(node["id"]), bool(node.get("isEncrypted")))

    async def files_marked(self, room_id: int, name: str, marker: str) -> list[StoredFile]:
        stem = name.rsplit(".", 1)[0] if "." in name else name
        found = []
        async for node in self.client.nodes(room_id, f"type:eq:file|name:cn:{stem}"):
            notes = str(node.get("notes") or "")
            if notes.startswith(marker):
                found.append(
                    StoredFile(
                        int(node["id"]), str(node["name"]), int(node.get("size") or 0), notes
                    )
                )
        return found

    async def upload(
        self,
        room: Room,
        name: str,
        size: int,
        chunks: AsyncIterator[memoryview],
        *,
        expire_at: datetime | None,
        marker: str,
        file_key: Callable[[], Mapping[str, Any]] | None,
    ) -> StoredFile:
        node = await self.client.upload(
            room.id,
            name,
            size,
            chunks,
            expire_at=expire_at,
            notes=marker,
            file_key=file_key,
            channels=self.channels,
        )
        return StoredFile(int(node["id"]), str(node["name"]), int(node.get("size") or 0))

    async def remove_file(self, file_id: int) -> None:
        await self.client.remove_node(file_id)

    async def own_public_key(self) -> Mapping[str, Any]:
        return await self.client.public_key_container()

    async def private_keys(self) -> Mapping[str, UserPrivateKey]:
        return await self.client.private_keys()

    async def missing_file_keys_page(
        self, *, offset: int = 0, room_id: int | None = None, file_id: int | None = None
    ) -> Mapping[str, Any]:
        return await self.client.missing_file_keys_page(
            offset=offset, room_id=room_id, file_id=file_id
        )

    async def set_file_keys(self, items: Sequence[Mapping[str, Any]]) -> None:
        await self.client.set_file_keys(items)
