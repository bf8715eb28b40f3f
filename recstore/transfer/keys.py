"""Who gets a file key: the rules shared by the FileTransferer and the DracoonGlobalSharer.

Both hand out file keys the same way, so both use this module: the transferer right after an
upload (it still holds the plain file key), the sharer from the server's list of missing keys
(it first decrypts each file key with the account's private key). A user may hold several key
pairs (one per version); each gets its own encrypted copy. A key that cannot be made — a
corrupt public key, a file key that is not ours — is skipped with its reason and never stops
the others.

The account that hands keys out may hold several key pairs too (an ``A`` and an ``RSA-4096``
one while its customer moves to 4096-bit keys): the server then lists a file once per file
key the account holds, and each is opened with the private key of its own version (the Java
SDK's ``FileKeyGenerator``: a list of encrypted file keys per file id, decrypted with the key
pair of their version). :class:`AccountKeys` unlocks those private keys: the DRACOON client
only fetches them, and the pages it returns are read here as its typed answers
(:class:`~recstore.clients.dracoon_wire.MissingKeys`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from recstore.clients.dracoon import DracoonClient
from recstore.clients.dracoon_wire import NO_KEY_PAIR, REMOTE, DracoonError, FileKey, MissingKeys
from recstore.common import events
from recstore.crypto import (
    CryptoError,
    PlainFileKey,
    UserPrivateKey,
    decrypt_file_key,
    decrypt_private_key,
    encrypt_file_key,
    key_pair_of_file_key,
)

log = logging.getLogger(__name__)


class AccountKeys:
    """The private keys of one DRACOON account, unlocked once (the client only fetches them).

    Unlocking costs about a second each (1.3M PBKDF2 iterations), off the event loop; one
    :class:`AccountKeys` per account and process (:class:`~recstore.workers.accounts.
    AccountPool` keeps them beside the clients) unlocks each pair once for every job.
    """

    def __init__(self, client: DracoonClient) -> None:
        self.client = client
        self._lock = asyncio.Lock()
        self._unlocked: dict[str, UserPrivateKey] | None = None

    async def private_keys(self) -> dict[str, UserPrivateKey]:
        """Every private key of the account by key pair version. A pair the encryption
        password does not open is left out (and logged); none opening is an error."""
        async with self._lock:
            if self._unlocked is None:
                self._unlocked = await self._unlock()
            return self._unlocked

    async def _unlock(self) -> dict[str, UserPrivateKey]:
        account = self.client.account
        if account.encryption_password is None:
            raise DracoonError(
                f"no encryption password configured for {account.login!r}", remote=REMOTE
            )
        password = account.encryption_password.get_secret_value()
        unlocked: dict[str, UserPrivateKey] = {}
        failure: CryptoError | None = None
        for pair in await self.client.key_pairs():
            container = pair.private_key_container
            try:
                key = await asyncio.to_thread(decrypt_private_key, container.to_json(), password)
            except CryptoError as exc:
                failure = exc
                events.emit(
                    log,
                    events.REST_CLIENT_ERROR,
                    "key pair %s of %s cannot be unlocked: %s",
                    container.version,
                    account.login,
                    exc,
                )
                continue
            unlocked[key.version] = key
        if not unlocked and failure is not None:
            raise failure
        return unlocked

    async def private_key(self, version: str | None = None) -> UserPrivateKey:
        """The unlocked private key of key pair ``version`` (by default, of the pair the
        server gives without a version: :meth:`DracoonClient.key_pair`)."""
        if version is None:
            version = (await self.client.key_pair()).private_key_container.version
        keys = await self.private_keys()
        if version not in keys:
            raise DracoonError(
                f"DRACOON account {self.client.account.login!r} holds no usable key pair "
                f"{version!r}",
                remote=REMOTE,
                code=NO_KEY_PAIR,
            )
        return keys[version]


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

    Each file's key is decrypted once per run (a page may list a file several times, once per
    file key the account holds, and a file can appear on several pages), which matters with
    thousands of users. ``private_keys``: the account's unlocked keys by key pair version.
    """

    def __init__(
        self,
        private_keys: Mapping[str, UserPrivateKey] | None = None,
        known: Mapping[int, PlainFileKey] | None = None,
    ) -> None:
        self.private_keys = private_keys
        self._plain: dict[int, PlainFileKey | str] = dict(known or {})

    def needs_private_keys(self, page: MissingKeys) -> bool:
        """Whether the page lists a file whose key is not known yet (and no key is at hand).

        The transferer knows the plain key of the file it just uploaded, so sharing it needs
        no private key at all: unlocking one costs a PBKDF2 of 1.3 million rounds.
        """
        if self.private_keys is not None:
            return False
        return any(f.id not in self._plain for f in page.files)

    def _file_key(self, file_id: int, containers: Sequence[FileKey]) -> PlainFileKey | str:
        known = self._plain.get(file_id)
        if known is not None:
            return known
        if not containers:
            return "the server sent no file key for it"
        result: PlainFileKey | str = "no private key to decrypt its file key with"
        for container in containers:
            version = key_pair_of_file_key(container.version)
            key = (self.private_keys or {}).get(version or "")
            if key is None:
                if self.private_keys is not None:
                    result = f"no private key of key pair {version or container.version!r}"
                continue
            try:
                result = decrypt_file_key(container.to_json(), key)
            except CryptoError as exc:
                result = f"file key cannot be decrypted with this account's key: {exc}"
                continue
            break
        self._plain[file_id] = result
        return result

    def grants_for_page(self, page: MissingKeys) -> Grants:
        files: dict[int, list[FileKey]] = {}
        for entry in page.files:
            container = entry.file_key_container
            files.setdefault(entry.id, []).extend([container] if container else [])
        keys_of: dict[int, list[Mapping[str, Any]]] = {}
        for user in page.users:
            public = user.public_key_container
            keys_of.setdefault(user.id, []).append(public.to_json() if public else {})
        result = Grants()
        for item in page.items:
            file_id, user_id = item.file_id, item.user_id
            plain = self._file_key(file_id, files.get(file_id, []))
            if isinstance(plain, str):
                result.skipped.append(Skipped(file_id, user_id, plain))
                continue
            containers = keys_of.get(user_id)
            if not containers:
                result.skipped.append(Skipped(file_id, user_id, "the server sent no public key"))
                continue
            result.extend(grants_for_users(file_id, plain, [(user_id, containers)]))
        return result


class KeyServer(Protocol):
    """What handing out file keys needs of one DRACOON account."""

    async def private_keys(self) -> Mapping[str, UserPrivateKey]: ...

    async def missing_file_keys_page(
        self, *, offset: int = 0, room_id: int | None = None, file_id: int | None = None
    ) -> MissingKeys: ...

    async def set_file_keys(self, items: Sequence[Mapping[str, Any]]) -> None: ...


@dataclass
class ShareReport:
    written: int = 0
    skipped: int = 0
    files: set[int] = field(default_factory=set)
    users: set[int] = field(default_factory=set)


async def share_missing_keys(
    server: KeyServer,
    *,
    file_id: int | None = None,
    room_id: int | None = None,
    dry_run: bool = False,
    known_keys: Mapping[int, PlainFileKey] | None = None,
    error_event: events.Event = events.GLOBAL_SHARER_ERROR,
) -> ShareReport:
    """Hand out every missing file key the account can serve; problems are logged as
    ``error_event`` (the caller's own code: the sharer's, or the transferer's for its file).

    Written keys leave the server's list, so each round asks again from the front, paging past
    only the pairs that stay at its front: those that could not be served, and those already
    written (in a dry run, or by a server that keeps listing keys it accepted). Each round
    writes a pair not written before or ends the loop, so none of them can spin it.

    For one file (a transfer's, ``file_id``), a page that held the rest of the list (its
    ``range.total``) ends the loop once written: asking again only to hear "none" cost a
    request per transfer job (a file's few members fit one page). The DracoonGlobalSharer's
    runs, which ask again, still notice a server that keeps listing keys it accepted, and
    serve keys that went missing meanwhile.
    """
    resolver = MissingKeyResolver(known=known_keys)
    report = ShareReport()
    passed: set[tuple[int, int]] = set()
    written: set[tuple[int, int]] = set()
    while True:
        offset = len(passed)
        page = await server.missing_file_keys_page(offset=offset, room_id=room_id, file_id=file_id)
        if not page.items:
            return report
        last = file_id is not None and 0 < page.range.total <= offset + len(page.items)
        if resolver.needs_private_keys(page):
            resolver.private_keys = await server.private_keys()
        result = resolver.grants_for_page(page)
        for item in result.skipped:
            if item.file_id is not None and item.user_id is not None:
                passed.add((item.file_id, item.user_id))
            events.emit(
                log,
                error_event,
                "file key for user %s on file %s skipped: %s",
                item.user_id,
                item.file_id,
                item.reason,
            )
        report.skipped += len(result.skipped)
        if not dry_run and (again := {(g.file_id, g.user_id) for g in result.grants} & written):
            passed |= again
            first_file, first_user = min(again)
            events.emit(
                log,
                error_event,
                "DRACOON still lists %d file key(s) it accepted, the first for user %s on "
                "file %s: not written again",
                len(again),
                first_user,
                first_file,
            )
        grants = [g for g in result.grants if (g.file_id, g.user_id) not in written]
        if not grants:
            return report
        pairs = {(g.file_id, g.user_id) for g in grants}
        if dry_run:  # nothing leaves the list, so page on past what would be written
            passed |= pairs
        else:
            await server.set_file_keys([grant.to_json() for grant in grants])
        written |= pairs
        report.written += len(grants)
        report.files.update(g.file_id for g in grants)
        report.users.update(g.user_id for g in grants)
        if last:
            return report
