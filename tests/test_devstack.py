"""The dev stack as the CLI runs it: up, state file, resources, seed, config, and down."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from recstore.clients.aws import aws_client
from recstore.devstack.seed import aws_settings_from_state, synthetic_sha256
from recstore.workers.registry import load_settings
from tests.conftest import ROOT, StackProcess, daemon_env, run_cli, run_cli_process

# The dev stack and the demo as the CLI starts them, in processes of their own.
pytestmark = pytest.mark.e2e

REQUIRED = {
    "s3_endpoint",
    "sqs_endpoint",
    "region",
    "aws_access_key_id",
    "aws_secret_access_key",
    "queue_url",
    "dlq_url",
    "bucket",
}


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def test_state_file_lists_every_endpoint(devstack: StackProcess) -> None:
    assert set(devstack.state) >= REQUIRED
    assert devstack.state["s3_endpoint"].startswith("http://127.0.0.1:")


async def test_queues_have_a_redrive_policy_to_the_dlq(devstack: StackProcess) -> None:
    state = devstack.state
    async with aws_client(aws_settings_from_state(state), "sqs") as sqs:
        attrs = await sqs.get_queue_attributes(QueueUrl=state["queue_url"], AttributeNames=["All"])
        dlq = await sqs.get_queue_attributes(QueueUrl=state["dlq_url"], AttributeNames=["QueueArn"])
    redrive = json.loads(attrs["Attributes"]["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == dlq["Attributes"]["QueueArn"]
    assert int(redrive["maxReceiveCount"]) == 5


def test_seed_s3_creates_objects_with_the_promised_bytes(
    devstack: StackProcess, tmp_path: Path
) -> None:
    doc = {
        "objects": [
            {"key": "sandbox/test-video.mp4", "size": 3 * 1024 * 1024, "seed": 11},
            {"key": "sandbox/notes.txt", "text": "hello"},
        ]
    }
    (tmp_path / "seed.json").write_text(json.dumps(doc))
    result = run_cli(
        "devstack",
        "seed",
        "s3",
        "--state-file",
        str(devstack.state_file),
        "--file",
        str(tmp_path / "seed.json"),
    )
    assert result.returncode == 0, result.stderr
    created = {o["key"]: o for o in json.loads(result.stdout)}
    assert created["sandbox/test-video.mp4"]["sha256"] == synthetic_sha256(3 * 1024 * 1024, 11)

    async def read_back() -> tuple[bytes, int]:
        async with aws_client(aws_settings_from_state(devstack.state), "s3") as s3:
            text = await (await s3.get_object(Bucket="recordings", Key="sandbox/notes.txt"))[
                "Body"
            ].read()
            head = await s3.head_object(Bucket="recordings", Key="sandbox/test-video.mp4")
        return text, head["ContentLength"]

    text, size = asyncio.run(read_back())
    assert (text, size) == (b"hello", 3 * 1024 * 1024)


def test_seed_rejects_a_bad_document(devstack: StackProcess, tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text(json.dumps({"objects": [{"text": "no key"}]}))
    result = run_cli(
        "devstack",
        "seed",
        "s3",
        "--state-file",
        str(devstack.state_file),
        "--file",
        str(tmp_path / "bad.json"),
    )
    assert result.returncode == 1
    assert "objects[0].key" in result.stderr


def test_devstack_config_points_a_valid_configuration_at_the_stack(
    devstack: StackProcess, tmp_path: Path
) -> None:
    result = run_cli(
        "devstack", "config", "--state-file", str(devstack.state_file), "--http-port", "0"
    )
    assert result.returncode == 0, result.stderr
    path = tmp_path / "app.yaml"
    path.write_text(result.stdout)
    settings = load_settings(path, {})
    assert settings.aws.s3_endpoint_url == devstack.state["s3_endpoint"]
    ft = settings.workers.file_transferer
    assert settings.queue_url(ft.queue) == devstack.state["queue_url"]
    assert settings.queue_url(ft.dead_letter_queue) == devstack.state["dlq_url"]
    assert yaml.safe_load(result.stdout)["http"]["port"] == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_up_and_down_leaves_nothing_behind(tmp_path: Path, sig: int) -> None:
    stack = StackProcess(tmp_path)
    pid = stack.proc.pid
    data_dir = Path(stack.state["data_dir"])
    assert data_dir.exists()
    assert children_of(pid) == []  # everything runs inside the one process
    stack.proc.send_signal(sig)
    assert stack.proc.wait(timeout=30) == 0, stack.log_file.read_text()
    assert not stack.state_file.exists()
    assert not data_dir.exists()
    assert not Path(f"/proc/{pid}").exists()
    host, port = stack.state["s3_endpoint"].removeprefix("http://").split(":")
    with pytest.raises(ConnectionError):
        socket.create_connection((host, int(port)), timeout=2).close()


def test_demo_runs_start_to_finish() -> None:
    result = run_cli_process("demo", timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "GET /healthcheck → 200" in result.stdout
    out = result.stdout
    assert out.count("matches the source") == 4  # the video went to two rooms
    assert out.count("source removed from S3") == 3
    assert "job campus.example.org/22982: instance from the configurator" in out
    assert "/Recordings/Lectures/campus.example.org/lecture-01.mp4" in out
    assert "reason: storage.type: is not a known storage" in out
    assert "exited with status 0" in result.stdout
    assert "all checks passed" in result.stdout


async def test_injected_faults_draw_each_listed_status(devstack: StackProcess) -> None:
    import aiohttp

    url = devstack.state["configurator_url"]
    plan = {"error_rate": 1, "error_status": [503, 429], "retry_after": 2, "count": 12}
    async with aiohttp.ClientSession() as session:
        await session.post(f"{url}/_devstack/faults", json=plan)
        try:
            seen = []
            for _ in range(12):
                async with session.get(f"{url}/instances/any.example") as answer:
                    seen.append((answer.status, answer.headers.get("Retry-After")))
            async with session.get(f"{url}/instances/any.example") as answer:
                after = answer.status  # the count is spent: the stand-in answers for itself
        finally:
            await session.post(f"{url}/_devstack/faults", json={})
    assert {status for status, _ in seen} == {503, 429}
    assert {retry for _, retry in seen} == {"2"}
    assert after == 404


async def test_the_s3_proxy_keeps_a_tiered_object_archived_until_it_is_replaced(
    devstack: StackProcess,
) -> None:
    """The proxy's Intelligent-Tiering model ends only where S3's would: tags, reads of tags
    and a multipart upload's parts leave the object in its archive tier; a new PUT or a delete
    of the key ends it. A malformed move is refused with what it needs."""
    import aiohttp
    from botocore.exceptions import ClientError

    bucket, key = devstack.state["bucket"], "tiering/model.bin"
    settings = aws_settings_from_state(devstack.through_s3_proxy())
    direct = aws_settings_from_state(devstack.state)  # moto itself, past the proxy
    async with aws_client(settings, "s3") as s3, aws_client(direct, "s3") as moto:

        async def archive_status() -> str | None:
            head = await s3.head_object(Bucket=bucket, Key=key)
            return head.get("ArchiveStatus")

        await s3.put_object(Bucket=bucket, Key=key, Body=b"old", StorageClass="INTELLIGENT_TIERING")
        await devstack.move_to_archive_tier(bucket, key)
        await s3.put_object_tagging(
            Bucket=bucket, Key=key, Tagging={"TagSet": [{"Key": "k", "Value": "v"}]}
        )
        tags = await s3.get_object_tagging(Bucket=bucket, Key=key)
        assert tags["TagSet"] == [{"Key": "k", "Value": "v"}]
        upload = await s3.create_multipart_upload(Bucket=bucket, Key=key)
        part = await s3.upload_part(
            Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=b"new"
        )
        assert await archive_status() == "ARCHIVE_ACCESS"
        with pytest.raises(ClientError) as refused:
            await s3.get_object(Bucket=bucket, Key=key)
        assert refused.value.response["Error"]["Code"] == "InvalidObjectState"

        await s3.complete_multipart_upload(
            Bucket=bucket,
            Key=key,
            UploadId=upload["UploadId"],
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
        )
        assert await archive_status() is None
        answer = await s3.get_object(Bucket=bucket, Key=key)
        assert await answer["Body"].read() == b"new"

        for replace in ("put", "delete"):
            await devstack.move_to_archive_tier(bucket, key, "DEEP_ARCHIVE_ACCESS")
            assert await archive_status() == "DEEP_ARCHIVE_ACCESS"
            if replace == "put":
                await s3.put_object(Bucket=bucket, Key=key, Body=b"newer")
                assert await archive_status() is None
            else:  # the model goes with the object, so one written past the proxy is readable
                await s3.delete_object(Bucket=bucket, Key=key)
                await moto.put_object(Bucket=bucket, Key=key, Body=b"newest")
                assert await archive_status() is None
        await s3.delete_object(Bucket=bucket, Key=key)

    url = f"{devstack.state['s3_proxy_url']}/_devstack/tiering"
    async with aiohttp.ClientSession() as admin:
        for doc in ({"bucket": bucket, "key": key, "tier": "GLACIER"}, {"tier": "ARCHIVE_ACCESS"}):
            async with admin.post(url, json=doc) as answer:
                assert answer.status == 400
                assert "needs bucket, key and a tier of ARCHIVE_ACCESS" in await answer.text()


def test_without_the_extra_the_daemon_runs_and_the_dev_stack_says_how_to_get_it(
    tmp_path: Path,
) -> None:
    """The image installs recstore without ``recstore[devstack]``: the daemon's commands work
    there (the transfer tests run every daemon so), and the dev stack's name what to install."""
    env = daemon_env()
    blocked = run_cli_process("--help", env=env)
    assert blocked.returncode == 0, blocked.stderr
    probe = subprocess.run(
        [sys.executable, "-c", "import moto.server"], env=env, capture_output=True, text=True
    )
    assert "No module named 'moto" in probe.stderr  # the stand-in for the slim image holds
    test_config = str(ROOT / "conf" / "app.test.yaml")
    assert run_cli_process("config", "check", "--config", test_config, env=env).returncode == 0
    for command in (["devstack", "up", "--state-file", str(tmp_path / "s.json")], ["demo"]):
        refused = run_cli_process(*command, env=env)
        assert refused.returncode == 1
        assert "pip install 'recstore[devstack]'" in refused.stderr
        assert "Traceback" not in refused.stderr
