"""The official DRACOON Python SDK (PyPI ``dracoon`` 1.13.0) as a second client of the stand-in.

It logs in as DRACOON's own tools do (client credentials in the form body, the config and auth
info of its ``connect``), uploads encrypted files through both channels that recstore's key
sharing then hands out, and opens files recstore uploaded. The SDK runs in its own environment
(``.venv-sdk``, built by ``make sdk-venv``; see ``tests/dracoon_sdk_client.py`` for why).

Members here hold RSA-4096 key pairs: the SDK's RSA-2048 (``A``) file keys use OAEP with
SHA-1 as the hash and SHA-256 for MGF1, the reverse of TripleCrypt's ``A``
(``dracoon/crypto/__init__.py`` lines 189-192, 227-230 and 260-261 in 1.13.0), so its ``A``
keys open nowhere else; ``A`` is held by the Java SDK's vectors in
``tests/test_crypto_vectors.py`` instead, and the stand-in is not bent to the SDK.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from recstore.transfer.keys import share_missing_keys
from tests.conftest import ROOT, StackProcess
from tests.dracoon_helpers import admin, client, destination, downloaded_sha256, encrypted_upload

SDK_PYTHON = ROOT / ".venv-sdk" / "bin" / "python"
SCRIPT = ROOT / "tests" / "dracoon_sdk_client.py"

pytestmark = pytest.mark.skipif(
    not SDK_PYTHON.exists(), reason="the DRACOON SDK's environment is missing: make sdk-venv"
)


async def sdk(state: dict[str, Any], login: str, **args: Any) -> dict[str, Any]:
    """Run one action of the SDK as member ``login``; its JSON answer."""
    member = next(m for m in state["dracoon_members"] if m["login"] == login)
    document = {
        "url": state["dracoon_url"],
        "client_id": state["dracoon_client_id"],
        "client_secret": state["dracoon_client_secret"],
        "login": login,
        "password": member["password"],
        "encryption_password": member["encryption_password"],
        **args,
    }
    done = await asyncio.to_thread(
        subprocess.run,
        [str(SDK_PYTHON), str(SCRIPT), json.dumps(document)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def room_where_bob_uploads(state: dict[str, Any]) -> tuple[str, int]:
    """A top-level encrypted room where bob (RSA-4096) uploads, the service account (its
    creator) reads and nobody holds an ``A`` key pair yet."""
    path = f"SDK {uuid.uuid4().hex[:6]}"
    members = [
        {"login": state["dracoon_login"], "permissions": ["read", "create", "manage"]},
        {"login": "bob", "permissions": ["read", "create"]},
    ]
    seed = {"rooms": [{"path": path, "encrypted": True, "members": members}]}
    return path, int((await admin(state, "seed", seed))["rooms"][path])


async def late_joiners(state: dict[str, Any], path: str) -> dict[str, Any]:
    """An ``A`` and an RSA-4096 member join the room; the state that logs them in."""
    tag = uuid.uuid4().hex[:6]
    joined = []
    for login, version in ((f"carol{tag}", "A"), (f"dan{tag}", "RSA-4096")):
        secret = f"pw-{login}"
        user = {"login": login, "password": secret}
        pair = {"version": version, "encryptionPassword": f"enc-{login}"}
        room = {"path": path, "members": [{"login": login, "permissions": ["read"]}]}
        await admin(state, "seed", {"users": [{**user, "keyPairs": [pair]}], "rooms": [room]})
        joined.append({**user, "encryption_password": f"enc-{login}"})
    return {**state, "dracoon_members": [*state["dracoon_members"], *joined]}


@pytest.mark.parametrize("direct_s3", [True, False], ids=["s3-direct", "legacy"])
async def test_files_the_sdk_uploads_are_shared_by_recstore(
    devstack: StackProcess, tmp_path: Path, direct_s3: bool
) -> None:
    """The SDK uploads (and, after an S3 upload, itself hands keys to the members it finds);
    members who join later get theirs from recstore's key sharing, run for the uploader."""
    state = devstack.state
    await admin(state, "settings", {"useS3Storage": direct_s3})
    try:
        path, room_id = await room_where_bob_uploads(state)
        data = os.urandom(6 * 1024 * 1024 + 3)  # two parts through S3
        source = tmp_path / "sdk-upload.bin"
        source.write_bytes(data)
        uploaded = await sdk(state, "bob", action="upload", file=str(source), room_id=room_id)
        node_id = int(uploaded["id"])
    finally:
        await admin(state, "settings", {"useS3Storage": True})
    joined = await late_joiners(state, path)
    async with client(joined, "bob") as bob:  # recstore's sharer, for the uploader's account
        report = await share_missing_keys(destination(bob), file_id=node_id)
    assert report.written >= 2  # carol (A) and dan (RSA-4096); the service account if legacy
    expected = hashlib.sha256(data).hexdigest()
    readers = [None, *(m["login"] for m in joined["dracoon_members"][-2:])]
    for login in readers:
        async with client(joined, login) as reader:
            assert await downloaded_sha256(reader, node_id, True) == expected, login


async def test_the_sdk_opens_what_recstore_uploaded(devstack: StackProcess, tmp_path: Path) -> None:
    state = devstack.state
    _, room_id = await room_where_bob_uploads(state)
    data = os.urandom(3 * 1024 * 1024 + 1)
    async with client(state) as service:
        node = await encrypted_upload(service, room_id, "recstore.mp4", data, 1024 * 1024)
        await share_missing_keys(destination(service), file_id=node.id)
    target = tmp_path / "downloaded"
    target.mkdir()
    answer = await sdk(state, "bob", action="download", file_id=node.id, target=str(target))
    assert answer["sha256"] == hashlib.sha256(data).hexdigest()
