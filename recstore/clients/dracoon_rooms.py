"""The transfer's :class:`~recstore.transfer.transferer.Destination`, over the DRACOON client.

Translation: DRACOON's nodes into the transfer's small types (:class:`Room`,
:class:`StoredFile`, defined here so that the transfer, above this layer, imports them and
this adapter satisfies its Protocol without importing it), and the job's marker
into the node's notes (searched among the room's files whose names contain the upload's stem,
since a name conflict may have renamed it to ``name (1).ext``: :func:`autorenamed`).

Room paths are remembered across jobs (:class:`RoomPaths`): looking one up costs a request per
level, every job, for rooms that rarely change. A room a user deleted is noticed at the first
call on it (DRACOON answers 404 for a parent that is gone), forgotten, and looked up again,
which creates it anew (:class:`RoomGone`); on a message's first delivery that call is the
upload channel's creation.

The account's private keys are unlocked above this layer (:class:`~recstore.transfer.keys.
AccountKeys`: the client only fetches them) and handed in as ``private_keys``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, NoReturn, TypeVar

from recstore.clients.dracoon import DracoonClient
from recstore.clients.dracoon_uploads import ChannelRecord, ParentNotFound
from recstore.clients.dracoon_wire import REMOTE, MissingKeys, Node
from recstore.common.errors import NotFound, RemoteError

#: An unlocked private key, of the type the caller unlocks it to (this layer decrypts nothing).
KeyT = TypeVar("KeyT")


@dataclass(frozen=True)
class Room:
    id: int
    encrypted: bool


class RoomGone(RemoteError):
    """A room known from an earlier job is gone (a user deleted it): the path is looked up
    again, which creates it anew (:meth:`~recstore.transfer.transferer.Transferer.run`)."""

    def __init__(self, room_id: int) -> None:
        super().__init__(f"dracoon room {room_id} no longer exists", remote=REMOTE, transient=True)


@dataclass(frozen=True)
class StoredFile:
    id: int
    name: str
    size: int
    notes: str = ""


#: Where a room path leads, per account: (server, login, parent room, names).
_PathKey = tuple[str, str, int, tuple[str, ...]]


class RoomPaths:
    """The rooms that room paths led to, shared by the jobs of a daemon.

    An entry lasts ``ttl`` seconds, so a room whose settings an administrator changed (its
    encryption) is seen again within minutes; a deleted one is forgotten at once when a job
    finds it gone (:meth:`forget_room`).
    """

    def __init__(self, ttl: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._rooms: dict[_PathKey, tuple[Room, float]] = {}

    def get(self, key: _PathKey) -> Room | None:
        found = self._rooms.get(key)
        if found is None or found[1] <= self._clock():
            return None
        return found[0]

    def put(self, key: _PathKey, room: Room) -> None:
        self._rooms[key] = (room, self._clock() + self._ttl)

    def forget_room(self, server: str, login: str, room_id: int) -> bool:
        """Forget the paths of the account that led to ``room_id``; whether any did."""
        gone = [
            key
            for key, (room, _) in self._rooms.items()
            if key[:2] == (server, login) and room.id == room_id
        ]
        for key in gone:
            del self._rooms[key]
        return bool(gone)


class DracoonDestination(Generic[KeyT]):
    """One account's rooms, files and file keys, as a transfer and the sharer use them."""

    def __init__(
        self,
        client: DracoonClient,
        private_keys: Callable[[], Awaitable[Mapping[str, KeyT]]],
        channels: ChannelRecord | None = None,
        rooms: RoomPaths | None = None,
    ) -> None:
        self.client = client
        self._private_keys = private_keys
        #: Where the job's open upload channels are recorded (None: not recorded).
        self.channels = channels
        self.rooms = rooms if rooms is not None else RoomPaths()

    @property
    def _account(self) -> tuple[str, str]:
        return self.client.account.base_url.rstrip("/"), self.client.account.login

    async def ensure_room_path(self, parent_id: int, names: Sequence[str]) -> Room:
        key = (*self._account, parent_id, tuple(names))
        room = self.rooms.get(key)
        if room is None:
            node = await self.client.ensure_room_path(parent_id, names)
            room = Room(node.id, bool(node.is_encrypted))
            self.rooms.put(key, room)
        return room

    async def files_named_like(self, room_id: int, name: str) -> list[StoredFile]:
        """The room's files whose names contain ``name``'s stem: the file itself, the names
        DRACOON gave copies it renamed (``name (1).ext``), and any other that matches;
        :class:`RoomGone` when the room, known from an earlier job, no longer exists."""
        found = []
        try:
            async for node in self.client.nodes(room_id, f"type:eq:file|name:cn:{_stem(name)}"):
                found.append(_stored(node))
        except NotFound as exc:
            self._gone(room_id, exc)
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
        part_size: int | None = None,
    ) -> StoredFile:
        """The new file; :class:`RoomGone` when DRACOON refuses the upload channel because the
        room, known from an earlier job, no longer exists (nothing was read or sent)."""
        try:
            node = await self.client.uploads.upload(
                room.id,
                name,
                size,
                chunks,
                expire_at=expire_at,
                notes=marker,
                file_key=file_key,
                channels=self.channels,
                part_size=part_size,
            )
        except ParentNotFound as exc:
            self._gone(room.id, exc)
        return _stored(node)

    def _gone(self, room_id: int, exc: NotFound) -> NoReturn:
        """Raise :class:`RoomGone` for a room a job knew (forgotten now), else ``exc``."""
        if self.rooms.forget_room(*self._account, room_id):
            raise RoomGone(room_id) from exc
        raise exc

    async def remove_file(self, file_id: int) -> None:
        await self.client.remove_node(file_id)

    async def own_public_key(self) -> Mapping[str, Any]:
        """The account's public key, as :func:`recstore.crypto.encrypt_file_key` reads it."""
        return (await self.client.public_key_container()).to_json()

    async def private_keys(self) -> Mapping[str, KeyT]:
        return await self._private_keys()

    async def missing_file_keys_page(
        self, *, offset: int = 0, room_id: int | None = None, file_id: int | None = None
    ) -> MissingKeys:
        return await self.client.missing_file_keys_page(
            offset=offset, room_id=room_id, file_id=file_id
        )

    async def set_file_keys(self, items: Sequence[Mapping[str, Any]]) -> None:
        await self.client.set_file_keys(items)


def autorenamed(name: str, taken: Collection[str]) -> str:
    """The name DRACOON gives a file uploaded as ``name`` (resolution ``autorename``) into a
    room whose files have the names ``taken``: ``name`` if free, else ``stem (n).ext`` with the
    smallest free ``n``."""
    if name not in taken:
        return name
    stem, dot, ext = name.rpartition(".")
    stem, ext = (stem, dot + ext) if dot else (name, "")
    counter = 1
    while f"{stem} ({counter}){ext}" in taken:
        counter += 1
    return f"{stem} ({counter}){ext}"


def _stem(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else name


def _stored(node: Node) -> StoredFile:
    return StoredFile(node.id, node.name, node.size or 0, node.notes or "")
