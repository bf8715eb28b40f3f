"""The DRACOON client against the DRACOON stand-in (running in the dev stack process)."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from recstore import crypto
from recstore.clients.dracoon import DracoonAccount, DracoonClient
from recstore.clients.dracoon_wire import DracoonError, Node
from recstore.common.errors import NotFound, QuotaExceeded, Unauthorised
from recstore.common.retry import RetryPolicy
from recstore.transfer.keys import AccountKeys, MissingKeyResolver
from tests.conftest import StackProcess, faults_injected
from tests.dracoon_helpers import (
    FAST,
    admin,
    client,
    downloaded_sha256,
    encrypted_upload,
    pieces,
    stand_in_state,
)

pytestmark = pytest.mark.long  # tens of seconds: xdist starts it early

MiB = 1024 * 1024
_names = itertools.count()


@pytest.fixture
async def state(devstack: StackProcess) -> AsyncIterator[dict[str, Any]]:
    """The stack's state; settings and faults are put back after each test."""
    yield devstack.state
    await admin(devstack.state, "faults", {})
    await admin(
        devstack.state,
        "settings",
        {
            "useS3Storage": True,
            "tokenLifetime": 3600,
            "quotaBytes": None,
            "finishSeconds": 0.05,
            "failFinishing": [],
        },
    )


@pytest.fixture
async def service(state: dict[str, Any]) -> AsyncIterator[DracoonClient]:
    async with client(state) as dracoon:
        yield dracoon


async def fresh_room(service: DracoonClient, state: dict[str, Any]) -> Node:
    return await service.ensure_room_path(
        state["dracoon_parent_room_id"], [f"t{next(_names)}-{os.getpid()}"]
    )


async def share_all(service: DracoonClient, file_id: int) -> None:
    resolver = MissingKeyResolver(await AccountKeys(service).private_keys())
    page = await service.missing_file_keys_page(file_id=file_id)
    await service.set_file_keys([g.to_json() for g in resolver.grants_for_page(page).grants])


CASES = [("empty", 0), ("one byte", 1), ("one chunk", 6 * MiB), ("3.5 chunks", 21 * MiB)]


@pytest.mark.parametrize("direct_s3", [True, False], ids=["s3-direct", "legacy"])
@pytest.mark.parametrize(("label", "size"), CASES, ids=[c[0] for c in CASES])
async def test_encrypted_uploads_decrypt_for_a_member(
    state: dict[str, Any], service: DracoonClient, direct_s3: bool, label: str, size: int
) -> None:
    await admin(state, "settings", {"useS3Storage": direct_s3})
    room = await fresh_room(service, state)
    data = os.urandom(size)
    node = await encrypted_upload(service, room.id, "rec.mp4", data, 6 * MiB)
    assert node.size == size
    await share_all(service, node.id)
    for member in ("alice", "bob"):  # RSA-2048 ("A") and RSA-4096 key pairs
        async with client(state, member) as reader:
            assert (
                await downloaded_sha256(reader, node.id, True) == hashlib.sha256(data).hexdigest()
            )


async def plain_room(state: dict[str, Any], *readers: str) -> int:
    """A fresh unencrypted room the service account manages, with ``readers`` who may read."""
    path = f"Plain-{next(_names)}"
    members = [
        {"login": state["dracoon_login"], "permissions": ["read", "create", "manage"]},
        *({"login": login, "permissions": ["read"]} for login in readers),
    ]
    seed = {"rooms": [{"path": path, "encrypted": False, "members": members}]}
    return int((await admin(state, "seed", seed))["rooms"][path])


@pytest.mark.parametrize("direct_s3", [True, False], ids=["s3-direct", "legacy"])
async def test_plain_room_upload(
    state: dict[str, Any], service: DracoonClient, direct_s3: bool
) -> None:
    await admin(state, "settings", {"useS3Storage": direct_s3})
    room_id = await plain_room(state, "alice")
    data = os.urandom(7 * MiB + 3)
    node = await service.uploads.upload(room_id, "plain.bin", len(data), pieces(data, 2 * MiB))
    assert node.is_encrypted is False
    async with client(state, "alice") as reader:
        assert await downloaded_sha256(reader, node.id, False) == hashlib.sha256(data).hexdigest()


async def test_an_encrypted_room_refuses_a_file_without_key(
    state: dict[str, Any], service: DracoonClient
) -> None:
    room = await fresh_room(service, state)
    open_before = (await stand_in_state(state))["openUploads"]  # other tests' interrupted ones
    with pytest.raises(DracoonError) as caught:
        await service.uploads.upload(room.id, "x", 3, pieces(b"abc", 3))
    assert caught.value.error_code == -40763
    assert not caught.value.transient
    assert (await stand_in_state(state))["openUploads"] == open_before  # this one was cancelled


async def test_expiration_and_notes_are_stored(
    state: dict[str, Any], service: DracoonClient
) -> None:
    room = await fresh_room(service, state)
    expire = datetime(2031, 5, 15, 12, 0, tzinfo=UTC)
    node = await encrypted_upload(
        service, room.id, "exp.mp4", b"data", MiB, expire_at=expire, notes="recstore job=x"
    )
    nodes = {n["id"]: n for n in (await stand_in_state(state))["nodes"]}
    assert nodes[node.id]["expireAt"] == "2031-05-15T12:00:00Z"
    assert nodes[node.id]["notes"] == "recstore job=x"


async def test_resolution_strategies(state: dict[str, Any], service: DracoonClient) -> None:
    room = await fresh_room(service, state)
    first = await encrypted_upload(service, room.id, "a.mp4", b"one", MiB)
    renamed = await encrypted_upload(
        service, room.id, "a.mp4", b"two", MiB, resolution="autorename"
    )
    assert renamed.name == "a (1).mp4"
    with pytest.raises(DracoonError) as caught:
        await encrypted_upload(service, room.id, "a.mp4", b"three", MiB, resolution="fail")
    assert (caught.value.status, caught.value.error_code) == (409, -40010)
    replaced = await encrypted_upload(
        service, room.id, "a.mp4", b"four!", MiB, resolution="overwrite"
    )
    names = sorted(
        n["name"] for n in (await stand_in_state(state))["nodes"] if n["parentId"] == room.id
    )
    assert names == ["a (1).mp4", "a.mp4"]
    assert replaced.size == 5
    assert first.id != replaced.id


async def test_room_paths_are_created_once_under_concurrency(state: dict[str, Any]) -> None:
    path = [f"c{next(_names)}-{os.getpid()}", "level two", "level three"]
    clients = [client(state) for _ in range(3)]  # separate clients: no shared in-process lock
    try:
        rooms = await asyncio.gather(
            *(
                c.ensure_room_path(state["dracoon_parent_room_id"], path)
                for c in clients
                for _ in range(4)
            )
        )
    finally:
        for c in clients:
            await c.close()
    assert len({r.id for r in rooms}) == 1
    nodes = (await stand_in_state(state))["nodes"]
    for depth in range(1, 4):
        wanted = "/Recordings/" + "/".join(path[:depth])
        assert sum(n["path"] == wanted for n in nodes) == 1
    assert all(r.is_encrypted for r in rooms)  # sub-rooms of an encrypted room are encrypted


@pytest.mark.parametrize("known", [True, False], ids=["size-known", "size-unknown"])
async def test_each_part_url_is_asked_for_while_the_part_before_uploads(
    state: dict[str, Any], service: DracoonClient, known: bool
) -> None:
    """A URL round trip per part would stall the upload stream; the next one is fetched early.

    Every part upload is held back 200 ms by the stand-in, so the order of its steps shows
    whether the URL for part n+1 was asked for while part n was still on its way.
    """
    room_id = await plain_room(state)
    await admin(state, "faults", {"latency_ms": 200, "methods": ["PUT"], "path_pattern": "^/_s3/"})
    name = f"early-urls-{known}.bin"
    data = os.urandom(3 * 6 * MiB + 1)  # three full parts and a 1-byte last one
    node = await service.uploads.upload(
        room_id, name, len(data) if known else None, pieces(data, 6 * MiB)
    )
    assert node.size == len(data)
    steps = next(u for u in (await stand_in_state(state))["uploads"] if u["name"] == name)["steps"]
    assert [s for s in steps if s.startswith("part")] == ["part 1", "part 2", "part 3", "part 4"]
    for n in (1, 2, 3):
        assert steps.index(f"url {n + 1}") < steps.index(f"part {n}"), steps
    if known:  # the last part's size is known too: no URL is asked for twice or in vain
        assert [s for s in steps if s.startswith("url")] == ["url 1", "url 2", "url 3", "url 4"]


async def test_an_object_too_large_for_s3s_part_limit_goes_up_in_larger_parts(
    state: dict[str, Any], service: DracoonClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3 takes at most 10,000 parts, and says so only at part 10,001. With the limit lowered
    to 3 (so the boundary is reachable with megabytes), chunks of 6 MiB that would make five
    parts are gathered into three, and the file is whole."""
    monkeypatch.setattr("recstore.clients.s3.MAX_PARTS", 3)
    room_id = await plain_room(state)
    name = f"few-parts-{next(_names)}.bin"
    data = os.urandom(4 * 6 * MiB + 1)  # five parts at 6 MiB
    node = await service.uploads.upload(room_id, name, len(data), pieces(data, 6 * MiB))
    steps = next(u for u in (await stand_in_state(state))["uploads"] if u["name"] == name)["steps"]
    assert [s for s in steps if s.startswith("part")] == ["part 1", "part 2", "part 3"]
    assert await downloaded_sha256(service, node.id, False) == hashlib.sha256(data).hexdigest()


async def test_throttling_and_server_errors_are_survived(
    state: dict[str, Any], service: DracoonClient
) -> None:
    room = await fresh_room(service, state)
    await admin(
        state,
        "faults",
        {
            "error_rate": 1,
            "error_status": 429,
            "retry_after": 1,
            "count": 2,
            "path_pattern": "^/api/v4/nodes",
        },
    )
    started = asyncio.get_running_loop().time()
    node = await encrypted_upload(service, room.id, "busy.mp4", b"x" * 1000, MiB)
    assert asyncio.get_running_loop().time() - started >= 2  # Retry-After honoured twice
    await admin(
        state,
        "faults",
        {"error_rate": 0.3, "error_status": 503, "seed": 7, "path_pattern": "^/(api|_s3)/"},
    )
    data = os.urandom(11 * MiB)
    node = await encrypted_upload(service, room.id, "flaky.mp4", data, 6 * MiB)
    await admin(state, "faults", {})
    await share_all(service, node.id)
    async with client(state, "alice") as reader:
        assert await downloaded_sha256(reader, node.id, True) == hashlib.sha256(data).hexdigest()


async def test_dropped_connections_mid_upload_are_retried(
    state: dict[str, Any], service: DracoonClient
) -> None:
    room = await fresh_room(service, state)
    await admin(state, "faults", {"drop_rate": 1, "count": 2, "path_pattern": "^/_s3/"})
    data = os.urandom(6 * MiB)
    node = await encrypted_upload(service, room.id, "dropped.mp4", data, 6 * MiB)
    assert node.size == len(data)


@pytest.mark.skipif(not hasattr(socket, "TCP_USER_TIMEOUT"), reason="a Linux socket option")
@pytest.mark.parametrize("direct_s3", [True, False], ids=["s3-direct", "legacy"])
async def test_an_upload_the_server_stops_reading_fails_the_attempt(
    state: dict[str, Any], direct_s3: bool
) -> None:
    """A server (or a proxy) that stops reading an upload mid-body, and keeps the connection,
    is given up on after the account's timeout: aiohttp's own read timeout does not cover
    writing. The body is larger than loopback's socket buffers, so its writer does block."""
    from dataclasses import replace

    from tests.dracoon_helpers import account

    await admin(state, "settings", {"useS3Storage": direct_s3})
    room_id = await plain_room(state)
    path, method = ("^/_s3/", "PUT") if direct_s3 else ("^/api/v4/uploads/", "POST")
    # The server reads nothing of these bodies for 60 s, then would take them in full.
    await admin(state, "faults", {"latency_ms": 60_000, "methods": [method], "path_pattern": path})
    impatient = DracoonClient(
        replace(account(state), timeout=1), policy=RetryPolicy(attempts=2, base_delay=0.01)
    )
    data = bytes(48 * MiB)
    async with impatient as dracoon:
        with pytest.raises(DracoonError, match="upload failed: ClientOSError") as caught:
            await dracoon.uploads.upload(room_id, "stalled.bin", len(data), pieces(data, len(data)))
    assert caught.value.transient
    await admin(state, "faults", {})
    nodes = (await stand_in_state(state))["nodes"]
    assert not [n for n in nodes if n["parentId"] == room_id]


async def test_quota_exceeded_is_permanent(state: dict[str, Any], service: DracoonClient) -> None:
    room = await fresh_room(service, state)
    await admin(state, "settings", {"quotaBytes": 10})
    with pytest.raises(DracoonError) as caught:
        await encrypted_upload(service, room.id, "big.mp4", b"x" * 100, MiB)
    assert isinstance(caught.value, QuotaExceeded)
    assert (caught.value.status, caught.value.error_code, caught.value.transient) == (
        507,
        -40200,
        False,
    )


@pytest.mark.parametrize(("status", "tries"), [(501, 1), (502, FAST.attempts)])
async def test_answers_asking_again_cannot_change_are_not_retried(
    state: dict[str, Any], service: DracoonClient, status: int, tries: int
) -> None:
    """A 501 (Not Implemented) is the server's last word; a 502 is an outage, tried again."""
    await service.system_info()  # logged in before the fault
    fault = {"error_rate": 1, "error_status": status, "path_pattern": "/nodes$"}
    await admin(state, "faults", fault)
    try:
        with pytest.raises(DracoonError) as caught:
            await service.request("GET", "/v4/nodes")
        injected = await faults_injected(state["dracoon_url"])
    finally:
        await admin(state, "faults", {})
    assert (caught.value.status, caught.value.transient) == (status, status == 502)
    assert injected == tries


async def test_an_account_without_key_pair_is_a_permanent_error(state: dict[str, Any]) -> None:
    login = f"nokeys{next(_names)}"
    await admin(state, "seed", {"users": [{"login": login, "password": "pw-nokeys"}]})
    members = [
        *state["dracoon_members"],
        {"login": login, "password": "pw-nokeys", "encryption_password": "x"},
    ]
    async with client({**state, "dracoon_members": members}, login) as dracoon:
        with pytest.raises(DracoonError) as caught:
            await dracoon.public_key_container()
    assert isinstance(caught.value, NotFound)
    assert caught.value.error_code == -70020
    assert not caught.value.transient


async def test_expired_tokens_are_renewed(state: dict[str, Any], service: DracoonClient) -> None:
    await service.system_info()
    await admin(state, "settings", {"expireTokens": True})  # every issued token is now invalid
    room = await fresh_room(service, state)
    assert room.is_encrypted


async def test_requests_refused_together_log_in_again_once(
    state: dict[str, Any], service: DracoonClient
) -> None:
    """A revoked token fails every request in flight; one login serves them all."""
    await service.system_info()
    login = state["dracoon_login"]
    before = (await stand_in_state(state))["tokensIssued"][login]
    await admin(state, "settings", {"expireTokens": True})
    rooms = await asyncio.gather(*(service.request("GET", "/v4/nodes") for _ in range(5)))
    assert all("items" in room for room in rooms)
    assert (await stand_in_state(state))["tokensIssued"][login] == before + 1


async def test_a_login_that_keeps_failing_is_retried_only_by_the_call_that_needs_it(
    state: dict[str, Any],
) -> None:
    """Every login's answer is lost (the stand-in issues the token, a 503 replaces the answer):
    the call fails after its policy's attempts, one login each. A retry inside the token fetch
    as well made attempts x attempts logins (36 with the default policy, ten minutes)."""
    login = state["dracoon_login"]
    before = (await stand_in_state(state))["tokensIssued"].get(login, 0)
    lost = {"error_rate": 1, "error_status": 503, "after": True, "path_pattern": "^/oauth/token$"}
    await admin(state, "faults", lost)
    try:
        async with client(state) as dracoon:
            with pytest.raises(DracoonError) as caught:
                await dracoon.request("GET", "/v4/user/account")
    finally:
        await admin(state, "faults", {})
    assert (caught.value.status, caught.value.transient) == (503, True)
    assert (await stand_in_state(state))["tokensIssued"][login] - before == FAST.attempts


async def test_refused_credentials_are_unauthorised(state: dict[str, Any]) -> None:
    """OAuth refuses a password with 400 invalid_grant: final, and of the kind a caller
    catches for refused credentials whatever the remote."""
    async with client({**state, "dracoon_password": "wrong-password-value"}) as bad:
        with pytest.raises(Unauthorised) as caught:
            await bad.system_info()
    assert isinstance(caught.value, DracoonError)
    assert (caught.value.code, caught.value.transient) == ("invalid_grant", False)


async def test_a_failing_stream_cancels_its_upload(
    state: dict[str, Any], service: DracoonClient
) -> None:
    room = await fresh_room(service, state)
    open_before = (await stand_in_state(state))["openUploads"]

    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * (6 * MiB)
        raise OSError("source vanished")

    with pytest.raises(OSError, match="source vanished"):
        await service.uploads.upload(room.id, "broken.mp4", 12 * MiB, broken(), file_key=lambda: {})
    assert (await stand_in_state(state))["openUploads"] == open_before


async def test_credentials_stay_out_of_reprs_and_errors(state: dict[str, Any]) -> None:
    dracoon = client(state)
    bad = client({**state, "dracoon_password": "wrong-password-value"})
    try:
        assert state["dracoon_password"] not in repr(dracoon)
        with pytest.raises(DracoonError) as caught:
            await bad.system_info()
        assert "wrong-password-value" not in str(caught.value)
        assert caught.value.transient is False
    finally:
        await dracoon.close()
        await bad.close()


async def test_missing_keys_page_through_more_than_a_hundred(
    state: dict[str, Any], service: DracoonClient
) -> None:
    room = await fresh_room(service, state)
    files = [await encrypted_upload(service, room.id, f"f{i}.mp4", b"k", MiB) for i in range(55)]
    first = await service.missing_file_keys_page(room_id=room.id)
    assert first.range.total == 110  # 55 files x 2 readers
    assert len(first.items) == 100  # the server's cap, whatever the limit asked
    resolver = MissingKeyResolver(await AccountKeys(service).private_keys())
    while (page := await service.missing_file_keys_page(room_id=room.id)).items:
        await service.set_file_keys([g.to_json() for g in resolver.grants_for_page(page).grants])
    async with client(state, "bob") as reader:
        key = await reader.user_file_key(files[-1].id)
        private_key = await AccountKeys(reader).private_key()
        assert crypto.decrypt_file_key(key.to_json(), private_key).tag is not None


class _Answering:
    """A server in front of DRACOON's address that answers every request the same way."""

    def __init__(self, status: int, text: str, delay: float = 0.0) -> None:
        from aiohttp import web

        async def answer(request: web.Request) -> web.Response:
            await asyncio.sleep(delay)
            return web.Response(status=status, text=text, content_type="text/html")

        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", answer)

    def account(self, url: str) -> DracoonAccount:
        return DracoonAccount(
            url, "svc", SecretStr("pw-x"), SecretStr("enc-x"), "client", SecretStr("s-x"), 1
        )


async def test_a_proxys_html_error_page_is_a_dracoon_error_with_its_status() -> None:
    from aiohttp.test_utils import TestServer

    proxy = _Answering(502, "<html><body><h1>502 Bad Gateway</h1></body></html>")
    async with TestServer(proxy.app) as server:
        account = proxy.account(str(server.make_url("")))
        async with DracoonClient(account, policy=FAST) as dracoon:
            with pytest.raises(DracoonError) as caught:
                await dracoon.request("GET", "/v4/user/account")
    assert caught.value.status == 502
    assert caught.value.transient
    assert "svc" in str(caught.value)
    assert "HTTP 502" in str(caught.value)


async def test_the_read_timeout_holds_on_a_shared_session() -> None:
    import aiohttp
    from aiohttp.test_utils import TestServer

    stalled = _Answering(200, "{}", delay=30)
    async with TestServer(stalled.app) as server, aiohttp.ClientSession() as shared:
        account = stalled.account(str(server.make_url("")))  # dracoon.timeout: 1 s
        dracoon = DracoonClient(account, shared, RetryPolicy(attempts=1))
        async with asyncio.timeout(10):  # aiohttp's own default would wait 300 s
            with pytest.raises(DracoonError, match="unreachable"):
                await dracoon.request("GET", "/v4/user/account")


async def test_a_success_page_that_is_not_json_is_not_taken_for_an_answer() -> None:
    from aiohttp.test_utils import TestServer

    portal = _Answering(200, "<html><body>Please sign in</body></html>")
    async with TestServer(portal.app) as server:
        account = portal.account(str(server.make_url("")))
        async with DracoonClient(account, policy=FAST) as dracoon:
            with pytest.raises(DracoonError, match="not JSON") as caught:
                await dracoon.request("GET", "/v4/user/account")
    assert caught.value.transient


async def test_an_answer_its_api_does_not_describe_is_a_dracoon_error() -> None:
    """Something answers JSON that is not DRACOON's (here: ``items`` that is no list): the
    caller gets a DracoonError naming the request and the field, worth another attempt, not
    a KeyError or a TypeError from deep inside the caller."""
    from aiohttp.test_utils import TestServer

    body = '{"access_token": "t", "expires_in": 3600, "items": "none", "range": {"total": 1}}'
    stranger = _Answering(200, body)
    async with TestServer(stranger.app) as server:
        account = stranger.account(str(server.make_url("")))
        async with DracoonClient(account, policy=FAST) as dracoon:
            with pytest.raises(DracoonError, match=r"GET /v4/nodes .*\(items\)") as caught:
                await dracoon.child_named(1, "talks")
    assert caught.value.transient


async def test_an_upload_dracoon_is_finishing_is_not_cancelled(state: dict[str, Any]) -> None:
    from tests.dracoon_helpers import account

    room_id = await plain_room(state)
    await admin(state, "settings", {"finishSeconds": 1})  # longer than the client waits
    data = os.urandom(6 * MiB)
    impatient = DracoonClient(account(state), policy=FAST, upload_poll_timeout=0)
    async with impatient as dracoon:
        with pytest.raises(DracoonError, match="did not finish the upload in time"):
            await dracoon.uploads.upload(room_id, "finishing.bin", len(data), pieces(data, 6 * MiB))

    async def landed() -> list[dict[str, Any]]:
        nodes = (await stand_in_state(state))["nodes"]
        return [n for n in nodes if n["parentId"] == room_id and n["name"] == "finishing.bin"]

    async with asyncio.timeout(10):  # the stand-in assembles it a moment later
        while not await landed():
            await asyncio.sleep(0.05)
    assert [n["size"] for n in await landed()] == [len(data)]


LOST = [
    pytest.param({"drop_rate": 1}, id="connection-dropped"),
    pytest.param({"error_rate": 1, "error_status": 502}, id="proxy-502"),
]


@pytest.mark.parametrize("lost", LOST)
@pytest.mark.parametrize("direct_s3", [True, False], ids=["s3-direct", "legacy"])
async def test_a_completion_whose_answer_is_lost_is_not_sent_again(
    state: dict[str, Any], service: DracoonClient, direct_s3: bool, lost: dict[str, Any]
) -> None:
    """DRACOON did the completion, the answer never came back: sending it again would get
    -20503 (the channel is closed) and the upload would be cancelled while DRACOON finishes
    it. The client asks the upload's status instead and takes the file DRACOON made."""
    await admin(state, "settings", {"useS3Storage": direct_s3})
    room = await fresh_room(service, state)
    await service.system_info()
    path = "/s3$" if direct_s3 else "^/api/v4/uploads/"
    plan = {**lost, "after": True, "count": 1, "methods": ["PUT"], "path_pattern": path}
    await admin(state, "faults", plan)
    data, name = os.urandom(MiB + 5), f"lost-{next(_names)}.mp4"
    node = await encrypted_upload(service, room.id, name, data, MiB)
    assert await faults_injected(state["dracoon_url"]) == 1
    await admin(state, "faults", {})
    uploads = [u for u in (await stand_in_state(state))["uploads"] if u["name"] == name]
    assert [u["status"] for u in uploads] == ["done"]
    assert await downloaded_sha256(service, node.id, True) == hashlib.sha256(data).hexdigest()
    await service.remove_node(room.id)  # no key left missing for the sharer's tests


@pytest.mark.parametrize("direct_s3", [True, False], ids=["s3-direct", "legacy"])
async def test_a_completion_that_never_arrived_is_sent_again(
    state: dict[str, Any], service: DracoonClient, direct_s3: bool
) -> None:
    """The connection dropped before DRACOON read the completion: the status still says
    "transfer", so the completion goes again, and the file is made once."""
    await admin(state, "settings", {"useS3Storage": direct_s3})
    room = await fresh_room(service, state)
    await service.system_info()
    path = "/s3$" if direct_s3 else "^/api/v4/uploads/"
    await admin(
        state, "faults", {"drop_rate": 1, "count": 1, "methods": ["PUT"], "path_pattern": path}
    )
    node = await encrypted_upload(service, room.id, "again.mp4", b"abc", MiB)
    assert await faults_injected(state["dracoon_url"]) == 1
    nodes = (await stand_in_state(state))["nodes"]
    assert [n["id"] for n in nodes if n["parentId"] == room.id] == [node.id]
    await service.remove_node(room.id)


async def test_the_stand_in_refuses_a_second_completion_and_urls_for_a_closed_channel(
    state: dict[str, Any], service: DracoonClient
) -> None:
    """Spec, completeS3FileUpload and generatePresignedUrlsFiles: 400 -20503 "Upload channel
    is closed" once a completion has closed the channel."""
    room_id = await plain_room(state)
    channel = await service.request(
        "POST", "/v4/nodes/files/uploads", json={"parentId": room_id, "name": "twice.bin"}
    )
    upload = f"/v4/nodes/files/uploads/{channel['uploadId']}"
    urls = await service.request(
        "POST", f"{upload}/s3_urls", json={"size": 3, "firstPartNumber": 1, "lastPartNumber": 1}
    )
    async with (
        aiohttp.ClientSession() as session,
        session.put(urls["urls"][0]["url"], data=b"abc") as answer,
    ):
        etag = answer.headers["ETag"].strip('"')
    completion = {"parts": [{"partNumber": 1, "partEtag": etag}], "fileName": "twice.bin"}
    await service.request("PUT", f"{upload}/s3", json=completion)
    for method, path, body in [
        ("PUT", f"{upload}/s3", completion),
        ("POST", f"{upload}/s3_urls", {"size": 3, "firstPartNumber": 2, "lastPartNumber": 2}),
    ]:
        with pytest.raises(DracoonError) as caught:
            await service.request(method, path, json=body)
        assert (caught.value.status, caught.value.error_code) == (400, -20503)


async def test_an_upload_dracoon_failed_to_finish_is_worth_redoing(
    state: dict[str, Any], service: DracoonClient
) -> None:
    """The completion was taken and DRACOON's assembly failed on its side (S3 unreachable,
    504 -90027): the upload's status says "error", the channel is closed, and a new upload
    may work, so the error is transient; a refusal (a name taken under "fail") is not."""
    room_id = await plain_room(state)
    await admin(state, "settings", {"failFinishing": ["unlucky.bin"]})
    with pytest.raises(DracoonError) as caught:
        await service.uploads.upload(room_id, "unlucky.bin", 3, pieces(b"abc", 3))
    assert (caught.value.status, caught.value.error_code) == (504, -90027)
    assert caught.value.transient
    node = await service.uploads.upload(room_id, "unlucky.bin", 3, pieces(b"abc", 3))  # redone
    assert node.size == 3
    await admin(state, "settings", {"finishSeconds": 0.5})
    first = service.uploads.upload(room_id, "taken.bin", 1, pieces(b"a", 1), resolution="fail")
    second = service.uploads.upload(room_id, "taken.bin", 1, pieces(b"b", 1), resolution="fail")
    outcomes = await asyncio.gather(first, second, return_exceptions=True)
    refused = [o for o in outcomes if isinstance(o, DracoonError)]
    assert [(e.status, e.error_code, e.transient) for e in refused] == [(409, -40010, False)]
