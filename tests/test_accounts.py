"""The daemon's DRACOON accounts: one client, one session and one unlocked key per account."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import SecretStr

from recstore.config import DracoonSettings, InstanceDracoon
from recstore.workers.accounts import AccountPool
from tests.conftest import StackProcess
from tests.dracoon_helpers import FAST


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


async def test_jobs_of_one_account_share_its_client_and_its_unlocked_key(
    devstack: StackProcess,
) -> None:
    state = devstack.state
    pool = AccountPool(
        DracoonSettings.model_validate(
            {
                "baseUrl": state["dracoon_url"],
                "clientId": state["dracoon_client_id"],
                "clientSecret": state["dracoon_client_secret"],
            }
        ),
        policy=FAST,
    )
    service = pool.account_for(instance(state))
    try:
        # Jobs arriving together, as a pool of workers would start them.
        clients = await asyncio.gather(*(pool.client(service) for _ in range(5)))
        assert all(c is clients[0] for c in clients)
        keys = await asyncio.gather(*(c.private_key() for c in clients))
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
