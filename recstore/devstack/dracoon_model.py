"""The DRACOON stand-in's data: users, rooms, files, file keys and uploads, and the rules the
real server applies to them (inherited room membership, encrypted sub-rooms, who lacks a key).

Kept apart from the HTTP layer (``dracoon.py``) so the rules read as rules. File bytes live on
disk under the stand-in's data folder, never in memory.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ALL_PERMISSIONS = (
    "manage",
    "read",
    "create",
    "change",
    "delete",
    "manageDownloadShare",
    "manageUploadShare",
    "readRecycleBin",
    "restoreRecycleBin",
    "deleteRecycleBin",
)
#: Encrypted file key version → key pair version.
KEY_PAIR_OF = {"A": "A", "RSA-4096/AES-256-GCM": "RSA-4096"}


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))


@dataclass
class User:
    id: int
    login: str
    password: str
    first_name: str
    last_name: str
    #: key pair version → (privateKeyContainer, publicKeyContainer)
    key_pairs: dict[str, tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=dict)

    def info(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "userType": "internal",
            "avatarUuid": f"avatar-{self.id}",
            "userName": self.login,
            "firstName": self.first_name,
            "lastName": self.last_name,
            "email": f"{self.login}@devstack.invalid",
        }


@dataclass
class Node:
    id: int
    type: str  # "room" | "file"
    name: str
    parent_id: int | None
    encrypted: bool
    created_by: int
    created_at: float = field(default_factory=time.time)
    inherit: bool = True
    members: dict[int, set[str]] = field(default_factory=dict)  # rooms: own grants
    size: int = 0
    notes: str = ""
    expire_at: str | None = None
    data: Path | None = None
    #: A file completed by S3 direct upload keeps its parts, in order, instead of one copy:
    #: concatenating them cost the stand-in a second write of every byte.
    parts: list[Path] = field(default_factory=list)


@dataclass
class Upload:
    id: str
    token: str
    user_id: int
    parent_id: int
    name: str
    size: int | None
    expire_at: str | None
    notes: str
    direct_s3: bool
    path: Path
    parts: dict[int, tuple[Path, str]] = field(default_factory=dict)
    status: str = "transfer"
    node_id: int | None = None
    error: dict[str, Any] | None = None
    received: int = 0
    #: S3 direct upload steps in the order the stand-in saw them ("url 2", "part 1", ...),
    #: so tests can check how a client orders its requests.
    steps: list[str] = field(default_factory=list)


class Model:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        (data_dir / "files").mkdir(parents=True, exist_ok=True)
        (data_dir / "uploads").mkdir(parents=True, exist_ok=True)
        self.users: dict[int, User] = {}
        self.nodes: dict[int, Node] = {}
        self.uploads: dict[str, Upload] = {}
        #: (file id, user id, key pair version) → encrypted file key JSON
        self.file_keys: dict[tuple[int, int, str], dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self.quota_bytes: int | None = None

    def next_id(self) -> int:
        return next(self._ids)

    # -- users ---------------------------------------------------------------------------

    def user_by_login(self, login: str) -> User | None:
        return next((u for u in self.users.values() if u.login == login), None)

    def add_user(self, login: str, password: str, first: str = "", last: str = "") -> User:
        user = User(self.next_id(), login, password, first or login, last or "Devstack")
        self.users[user.id] = user
        return user

    # -- rooms and permissions -------------------------------------------------------------

    def children(self, parent_id: int | None) -> list[Node]:
        return [n for n in self.nodes.values() if n.parent_id == parent_id]

    def remove(self, node: Node) -> None:
        """Remove a node and everything below it, and the bytes kept for its files."""
        for child in self.children(node.id):
            self.remove(child)
        for part in node.parts:
            part.unlink(missing_ok=True)
        if node.data is not None:  # the file's bytes, or the folder of its parts
            if node.data.is_dir():
                node.data.rmdir()
            else:
                node.data.unlink(missing_ok=True)
        del self.nodes[node.id]

    def room_of(self, node: Node) -> Node | None:
        return node if node.type == "room" else self.nodes.get(node.parent_id or -1)

    def permissions(self, room: Node | None, user_id: int) -> set[str]:
        """Effective permissions: the room's own grants, plus its parent's when it inherits."""
        granted: set[str] = set()
        while room is not None:
            granted |= room.members.get(user_id, set())
            if not room.inherit:
                break
            room = self.nodes.get(room.parent_id) if room.parent_id is not None else None
        return granted

    def members(self, room: Node) -> dict[int, set[str]]:
        return {uid: perms for uid in self.users if (perms := self.permissions(room, uid))}

    def add_room(
        self,
        name: str,
        parent: Node | None,
        creator: int,
        encrypted: bool,
        inherit: bool,
        admins: list[int] | None = None,
    ) -> Node:
        """A room; one that does not inherit gets ``admins`` (by default its creator) as
        its admins, with every permission."""
        room = Node(
            self.next_id(),
            "room",
            name,
            parent.id if parent else None,
            encrypted=encrypted or bool(parent and parent.encrypted),
            created_by=creator,
            inherit=inherit and parent is not None,
        )
        if parent is None or not inherit:
            for admin in [creator] if admins is None else admins:
                room.members[admin] = set(ALL_PERMISSIONS)
        self.nodes[room.id] = room
        return room

    def path_of(self, node: Node) -> str:
        names = []
        current: Node | None = node
        while current is not None:
            names.append(current.name)
            current = self.nodes.get(current.parent_id) if current.parent_id is not None else None
        return "/" + "/".join(reversed(names))

    # -- file keys ---------------------------------------------------------------------------

    def readers(self, file: Node) -> list[User]:
        room = self.room_of(file)
        return (
            [self.users[uid] for uid, perms in self.members(room).items() if "read" in perms]
            if room
            else []
        )

    def missing_keys(
        self, requester: User, room_id: int | None, file_id: int | None, user_id: int | None
    ) -> list[tuple[int, int, str]]:
        """(user, file, key pair version) that lack a key the requester could hand out."""
        missing = []
        for node in sorted(self.nodes.values(), key=lambda n: n.id):
            if node.type != "file" or not node.encrypted:
                continue
            if file_id is not None and node.id != file_id:
                continue
            if room_id is not None and not self._within(node, room_id):
                continue
            if not any(k[0] == node.id and k[1] == requester.id for k in self.file_keys):
                continue  # the requester cannot decrypt it, so cannot share it
            for reader in self.readers(node):
                if user_id is not None and reader.id != user_id:
                    continue
                for version in sorted(reader.key_pairs):
                    if (node.id, reader.id, version) not in self.file_keys:
                        missing.append((reader.id, node.id, version))
        return missing

    def _within(self, node: Node, room_id: int) -> bool:
        current = self.nodes.get(node.parent_id) if node.parent_id is not None else None
        while current is not None:
            if current.id == room_id:
                return True
            current = self.nodes.get(current.parent_id) if current.parent_id is not None else None
        return False

    def used_bytes(self) -> int:
        return sum(n.size for n in self.nodes.values() if n.type == "file")
