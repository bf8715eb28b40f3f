"""DracoonGlobalSharer against the DRACOON stand-in and moto: late joiners get their keys,
a corrupt key does not stop the others, and two daemons share one lease."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import ClientSession as aiohttp_session

from recstore import crypto
from recstore.devstack.appconfig import app_config
from tests.conftest import (
    StackProcess,
    faults_injected,
    run_cli,
    set_faults,
    start_daemon,
)
from tests.dracoon_helpers import (
    admin,
    client,
    downloaded_sha256,
    encrypted_upload,
    stand_in_state,
)

pytestmark = pytest.mark.long  # tens of seconds: xdist starts it early

MEMBER_PASSWORD = "pw-member"
ENCRYPTION = "enc-member"


def config(state: dict[str, Any], tmp_path: Path, **sharer: Any) -> Path:
    doc = app_config(state, http_port=0)
    doc["workers"]["FileTransferer"]["enabled"] = False
    doc["workers"]["DracoonGlobalSharer"] = {"count": 1, "jobDelayMinutes": 1, **sharer}
    doc["leases"] = {
        "bucket": state["bucket"],
        "ttl": "10s",
        "prefix": f"leases-{uuid.uuid4().hex[:6]}/",
    }
    path = tmp_path / f"sharer-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def with_member(state: dict[str, Any], login: str) -> dict[str, Any]:
    member = {"login": login, "password": MEMBER_PASSWORD, "encryption_password": ENCRYPTION}
    return {**state, "dracoon_members": [*state["dracoon_members"], member]}


async def room_with_files(
    state: dict[str, Any], count: int, name: str
) -> tuple[int, list[tuple[int, bytes]]]:
    seed = {
        "rooms": [
            {
                "path": name,
                "encrypted": True,
                "members": [
                    {"login": state["dracoon_login"], "permissions": ["read", "create", "manage"]}
                ],
            }
        ]
    }
    room = (await admin(state, "seed", seed))["rooms"][name]
    files = []
    async with client(state) as service:
        for i in range(count):
            data = f"{name} recording {i}".encode()
            node = await encrypted_upload(service, room, f"r{i}.mp4", data, 1024)
            files.append((node.id, data))
    return room, files


async def join(state: dict[str, Any], room_path: str, login: str, versions: list[str]) -> None:
    users = [
        {
            "login": login,
            "password": MEMBER_PASSWORD,
            "keyPairs": [{"version": v, "encryptionPassword": ENCRYPTION} for v in versions],
        }
    ]
    await admin(
        state,
        "seed",
        {
            "users": users,
            "rooms": [{"path": room_path, "members": [{"login": login, "permissions": ["read"]}]}],
        },
    )


async def can_open(state: dict[str, Any], login: str, file_id: int, data: bytes) -> bool:
    async with client(with_member(state, login), login) as reader:
        import hashlib

        return await downloaded_sha256(reader, file_id, True) == hashlib.sha256(data).hexdigest()


def test_late_joiners_can_open_files_after_one_run(devstack: StackProcess, tmp_path: Path) -> None:
    state = devstack.state
    tag = uuid.uuid4().hex[:6]
    name = f"Late {tag}"
    room, files = asyncio.run(room_with_files(state, 2, name))
    joiners = {f"dave{tag}": ["A"], f"erin{tag}": ["RSA-4096"], f"frank{tag}": ["A", "RSA-4096"]}
    for login, versions in joiners.items():
        asyncio.run(join(state, name, login, versions))
    cfg = config(state, tmp_path)
    dry = run_cli("share-keys", "--config", str(cfg), "--dry-run", "--room", str(room))
    assert dry.returncode == 0, dry.stderr
    assert "would write 8 file key(s) for 3 user(s) on 2 file(s)" in dry.stdout  # frank: 2 keys
    # --room: other tests of the session may leave keys missing elsewhere in the stack
    result = run_cli("share-keys", "--config", str(cfg), "--room", str(room))
    assert result.returncode == 0, result.stderr
    assert "wrote 8 file key(s) for 3 user(s) on 2 file(s)" in result.stdout
    for login in joiners:
        for file_id, data in files:
            assert asyncio.run(can_open(state, login, file_id, data)), login
    again = run_cli("share-keys", "--config", str(cfg), "--room", str(room))
    assert "wrote 0 file key(s)" in again.stdout


def test_more_than_a_hundred_missing_keys_across_rooms(
    devstack: StackProcess, tmp_path: Path
) -> None:
    state = devstack.state
    tag = uuid.uuid4().hex[:6]
    # Keys other tests of the session left missing are written first, so the run below
    # counts only this test's.
    assert run_cli("share-keys", "--config", str(config(state, tmp_path))).returncode == 0
    rooms = [f"Many {tag} {i}" for i in range(2)]
    files = []
    for name in rooms:
        files += asyncio.run(room_with_files(state, 30, name))[1]
        for login in (f"gina{tag}", f"hank{tag}"):
            asyncio.run(join(state, name, login, ["A"]))
    result = run_cli("share-keys", "--config", str(config(state, tmp_path)))
    assert result.returncode == 0, result.stderr
    assert "wrote 120 file key(s) for 2 user(s) on 60 file(s)" in result.stdout
    file_id, data = files[-1]
    assert asyncio.run(can_open(state, f"hank{tag}", file_id, data))


def test_a_corrupt_public_key_does_not_stop_the_others(
    devstack: StackProcess, tmp_path: Path
) -> None:
    state = devstack.state
    tag = uuid.uuid4().hex[:6]
    assert run_cli("share-keys", "--config", str(config(state, tmp_path))).returncode == 0
    name = f"Corrupt {tag}"
    _, files = asyncio.run(room_with_files(state, 1, name))
    asyncio.run(join(state, name, f"mallory{tag}", []))
    asyncio.run(join(state, name, f"ivan{tag}", ["RSA-4096"]))

    async def corrupt_key() -> None:
        private, _ = crypto.generate_user_keypair("A", ENCRYPTION, iterations=1000)
        broken = {
            "version": "A",
            "publicKey": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        }
        async with client(with_member(state, f"mallory{tag}"), f"mallory{tag}") as mallory:
            await mallory.request(
                "POST",
                "/v4/user/account/keypair",
                json={"privateKeyContainer": private, "publicKeyContainer": broken},
            )

    asyncio.run(corrupt_key())
    result = run_cli("share-keys", "--config", str(config(state, tmp_path)))
    assert result.returncode == 0, result.stderr
    assert "wrote 1 file key(s) for 1 user(s)" in result.stdout
    assert "1 skipped" in result.stdout
    assert " 15016 " in result.stderr
    assert "public key unusable" in result.stderr
    file_id, data = files[0]
    assert asyncio.run(can_open(state, f"ivan{tag}", file_id, data))


def test_a_server_that_keeps_listing_accepted_keys_gets_each_key_once(
    devstack: StackProcess, tmp_path: Path
) -> None:
    """DRACOON drops a written key from its list of missing ones, and the sharer asks for the
    list again after each write. A server that accepts keys and keeps listing them (here: it
    answers 204 and stores nothing) must not make the run write them for ever."""
    state = devstack.state
    tag = uuid.uuid4().hex[:6]
    name = f"Lossy {tag}"
    room, _ = asyncio.run(room_with_files(state, 2, name))
    asyncio.run(join(state, name, f"lena{tag}", ["RSA-4096"]))
    url = state["dracoon_url"]
    lossy = {"error_rate": 1, "error_status": 204, "path_pattern": "/nodes/files/keys$"}
    asyncio.run(set_faults(url, {**lossy, "methods": ["POST"]}))
    try:
        result = run_cli(
            "share-keys", "--config", str(config(state, tmp_path)), "--room", str(room)
        )
        writes = asyncio.run(faults_injected(url))
    finally:
        asyncio.run(set_faults(url, {}))
    assert result.returncode == 0, result.stderr
    assert "wrote 2 file key(s) for 1 user(s) on 2 file(s)" in result.stdout
    assert writes == 1  # both keys in one request, sent once
    assert "DRACOON still lists 2 file key(s) it accepted" in result.stderr
    assert " 15016 " in result.stderr


def lease_held(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return 'recstore_lease_held{job="dracoon_global_sharer"} 1.0' in text


def start(path: Path, log: Path) -> tuple[subprocess.Popen[str], int]:
    proc = start_daemon(path, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        match = re.search(r"http_port=(\d+)", log.read_text())
        if match:
            return proc, int(match.group(1))
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(log.read_text())


@pytest.mark.e2e
def test_two_daemons_one_lease_and_a_takeover(devstack: StackProcess, tmp_path: Path) -> None:
    cfg = config(devstack.state, tmp_path)
    (first, port1), (second, port2) = start(cfg, tmp_path / "a.log"), start(cfg, tmp_path / "b.log")
    try:
        deadline = time.monotonic() + 20
        while not (lease_held(port1) or lease_held(port2)):
            assert time.monotonic() < deadline, "nobody took the lease"
            time.sleep(0.2)
        time.sleep(1)
        holders = [lease_held(port1), lease_held(port2)]
        assert holders.count(True) == 1
        holder, (other, other_port) = (
            (first, (second, port2)) if holders[0] else (second, (first, port1))
        )
        holder.send_signal(signal.SIGKILL)  # no release: the lease must expire
        holder.wait()
        deadline = time.monotonic() + 30
        while not lease_held(other_port):
            assert time.monotonic() < deadline, "the survivor never took over"
            time.sleep(0.5)
        assert other.poll() is None
    finally:
        for proc in (first, second):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)


@pytest.mark.parametrize("count", [2])
def test_config_refuses_more_than_one_sharer(tmp_path: Path, count: int) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "workers": {
                    "FileTransferer": {"enabled": False},
                    "DracoonGlobalSharer": {"count": count},
                }
            }
        )
    )
    result = run_cli("config", "check", "--config", str(path))
    assert result.returncode == 2
    assert "workers.DracoonGlobalSharer.count" in result.stderr


async def test_instances_known_only_to_the_configurator_are_covered_once_served(
    devstack: StackProcess,
) -> None:
    """Seed 004 keeps instance configuration in the configurator; the sharer must cover the
    accounts of the instances whose jobs the daemon served, from any replica, not only
    ``dracoon.*`` and the YAML's ``instances:``."""
    from recstore.clients.aws import aws_client
    from recstore.clients.http import http_session
    from recstore.clients.s3 import S3Store
    from recstore.common.errors import RecstoreError
    from recstore.settings import Settings
    from recstore.transfer.job import parse_job
    from recstore.workers.accounts import AccountPool, ServedInstances
    from recstore.workers.file_transferer import TransferService
    from recstore.workers.global_sharer import share_all

    state = devstack.state
    alice = state["dracoon_members"][0]
    domain = f"configured-only-{uuid.uuid4().hex[:6]}.example.com"
    answer = {
        "recordings.dracoon.parent-room-id": state["dracoon_parent_room_id"],
        "recordings.dracoon.login": alice["login"],
        "recordings.dracoon.password": alice["password"],
        "recordings.dracoon.encryption-password": alice["encryption_password"],
    }
    async with (
        aiohttp_session() as http,
        http.post(
            f"{state['configurator_url']}/_devstack/seed", json={"instances": {domain: answer}}
        ) as seeded,
    ):
        assert seeded.status == 200
    doc = app_config(state, http_port=0)
    # the lease bucket apart from the recordings: a bucket recstore writes is never a source
    doc["leases"] = {"bucket": state["lease_bucket"], "prefix": f"served-{uuid.uuid4().hex[:6]}/"}
    settings = Settings.model_validate(doc)
    job = {
        "storage": {
            "type": "dracoon",
            "extra": {"aws.s3": {"bucket": "recordings", "keys": ["gone/talk.mp4"]}},
        },
        "meeting": {"id": 1, "type": {"name": "live now"}},
        "instance": {"domain": domain},
    }

    async def sharer_accounts() -> list[str]:
        """The logins one sharer run on another replica covers (its own S3 list reader)."""
        async with (
            http_session(10) as session,
            aws_client(settings.aws, "s3") as s3,
        ):
            pool = AccountPool(settings.dracoon, session)
            try:
                served = ServedInstances.of(settings, S3Store(s3))
                report = await share_all(settings, pool, served=served, session=session)
                assert report.accounts == len(pool.clients())
                return sorted(c.account.login for c in pool.clients())
            finally:
                await pool.close()

    assert await sharer_accounts() == [state["dracoon_login"]]
    async with TransferService(settings) as service:
        with pytest.raises(RecstoreError):  # the job fails (no such source): beside the point
            await service.run_job(parse_job(json.dumps(job)))
    assert await sharer_accounts() == sorted([state["dracoon_login"], alice["login"]])


def test_an_account_moving_to_rsa_4096_shares_the_files_of_both_its_key_pairs(
    devstack: StackProcess, tmp_path: Path
) -> None:
    """The sharing account holds an ``A`` and an ``RSA-4096`` key pair, as while its customer
    moves to 4096-bit keys: one file it holds only under ``A`` (uploaded before the move),
    one only under RSA-4096. Every member gets both, whatever their own pairs; a late joiner
    then finds each file listed twice (once per file key the account holds)."""
    state = devstack.state
    tag = uuid.uuid4().hex[:6]
    name, sharer = f"Migrating {tag}", f"mig{tag}"
    members = {f"old{tag}": ["A"], f"new{tag}": ["RSA-4096"]}
    asyncio.run(join(state, name, sharer, ["A", "RSA-4096"]))
    for login, versions in members.items():
        asyncio.run(join(state, name, login, versions))
    owner = {"login": sharer, "permissions": ["read", "create", "manage"]}
    room_id = asyncio.run(
        admin(state, "seed", {"rooms": [{"path": name, "encrypted": True, "members": [owner]}]})
    )["rooms"][name]
    as_sharer = {
        **with_member(state, sharer),
        "dracoon_login": sharer,
        "dracoon_password": MEMBER_PASSWORD,
        "dracoon_encryption_password": ENCRYPTION,
    }

    async def upload_under_each_version() -> list[tuple[int, bytes]]:
        files = []
        async with client(as_sharer) as dracoon:
            for version in ("A", "RSA-4096"):
                data = f"held under {version}".encode()
                node = await encrypted_upload(dracoon, room_id, f"{version}.mp4", data, 64, version)
                files.append((node.id, data))
        return files

    files = asyncio.run(upload_under_each_version())
    cfg = config(as_sharer, tmp_path)
    result = run_cli("share-keys", "--config", str(cfg), "--room", str(room_id))
    assert result.returncode == 0, result.stderr
    # Each file: old's A, new's RSA-4096, the service account's (it made the room) and the
    # sharer's other pair. The page says which user lacks a key to which file, not of which
    # version, so each public key listed for the sharer gets a copy (as the Java SDK's
    # FileKeyGenerator does): 5 a file, one of them the sharer's own again.
    assert "wrote 10 file key(s) for 4 user(s) on 2 file(s)" in result.stdout, result.stderr
    keys = asyncio.run(stand_in_state(state))["fileKeys"]
    held = {(k["fileId"], k["userId"], k["version"]) for k in keys if k["fileId"] in dict(files)}
    assert len(held) == 10  # 5 users' pairs (the sharer's two, three others' one) x 2 files
    for login in members:
        for file_id, data in files:
            assert asyncio.run(can_open(state, login, file_id, data)), (login, file_id)

    late = f"late{tag}"
    asyncio.run(join(state, name, late, ["A", "RSA-4096"]))
    result = run_cli("share-keys", "--config", str(cfg), "--room", str(room_id))
    assert "wrote 4 file key(s) for 1 user(s) on 2 file(s)" in result.stdout, result.stderr
    for file_id, data in files:
        assert asyncio.run(can_open(state, late, file_id, data))
