"""Who gets a file key: the rules shared by the FileTransferer and the DracoonGlobalSharer.

Both hand out file keys the same way, so both use this module: the transferer right after an
upload (it still holds the plain file key), the sharer from the server's list of missing keys
(it first decrypts each file key with the account's private key). A user may hold several key
pairs (one per version); each gets its own encrypted copy. A key that cannot be made — a
corrupt public key, a file key that is not ours — is skipped with its reason and never stops
the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from recstore.crypto import (
    CryptoError,
    PlainFileKey,
    UserPrivateKey,
    decrypt_file_key,
    encrypt_file_key,
)


@dataclass(frozen=True)
class KeyGrant:
    """One encrypted file key for one user: an item of ``POST /v4/nodes/files/keys``."""

    file_id: int
    user_id: int
    file_key: Mapping[str, Any] = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"fileId": self.file_id, "userId": self.user_id, "fileKey": dict(self.file_key)}


@dataclass(frozen=True)
class Skipped:
    file_id: int | None
    user_id: int | None
    reason: str


@dataclass
class Grants:
    grants: list[KeyGrant] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def extend(self, other: Grants) -> None:
        self.grants.extend(other.grants)
        self.skipped.extend(other.skipped)


def grants_for_users(
    file_id: int, plain: PlainFileKey, users: Iterable[tuple[int, Sequence[Mapping[str, Any]]]]
) -> Grants:
    """Encrypt ``plain`` for every public key of every ``(user_id, public_key_containers)``."""
    result = Grants()
    for user_id, containers in users:
        for container in containers:
            try:
                encrypted = encrypt_file_key(plain, dict(container))
            except CryptoError as exc:
                result.skipped.append(Skipped(file_id, user_id, f"public key unusable: {exc}"))
                continue
            result.grants.append(KeyGrant(file_id, user_id, encrypted))
    return result


class MissingKeyResolver:
    """Turns pages of ``GET /v4/nodes/missingFileKeys`` into grants.

    Each file's key is decrypted once per run (the page lists it once per file, but a file can
    appear on several pages), which matters with thousands of users.
    """

    def __init__(
        self,
        private_key: UserPrivateKey | None = None,
        known: Mapping[int, PlainFileKey] | None = None,
    ) -> None:
        self.private_key = private_key
        self._plain: dict[int, PlainFileKey | str] = dict(known or {})

    def needs_private_key(self, page: Mapping[str, Any]) -> bool:
        """Whether the page lists a file whose key is not known yet (and no key is at hand).

        The transferer knows the plain key of the file it just uploaded, so sharing it needs
        no private key at all: unlocking one costs a PBKDF2 of 1.3 million rounds.
        """
        if self.private_key is not None:
            return False
        return any(int(f["id"]) not in self._plain for f in page.get("files", []))

    def _file_key(self, file_id: int, container: Mapping[str, Any] | None) -> PlainFileKey | str:
        known = self._plain.get(file_id)
        if known is not None:
            return known
        if container is None:
            return "the server sent no file key for it"
        if self.private_key is None:
            return "no private key to decrypt its file key with"
        try:
            result: PlainFileKey | str = decrypt_file_key(dict(container), self.private_key)
        except CryptoError as exc:
            result = f"file key cannot be decrypted with this account's key: {exc}"
        self._plain[file_id] = result
        return result

    def grants_for_page(self, page: Mapping[str, Any]) -> Grants:
        files = {int(f["id"]): f.get("fileKeyContainer") for f in page.get("files", [])}
        keys_of: dict[int, list[Mapping[str, Any]]] = {}
        for user in page.get("users", []):
            keys_of.setdefault(int(user["id"]), []).append(user.get("publicKeyContainer") or {})
        result = Grants()
        for item in page.get("items", []):
            file_id, user_id = int(item["fileId"]), int(item["userId"])
            plain = self._file_key(file_id, files.get(file_id))
            if isinstance(plain, str):
                result.skipped.append(Skipped(file_id, user_id, plain))
                continue
            containers = keys_of.get(user_id)
            if not containers:
                result.skipped.append(Skipped(file_id, user_id, "the server sent no public key"))
                continue
            result.extend(grants_for_users(file_id, plain, [(user_id, containers)]))
        return result
