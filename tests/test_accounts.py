"""The daemon's DRACOON accounts: one client, one session and one unlocked key per account."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import SecretStr

from recstore.clients.dracoon_wire import DracoonError
from recstore.settings import DracoonSettings, InstanceDracoon
from recstore.workers.accounts import AccountPool
from tests.conftest import StackProcess
from tests.dracoon_helpers import FAST, admin, pieces


def instance(state: dict[str, Any], login: str | None = None) -> InstanceDracoon:
    if login is None:
        password, encryption = state["dracoon_password"], state["dracoon_encryption_password"]
        login = state["dracoon_login"]
    else:
        member = next(m for m in state["dracoon_members"] if m["login"] == login)
        password, encryption = member["password"], member["encryption_password"]
    return InstanceDracoon.model_validate(
        {
            "parent-room-id": state["dracoon_parent_room_id"],
            "login": login,
            "password": password,
            "encryption-password": encryption,
        }
    )


def pool_for(state: dict[str, Any], **settings: object) -> AccountPool:
    defaults = {
        "baseUrl": state["dracoon_url"],
        "clientId": state["dracoon_client_id"],
        "clientSecret": state["dracoon_client_secret"],
    }
    return AccountPool(DracoonSettings.model_validate({**defaults, **settings}), policy=FAST)


async def test_jobs_of_one_account_share_its_client_and_its_unlocked_key(
    devstack: StackProcess,
) -> None:
    state = devstack.state
    pool = pool_for(state)
    service = pool.account_for(instance(state))
    try:
        # Jobs arriving together, as a pool of workers would start them.
        clients = await asyncio.gather(*(pool.client(service) for _ in range(5)))
        assert all(c is clients[0] for c in clients)
        accounts = await asyncio.gather(*(pool.keys(service) for _ in range(5)))
        assert all(a.client is clients[0] for a in accounts)
        keys = await asyncio.gather(*(a.private_key() for a in accounts))
        assert all(k is keys[0] for k in keys)  # unlocked once, not once per job

        other = await pool.client(pool.account_for(instance(state, "alice")))
        assert other is not clients[0]
        assert await pool.client(service) is clients[0]

        # The configurator handed out a new password: the old client is not reused.
        changed = instance(state).model_copy(update={"password": SecretStr("rotated")})
        assert await pool.client(pool.account_for(changed)) is not clients[0]
        assert len(pool.clients()) == 2
    finally:
        await pool.close()


async def test_the_wait_for_dracoon_to_finish_an_upload_is_the_configured_one(
    devstack: StackProcess,
) -> None:
    state = devstack.state
    members = [{"login": state["dracoon_login"], "permissions": ["read", "create", "manage"]}]
    seed = {"rooms": [{"path": "Finish-wait", "encrypted": False, "members": members}]}
    room_id = int((await admin(state, "seed", seed))["rooms"]["Finish-wait"])
    data = bytes(6 * 1024 * 1024)
    await admin(state, "settings", {"finishSeconds": 3})  # the stand-in takes its time
    pool = pool_for(state, finishTimeout="0.5s")
    try:
        dracoon = await pool.client(pool.account_for(instance(state)))
        with pytest.raises(DracoonError, match="did not finish the upload in time") as caught:
            await dracoon.uploads.upload(room_id, "wait.bin", len(data), pieces(data, len(data)))
        assert caught.value.transient  # the job is retried, not dead-lettered
    finally:
        await pool.close()
        await admin(state, "settings", {"finishSeconds": 0.05})


@pytest.mark.parametrize("suffix", ["", "/", "/api/v4", "/api/v4/", "/api", "/API/v4//"])
async def test_the_seeds_base_url_with_or_without_the_api_path_reaches_the_same_server(
    devstack: StackProcess, suffix: str
) -> None:
    """Seed 004 writes ``dracoon.baseUrl: https://dracoon.team/api/v4``; requests must not go
    to ``.../api/v4/api/v4/...``. The instance's ``base-url`` follows the same rule."""
    state = devstack.state
    pool = pool_for(state, baseUrl=state["dracoon_url"] + suffix)
    try:
        dracoon = await pool.client(pool.account_for(instance(state)))
        assert dracoon.account.base_url == state["dracoon_url"]
        assert (await dracoon.key_pair()).public_key_container.public_key
        own = instance(state).model_copy(update={"base_url": None})
        on_instance = InstanceDracoon.model_validate(
            {**own.model_dump(by_alias=True), "base-url": state["dracoon_url"] + suffix}
        )
        assert on_instance.base_url == state["dracoon_url"]
    finally:
        await pool.close()
