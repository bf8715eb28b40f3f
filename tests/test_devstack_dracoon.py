"""The DRACOON stand-in speaks the real API: every exchange of a full client session, both
upload channels included, validates against the server's OpenAPI description."""

from __future__ import annotations

import asyncio
import functools
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from recstore import crypto
from recstore.clients.dracoon_wire import DracoonError, Node
from recstore.devstack.dracoon import DracoonStandIn
from recstore.devstack.dracoon_model import ALL_PERMISSIONS
from recstore.devstack.stack import serving
from recstore.transfer.keys import AccountKeys, MissingKeyResolver
from tests.conftest import DATA
from tests.dracoon_helpers import client, downloaded_sha256, encrypted_upload

pytestmark = pytest.mark.filterwarnings(
    # openapi-core warns once that it does not check OAuth2 security schemes; tokens are
    # checked by the stand-in itself.
    "ignore:Unsupported scheme type:UserWarning"
)

Exchange = dict[str, Any]


def recorder(log: list[Exchange]) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def record(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        body = await request.read() if request.content_type == "application/json" else b""
        response = await handler(request)
        if request.path.startswith("/api/"):
            log.append(
                {
                    "method": request.method.lower(),
                    "path": request.path,
                    "route": request.match_info.route.resource.canonical
                    if request.match_info.route.resource
                    else "",
                    "query": dict(request.query),
                    "headers": dict(request.headers),
                    "body": body,
                    "content_type": request.content_type,
                    "status": response.status,
                    "response": getattr(response, "body", None) or b"",
                    "response_type": response.content_type,
                }
            )
        return response

    return record


@pytest.fixture(scope="module")
def openapi() -> OpenAPI:
    return OpenAPI.from_file_path(str(DATA / "specs" / "dracoon-api-v4.26.7.json"))


async def test_every_exchange_validates_against_the_openapi_description(
    tmp_path: Path, openapi: OpenAPI
) -> None:
    stand_in = DracoonStandIn(tmp_path)
    log: list[Exchange] = []
    app = stand_in.make_app()
    app.middlewares.insert(0, recorder(log))
    async with serving(stand_in, app):
        state = stand_in.state_entries()
        async with client(state) as service:
            await service.system_info()
            room = await service.ensure_room_path(
                state["dracoon_parent_room_id"], ["spec", "check"]
            )
            await service.room_users(room.id)
            for direct in (True, False):
                stand_in.use_s3_storage = direct
                service._system_info = None
                data = os.urandom(6 * 1024 * 1024 + 7)
                node = await encrypted_upload(
                    service, room.id, f"f{direct}.mp4", data, 6 * 1024 * 1024
                )
            resolver = MissingKeyResolver(await AccountKeys(service).private_keys())
            page = await service.missing_file_keys_page(room_id=room.id)
            await service.set_file_keys(
                [g.to_json() for g in resolver.grants_for_page(page).grants]
            )
            channel = await service.request(
                "POST",
                "/v4/nodes/files/uploads",
                json={"parentId": room.id, "name": "cancelled.bin"},
            )
            await service.request("DELETE", f"/v4/nodes/files/uploads/{channel['uploadId']}")
            with pytest.raises(Exception, match="409"):
                await service.request(
                    "POST",
                    "/v4/nodes/rooms",
                    json={"name": "check", "parentId": room.parent_id},
                    retry=False,
                )
        async with client(state, "alice") as reader:
            await downloaded_sha256(reader, node.id, True)
            await reader.request("GET", "/v4/user/account")
            await reader.request("GET", "/v4/user/account/keypairs")
        async with client(state) as service:
            await service.remove_node(node.id)
            with pytest.raises(Exception, match="404"):
                await service.request("GET", f"/v4/nodes/{node.id}", retry=False)
            # what an ordinary DRACOON client (the Python SDK's login) asks besides
            for path in ("defaults", "general", "infrastructure", "policies/algorithms"):
                await service.request("GET", f"/v4/config/info/{path}")
            for path in ("ad", "openid"):
                await service.request("GET", f"/v4/public/system/info/auth/{path}")
            found = await service.request(
                "GET", "/v4/nodes/search", params={"search_string": "f", "depth_level": -1}
            )
            assert {n["name"] for n in found["items"]} >= {"fTrue.mp4"}  # two rooms down
            top = await service.request(
                "POST",
                "/v4/nodes/rooms",
                json={"name": "to encrypt", "adminIds": [1]},  # the service account, seeded first
            )
            encrypted = await service.request(
                "PUT", f"/v4/nodes/rooms/{top['id']}/encrypt", json={"isEncrypted": True}
            )
            assert encrypted["isEncrypted"] is True
            token = await service._access_token()
            async with (
                aiohttp.ClientSession() as http,
                http.get(
                    f"{state['dracoon_url']}/api/v4/user/ping",
                    headers={"Authorization": f"Bearer {token}"},
                ) as answer,
            ):
                assert answer.status == 200
                await answer.read()

    failures = []
    for exchange in log:
        request = MockRequest(
            "http://127.0.0.1",
            exchange["method"],
            exchange["path"],
            args=exchange["query"],
            headers=exchange["headers"],
            data=exchange["body"] if exchange["content_type"] == "application/json" else None,
            content_type=exchange["content_type"]
            if exchange["content_type"] == "application/json"
            else None,
        )
        response = MockResponse(
            exchange["response"],
            status_code=exchange["status"],
            content_type=exchange["response_type"] if exchange["response"] else None,
        )
        checks: list[Callable[[], object]] = [
            functools.partial(openapi.validate_response, request, response)
        ]
        if not exchange["content_type"].startswith("multipart/"):
            # A recorded multipart body cannot be handed on twice; its answer is still checked.
            checks.append(functools.partial(openapi.validate_request, request))
        for check in checks:
            try:
                check()
            except Exception as exc:
                cause = exc.__cause__
                details = [str(e).splitlines()[0] for e in getattr(cause, "schema_errors", [])][:3]
                route = f"{exchange['method'].upper()} {exchange['route']} -> {exchange['status']}"
                failures.append(f"{route}: {type(exc).__name__} {details or cause or exc}")
    routes = {(e["method"], e["route"]) for e in log}
    expected = {
        ("get", "/api/v4/public/system/info"),
        ("get", "/api/v4/user/account"),
        ("get", "/api/v4/user/account/keypair"),
        ("get", "/api/v4/user/account/keypairs"),
        ("get", "/api/v4/nodes"),
        ("get", "/api/v4/nodes/{node_id}"),
        ("post", "/api/v4/nodes/rooms"),
        ("get", "/api/v4/nodes/rooms/{room_id}/users"),
        ("post", "/api/v4/nodes/files/uploads"),
        ("post", "/api/v4/nodes/files/uploads/{upload_id}/s3_urls"),
        ("put", "/api/v4/nodes/files/uploads/{upload_id}/s3"),
        ("get", "/api/v4/nodes/files/uploads/{upload_id}"),
        ("delete", "/api/v4/nodes/files/uploads/{upload_id}"),
        ("post", "/api/v4/uploads/{token}"),
        ("put", "/api/v4/uploads/{token}"),
        ("get", "/api/v4/nodes/missingFileKeys"),
        ("post", "/api/v4/nodes/files/keys"),
        ("get", "/api/v4/nodes/files/{file_id}/user_file_key"),
        ("post", "/api/v4/nodes/files/{file_id}/downloads"),
        ("get", "/api/v4/config/info/defaults"),
        ("get", "/api/v4/config/info/general"),
        ("get", "/api/v4/config/info/infrastructure"),
        ("get", "/api/v4/config/info/policies/algorithms"),
        ("get", "/api/v4/public/system/info/auth/ad"),
        ("get", "/api/v4/public/system/info/auth/openid"),
        ("get", "/api/v4/nodes/search"),
        ("put", "/api/v4/nodes/rooms/{room_id}/encrypt"),
        ("get", "/api/v4/user/ping"),
    }
    assert expected <= routes, f"not exercised: {sorted(expected - routes)}"
    assert failures == [], "\n".join(failures[:20])
    assert json.loads(
        next(e["response"] for e in log if e["route"] == "/api/v4/nodes/missingFileKeys")
    )["items"]


def stored_bytes(data_dir: Path) -> int:
    return sum(p.stat().st_size for p in data_dir.rglob("*") if p.is_file())


async def test_removed_nodes_take_their_bytes_with_them(tmp_path: Path) -> None:
    stand_in = DracoonStandIn(tmp_path)
    async with serving(stand_in):
        state = stand_in.state_entries()
        async with client(state) as service:
            room = await service.ensure_room_path(state["dracoon_parent_room_id"], ["old", "inner"])
            data = os.urandom(6 * 1024 * 1024 + 1)
            kept = await encrypted_upload(service, room.id, "kept.mp4", data, 6 * 1024 * 1024)
            gone = await encrypted_upload(service, room.id, "gone.mp4", data, 6 * 1024 * 1024)
            stored = stored_bytes(tmp_path)
            await service.remove_node(gone.id)
            await service.remove_node(gone.id)  # gone already: done, not an error
            assert stored_bytes(tmp_path) == stored - gone.size
            assert await service.child_named(room.id, "kept.mp4") is not None
            assert await service.child_named(room.id, "gone.mp4") is None
            async with client(state, "alice") as reader:  # a reader may not remove
                with pytest.raises(DracoonError, match="403"):
                    await reader.remove_node(kept.id)
            await service.remove_node(room.parent_id)  # all below too
            assert stored_bytes(tmp_path) == stored - gone.size - kept.size
            with pytest.raises(DracoonError, match="404"):
                await service.request("GET", f"/v4/nodes/{room.id}", retry=False)


async def test_uploads_finishing_together_under_one_name_get_unique_names(tmp_path: Path) -> None:
    """DRACOON names a file when it makes it. Two S3 uploads of one name that finish at the
    same time end as two names (``autorename``), or one of them fails (``fail``): a room
    never holds two files of one name, whatever the order of their completions."""
    stand_in = DracoonStandIn(tmp_path)
    stand_in.finish_seconds = 1  # the second completion comes while the first is finishing
    async with serving(stand_in):
        state = stand_in.state_entries()
        async with client(state) as service:
            room = await service.ensure_room_path(state["dracoon_parent_room_id"], ["together"])

            def upload(name: str, resolution: str) -> Awaitable[Node]:
                return encrypted_upload(
                    service, room.id, name, b"recording", 1024, resolution=resolution
                )

            renamed = await asyncio.gather(*(upload("talk.mp4", "autorename") for _ in "ab"))
            assert sorted(node.name for node in renamed) == ["talk (1).mp4", "talk.mp4"]
            outcomes = await asyncio.gather(
                *(upload("other.mp4", "fail") for _ in "ab"), return_exceptions=True
            )
            refused = [o for o in outcomes if isinstance(o, DracoonError)]
            assert [o.name for o in outcomes if isinstance(o, Node)] == ["other.mp4"]
            assert [error.status for error in refused] == [409]
            names = [node.name async for node in service.nodes(room.id)]
            assert sorted(names) == ["other.mp4", "talk (1).mp4", "talk.mp4"]
            assert not list(tmp_path.rglob("*.part*"))  # the refused upload's bytes are freed


async def test_a_part_url_takes_only_the_size_it_was_asked_for(tmp_path: Path) -> None:
    """As with S3, a presigned part URL is signed for one Content-Length; a client that put
    a part of another size through it would be refused, not silently stored."""
    stand_in = DracoonStandIn(tmp_path)
    async with serving(stand_in):
        state = stand_in.state_entries()
        async with client(state) as service, aiohttp.ClientSession() as http:
            room = await service.ensure_room_path(state["dracoon_parent_room_id"], ["signed"])
            upload = await service.request(
                "POST", "/v4/nodes/files/uploads", json={"parentId": room.id, "name": "s.bin"}
            )
            urls = await service.request(
                "POST",
                f"/v4/nodes/files/uploads/{upload['uploadId']}/s3_urls",
                json={"size": 1000, "firstPartNumber": 1, "lastPartNumber": 1},
            )
            url = urls["urls"][0]["url"]
            async with http.put(url, data=b"x" * 1001) as refused:
                assert refused.status == 403
                assert "SignatureDoesNotMatch" in await refused.text()
            async with http.put(url, data=b"x" * 1000) as stored:
                assert stored.status == 200


async def test_a_completion_without_parts_is_refused(tmp_path: Path) -> None:
    """S3 completes no multipart upload without a part (an empty file is one empty part), so
    DRACOON cannot either: a client that sent none learns it at once, not at download."""
    stand_in = DracoonStandIn(tmp_path)
    async with serving(stand_in):
        state = stand_in.state_entries()
        async with client(state) as service:
            room = await service.ensure_room_path(state["dracoon_parent_room_id"], ["no parts"])
            upload = await service.request(
                "POST", "/v4/nodes/files/uploads", json={"parentId": room.id, "name": "e.bin"}
            )
            with pytest.raises(DracoonError) as refused:
                await service.request(
                    "PUT",
                    f"/v4/nodes/files/uploads/{upload['uploadId']}/s3",
                    json={"parts": [], "fileName": "e.bin"},
                    retry=False,
                )
            assert (refused.value.status, refused.value.code) == (400, -80000)
            assert [node async for node in service.nodes(room.id)] == []


async def test_the_token_endpoint_takes_client_credentials_in_the_body(tmp_path: Path) -> None:
    """RFC 6749 2.3.1: client_id and client_secret in the form body, as the Python SDK's
    login and refresh send them, or HTTP Basic; wrong ones are 401 invalid_client."""
    stand_in = DracoonStandIn(tmp_path)
    async with serving(stand_in), aiohttp.ClientSession() as http:
        state = stand_in.state_entries()
        form = {
            "grant_type": "password",
            "username": state["dracoon_login"],
            "password": state["dracoon_password"],
            "client_id": state["dracoon_client_id"],
        }
        url = f"{state['dracoon_url']}/oauth/token"
        secret = state["dracoon_client_secret"]
        async with http.post(url, data={**form, "client_secret": secret}) as answer:
            assert answer.status == 200, await answer.text()
            assert "access_token" in await answer.json()
        async with http.post(url, data={**form, "client_secret": "wrong"}) as answer:
            assert answer.status == 401
            assert (await answer.json())["error"] == "invalid_client"


@pytest.mark.parametrize("content_type", [None, "application/octet-stream"])
async def test_a_raw_chunk_goes_into_the_upload(tmp_path: Path, content_type: str | None) -> None:
    """uploadFileByTokenAsBinary_1 takes multipart/form-data or the raw bytes under any other
    Content-Type; a raw body without one used to be a 500 (KeyError: 'Content-Type')."""
    stand_in = DracoonStandIn(tmp_path)
    async with serving(stand_in), aiohttp.ClientSession() as http:
        state = stand_in.state_entries()
        async with client(state) as service:
            room = await service.ensure_room_path(state["dracoon_parent_room_id"], ["raw"])
            room_id = (
                await service.request(
                    "POST",
                    "/v4/nodes/rooms",
                    json={"name": "plain", "parentId": room.id},
                )
            )["id"]
            stand_in.model.nodes[room_id].encrypted = False
            channel = await service.request(
                "POST", "/v4/nodes/files/uploads", json={"parentId": room_id, "name": "raw.bin"}
            )
            headers = {"Content-Range": "bytes 0-4/5"}
            if content_type:
                headers["Content-Type"] = content_type
            async with http.post(
                channel["uploadUrl"],
                data=b"hello",
                headers=headers,
                skip_auto_headers=["Content-Type"],
            ) as answer:
                assert answer.status == 201, await answer.text()
            node = await service.request(
                "PUT", channel["uploadUrl"], json={"fileName": "raw.bin"}, retry=False
            )
            assert node["size"] == 5


async def test_node_filters_read_as_the_spec_writes_them(tmp_path: Path) -> None:
    """requestNodes: FIELD:OP:VALUE[:VALUE...], filters joined by '|' (AND); several values
    of eq are alternatives. ``type:eq:room:file`` used to be read as one value and match
    nothing."""
    stand_in = DracoonStandIn(tmp_path)
    async with serving(stand_in):
        state = stand_in.state_entries()
        async with client(state) as service:
            top = await service.ensure_room_path(state["dracoon_parent_room_id"], ["filters"])
            await service.ensure_room_path(top.id, ["sub room"])
            await encrypted_upload(service, top.id, "talk.mp4", b"x", 1024)

            async def names(expression: str) -> list[str]:
                return [n.name async for n in service.nodes(top.id, expression)]

            assert await names("type:eq:room:file") == ["sub room", "talk.mp4"]
            assert await names("type:eq:file|name:cn:TALK") == ["talk.mp4"]
            assert await names("type:eq:room|name:eq:talk.mp4") == []
            assert await names("encrypted:eq:true|perm:eq:read:manage") == [
                "sub room",
                "talk.mp4",
            ]


REFUSED_UPLOADS = [
    pytest.param({"name": "CON.txt"}, (400, -40755), id="reserved-name"),
    pytest.param({"name": "-lead.bin"}, (400, -40755), id="leading-dash"),
    pytest.param({"name": "trail."}, (400, -40755), id="trailing-dot"),
    pytest.param({"name": "a|b.bin"}, (400, -40755), id="pipe"),
    pytest.param({"name": "n.bin", "notes": "x" * 256}, (400, -80007), id="long-notes"),
    pytest.param(
        {
            "name": "e.bin",
            "expiration": {"enableExpiration": True, "expireAt": "2020-01-01T00:00:00Z"},
        },
        (400, -80006),
        id="expired",
    ),
]


@pytest.mark.parametrize(("body", "refusal"), REFUSED_UPLOADS)
async def test_the_stand_in_refuses_what_dracoon_refuses(
    tmp_path: Path, body: dict[str, Any], refusal: tuple[int, int]
) -> None:
    """createFileUploadChannel's "Node naming convention", 255-character notes and an
    expiration in the future (spec), each once accepted by the stand-in."""
    stand_in = DracoonStandIn(tmp_path)
    async with serving(stand_in):
        state = stand_in.state_entries()
        async with client(state) as service:
            parent = state["dracoon_parent_room_id"]
            with pytest.raises(DracoonError) as caught:
                await service.request(
                    "POST", "/v4/nodes/files/uploads", json={"parentId": parent, **body}
                )
            assert (caught.value.status, caught.value.error_code) == refusal


async def test_rooms_listings_and_file_keys_are_checked_as_the_spec_says(tmp_path: Path) -> None:
    """createRoom: a name taken is 409 without errorCode; a top-level room cannot inherit
    (-40017); one that does not inherit needs adminIds (-40006), who become its admins.
    requestNodes: offset=-1 is -80024. setUserFileKeys: a file outside an encrypted room is
    -40001, and a user keeps the file key it has."""
    stand_in = DracoonStandIn(tmp_path)
    async with serving(stand_in):
        state = stand_in.state_entries()
        alice = stand_in.model.user_by_login("alice")
        assert alice is not None

        async def refused(dracoon: Any, method: str, path: str, **kw: Any) -> tuple[Any, Any]:
            with pytest.raises(DracoonError) as caught:
                await dracoon.request(method, path, retry=False, **kw)
            return caught.value.status, caught.value.error_code

        async with client(state) as service:
            parent = state["dracoon_parent_room_id"]
            room = await service.ensure_room_path(parent, ["checked"])
            rooms = "/v4/nodes/rooms"
            taken = {"name": "checked", "parentId": parent}
            assert await refused(service, "POST", rooms, json=taken) == (409, None)
            top = {"name": "top", "inheritPermissions": True, "adminIds": [alice.id]}
            assert await refused(service, "POST", rooms, json=top) == (400, -40017)
            lone = {"name": "lone", "parentId": parent, "inheritPermissions": False}
            assert await refused(service, "POST", rooms, json=lone) == (400, -40006)
            own = await service.request(
                "POST", rooms, json={**lone, "adminIds": [alice.id]}, retry=False
            )
            assert stand_in.model.nodes[own["id"]].members == {alice.id: set(ALL_PERMISSIONS)}
            listing = {"parent_id": parent, "offset": -1}
            assert await refused(service, "GET", "/v4/nodes", params=listing) == (400, -80024)

            node = await encrypted_upload(service, room.id, "k.mp4", b"k", 1024)
            held = await service.user_file_key(node.id)
            encryptor = crypto.FileEncryptor(crypto.generate_file_key())
            encryptor.update(b"another file's key")
            other = crypto.encrypt_file_key(
                encryptor.finalize(), (await service.public_key_container()).to_json()
            )
            me = next(u for u in stand_in.model.users.values() if u.login == state["dracoon_login"])
            await service.set_file_keys([{"fileId": node.id, "userId": me.id, "fileKey": other}])
            assert await service.user_file_key(node.id) == held  # kept, not overwritten

            stand_in.model.nodes[room.id].encrypted = False
            stand_in.model.nodes[node.id].encrypted = False
            item = {"fileId": node.id, "userId": me.id, "fileKey": other}
            keys = "/v4/nodes/files/keys"
            assert await refused(service, "POST", keys, json={"items": [item]}) == (400, -40001)


async def test_search_and_room_encryption_follow_the_spec(tmp_path: Path) -> None:
    """searchNodes: depth_level 0 is the parent's children, -1 every level; ``*`` is a
    wildcard. encryptRoom: only an empty top-level room (-40008 with files in it)."""
    stand_in = DracoonStandIn(tmp_path)
    async with serving(stand_in):
        state = stand_in.state_entries()
        async with client(state) as service:
            parent = state["dracoon_parent_room_id"]
            room = await service.ensure_room_path(parent, ["talks", "2026"])
            await encrypted_upload(service, room.id, "keynote.mp4", b"k", 1024)

            async def search(text: str, depth: int) -> list[str]:
                params = {"search_string": text, "depth_level": depth, "parent_id": parent}
                found = await service.request("GET", "/v4/nodes/search", params=params)
                return [n["name"] for n in found["items"]]

            assert await search("note", 0) == []
            assert await search("note", -1) == ["keynote.mp4"]
            assert await search("*.mp4", -1) == ["keynote.mp4"]
            assert await search("2026", 1) == ["2026"]
            for room_id, refusal in ((parent, -40008), (room.id, -80000)):
                with pytest.raises(DracoonError) as caught:
                    await service.request(
                        "PUT",
                        f"/v4/nodes/rooms/{room_id}/encrypt",
                        json={"isEncrypted": True},
                        retry=False,
                    )
                assert (caught.value.status, caught.value.error_code) == (400, refusal)


async def test_malformed_requests_are_the_clients_error_not_a_500(tmp_path: Path) -> None:
    """A body without a field the operation needs, or a value of the wrong type: 400 -80000
    (Mandatory fields cannot be empty), as DRACOON answers; the stand-in crashed with 500."""
    stand_in = DracoonStandIn(tmp_path)
    async with serving(stand_in):
        state = stand_in.state_entries()
        async with client(state) as service:
            parent = state["dracoon_parent_room_id"]
            channel = await service.request(
                "POST", "/v4/nodes/files/uploads", json={"parentId": parent, "name": "m.bin"}
            )
            urls = f"/v4/nodes/files/uploads/{channel['uploadId']}/s3_urls"
            for body in ({"firstPartNumber": 1, "lastPartNumber": 1}, {"size": "big"}):
                with pytest.raises(DracoonError) as caught:
                    await service.request("POST", urls, json=body, retry=False)
                assert (caught.value.status, caught.value.error_code) == (400, -80000)
