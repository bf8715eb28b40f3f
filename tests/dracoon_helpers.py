"""Shared by the DRACOON tests: accounts from the dev stack state, admin calls, decryption."""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from recstore import crypto
from recstore.clients.dracoon import DracoonAccount, DracoonClient
from recstore.clients.dracoon_rooms import DracoonDestination, RoomPaths
from recstore.clients.dracoon_wire import Node
from recstore.common.retry import RetryPolicy
from recstore.devstack.seed import dracoon_account_from_state
from recstore.transfer.keys import AccountKeys

FAST = RetryPolicy(attempts=5, base_delay=0.01, max_delay=0.05, max_retry_after=2)


def account(state: dict[str, Any], login: str | None = None) -> DracoonAccount:
    return dracoon_account_from_state(state, login, timeout=30)


def client(state: dict[str, Any], login: str | None = None) -> DracoonClient:
    return DracoonClient(account(state, login), policy=FAST, upload_poll_timeout=30)


def destination(
    dracoon: DracoonClient, rooms: RoomPaths | None = None
) -> DracoonDestination[crypto.UserPrivateKey]:
    """What a job of the daemon transfers into: the account's rooms, and its keys unlocked."""
    return DracoonDestination(dracoon, AccountKeys(dracoon).private_keys, rooms=rooms)


async def admin(state: dict[str, Any], route: str, body: dict[str, Any]) -> Any:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{state['dracoon_url']}/_devstack/{route}", json=body) as answer,
    ):
        assert answer.status == 200, await answer.text()
        return await answer.json()


async def stand_in_state(state: dict[str, Any]) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{state['dracoon_url']}/_devstack/state") as answer,
    ):
        result: dict[str, Any] = await answer.json()
        return result


async def pieces(data: bytes, size: int) -> AsyncIterator[memoryview]:
    for start in range(0, len(data), size):
        yield memoryview(data)[start : start + size]


async def encrypted_upload(
    dracoon: DracoonClient,
    room_id: int,
    name: str,
    data: bytes,
    chunk: int,
    version: str | None = None,
    **kw: Any,
) -> Node:
    """Encrypt ``data`` as recstore does and upload it with the uploader's file key, made for
    its key pair ``version`` (by default, the one the server gives without a version)."""
    encryptor = crypto.FileEncryptor(crypto.generate_file_key())
    own = (
        (await dracoon.public_key_container()).to_json()
        if version is None
        else (await AccountKeys(dracoon).private_key(version)).public_key_container()
    )

    async def chunks() -> AsyncIterator[bytes]:
        async for piece in pieces(data, chunk):
            yield encryptor.update(piece)

    return await dracoon.uploads.upload(
        room_id,
        name,
        len(data),
        chunks(),
        file_key=lambda: crypto.encrypt_file_key(encryptor.finalize(), own),
        **kw,
    )


#: Each client's unlocked key pairs, as a DRACOON client keeps them: checks that download many
#: files as one member (the chaos runs) unlock the member's key once, not once a file (an
#: RSA-4096 key costs a quarter CPU-second to load).
_KEYS: weakref.WeakKeyDictionary[DracoonClient, AccountKeys] = weakref.WeakKeyDictionary()


def _keys_of(dracoon: DracoonClient) -> AccountKeys:
    if dracoon not in _KEYS:
        _KEYS[dracoon] = AccountKeys(dracoon)
    return _KEYS[dracoon]


async def downloaded_sha256(dracoon: DracoonClient, file_id: int, encrypted: bool) -> str:
    """What a DRACOON client gets: download, and decrypt with its own key when encrypted."""
    digest = hashlib.sha256()
    decryptor = None
    if encrypted:
        encrypted = await dracoon.user_file_key(file_id)
        version = crypto.key_pair_of_file_key(encrypted.version)
        private_key = await _keys_of(dracoon).private_key(version)
        file_key = crypto.decrypt_file_key(encrypted.to_json(), private_key)
        decryptor = crypto.FileDecryptor(file_key)
    async for piece in dracoon.download(file_id):
        digest.update(decryptor.update(piece) if decryptor else piece)
    if decryptor is not None:
        decryptor.finalize()
    return digest.hexdigest()
