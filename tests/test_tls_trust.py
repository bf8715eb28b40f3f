"""A private CA is trusted through the settings (``aws.caBundle``, ``dracoon.caFile``), with
the certificate still checked: a server it signed is reached, and without the setting the
same server is refused."""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr

from recstore.clients.aws import aws_client
from recstore.clients.http import http_session
from recstore.clients.s3 import S3Store
from recstore.common.errors import RemoteError
from recstore.devstack.stack import up_command
from recstore.devstack.tls import throwaway_ca
from recstore.settings import AwsSettings
from tests.archive_helpers import FAST
from tests.conftest import clean_env, until


async def answer(request: web.Request) -> web.Response:
    """A HEAD of an S3 object, or any other GET: five bytes."""
    return web.Response(body=b"hello", headers={"ETag": '"5d41402abc4b2a76b9719d911017c592"'})


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    made = throwaway_ca(tmp_path)
    ca_file, context = made.ca_file, made.server_context()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"https://127.0.0.1:{port}", ca_file
    finally:
        await runner.cleanup()


def s3_settings(url: str, ca_bundle: Path | None) -> AwsSettings:
    return AwsSettings.model_validate(
        {
            "region": "us-east-1",
            "s3EndpointUrl": url,
            "accessKeyId": "k",
            "secretAccessKey": SecretStr("s"),
            "caBundle": ca_bundle,
        }
    )


async def test_s3_over_https_trusts_the_ca_bundle_of_its_settings(
    tls_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, ca_file = tls_server
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    async with aws_client(s3_settings(url, ca_file), "s3") as client:
        info = await S3Store(client, FAST).head("bucket", "key")
    assert info.size == 5
    async with aws_client(s3_settings(url, None), "s3") as client:
        with pytest.raises(RemoteError):
            await S3Store(client, FAST).head("bucket", "key")


async def test_dracoon_sessions_trust_the_ca_file_of_their_settings(
    tls_server: tuple[str, Path],
) -> None:
    url, ca_file = tls_server
    async with http_session(10, ca_file=ca_file) as http, http.get(url + "/x") as got:
        assert await got.read() == b"hello"
    async with http_session(10) as http:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await http.get(url + "/x")


@pytest.mark.e2e
async def test_the_dev_stack_serves_its_stand_ins_over_https(tmp_path: Path) -> None:
    made = throwaway_ca(tmp_path / "tls")
    state_file = tmp_path / "state.json"
    log = tmp_path / "devstack.log"
    with log.open("w") as errors:  # the child keeps its own copy of the file
        proc = subprocess.Popen(
            up_command(state_file, tmp_path / "data", (made.cert_file, made.key_file)),
            stdout=subprocess.DEVNULL,
            stderr=errors,
            env=clean_env(),
        )
    try:

        async def written() -> bool:
            assert proc.poll() is None, log.read_text()
            return state_file.exists()

        await until(written, 60)
        state = json.loads(state_file.read_text())
        url = state["dracoon_url"]
        assert url.startswith("https://127.0.0.1:")
        async with (
            http_session(10, ca_file=made.ca_file) as http,
            http.get(f"{url}/api/v4/public/system/info") as got,
        ):
            assert got.status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
