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

from recstore.clients.dracoon import DracoonError
from recstore.devstack.dracoon import DracoonStandIn
from recstore.devstack.stack import serving
from recstore.transfer.keys import MissingKeyResolver
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
            await service.room_users(room["id"])
            for direct in (True, False):
                stand_in.use_s3_storage = direct
                service._system_info = None
                data = os.urandom(6 * 1024 * 1024 + 7)
                node = await encrypted_upload(
                    service, room["id"], f"f{direct}.mp4", data, 6 * 1024 * 1024
                )
            resolver = MissingKeyResolver(await service.private_keys())
            page = await service.missing_file_keys_page(room_id=room["id"])
            await service.set_file_keys(
                [g.to_json() for g in resolver.grants_for_page(page).grants]
            )
            channel = await service.request(
                "POST",
                "/v4/nodes/files/uploads",
                json={"parentId": room["id"], "name": "cancelled.bin"},
            )
            await service.request("DELETE", f"/v4/nodes/files/uploads/{channel['uploadId']}")
            with pytest.raises(Exception, match="409"):
                await service.request(
                    "POST",
                    "/v4/nodes/rooms",
                    json={"name": "check", "parentId": room["parentId"]},
                    retry=False,
                )
        async with client(state, "alice") as reader:
            await downloaded_sha256(reader, node["id"], True)
            await reader.request("GET", "/v4/user/account")
            await reader.request("GET", "/v4/user/account/keypairs")
        async with client(state) as service:
            await service.remove_node(node["id"])
            with pytest.raises(Exception, match="404"):
                await service.request("GET", f"/v4/nodes/{node['id']}", retry=False)

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
            kept = await encrypted_upload(service, room["id"], "kept.mp4", data, 6 * 1024 * 1024)
            gone = await encrypted_upload(service, room["id"], "gone.mp4", data, 6 * 1024 * 1024)
            stored = stored_bytes(tmp_path)
            await service.remove_node(gone["id"])
            await service.remove_node(gone["id"])  # gone already: done, not an error
            assert stored_bytes(tmp_path) == stored - gone["size"]
            assert await service.child_named(room["id"], "kept.mp4") is not None
            assert await service.child_named(room["id"], "gone.mp4") is None
            async with client(state, "alice") as reader:  # a reader may not remove
                with pytest.raises(DracoonError, match="403"):
                    await reader.remove_node(kept["id"])
            await service.remove_node(room["parentId"])  # all below too
            assert stored_bytes(tmp_path) == stored - gone["size"] - kept["size"]
            with pytest.raises(DracoonError, match="404"):
                await service.request("GET", f"/v4/nodes/{room['id']}", retry=False)


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

            def upload(name: str, resolution: str) -> Awaitable[dict[str, Any]]:
                return encrypted_upload(
                    service, room["id"], name, b"recording", 1024, resolution=resolution
                )

            renamed = await asyncio.gather(*(upload("talk.mp4", "autorename") for _ in "ab"))
            assert sorted(node["name"] for node in renamed) == ["talk (1).mp4", "talk.mp4"]
            outcomes = await asyncio.gather(
                *(upload("other.mp4", "fail") for _ in "ab"), return_exceptions=True
            )
            refused = [o for o in outcomes if isinstance(o, DracoonError)]
            assert [o["name"] for o in outcomes if isinstance(o, dict)] == ["other.mp4"]
            assert [error.status for error in refused] == [409]
            names = [node["name"] async for node in service.nodes(room["id"])]
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
                "POST", "/v4/nodes/files/uploads", json={"parentId": room["id"], "name": "s.bin"}
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
                "POST", "/v4/nodes/files/uploads", json={"parentId": room["id"], "name": "e.bin"}
            )
            with pytest.raises(DracoonError) as refused:
                await service.request(
                    "PUT",
                    f"/v4/nodes/files/uploads/{upload['uploadId']}/s3",
                    json={"parts": [], "fileName": "e.bin"},
                    retry=False,
                )
            assert (refused.value.status, refused.value.code) == (400, -80000)
            assert [node async for node in service.nodes(room["id"])] == []
