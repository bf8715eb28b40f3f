"""What the daemon shows, and to whom, and what it leaves readable (issue 33 §4 and §5).

The status pages are closed to other machines unless a login is configured or the operator
opens them; /healthcheck and /metrics stay open and carry no job, key or person; a port that
is taken stops the start like any other configuration error; files with secrets are 0600 from
the start in a directory of their owner's; a failing legacy upload's channel token reaches
neither the logs nor /status.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import stat
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from recstore.common.secret_files import UnsafeDirectory
from recstore.devstack.appconfig import DEMO_INSTANCE
from recstore.devstack.seed import aws_settings_from_state, seed_s3
from recstore.devstack.stack import write_state
from recstore.runtime.web import CLOSED_TO_OTHERS, WebServer
from recstore.settings import HttpSettings
from tests.conftest import StackProcess, clean_env, run_cli, run_cli_process
from tests.dracoon_helpers import admin
from tests.transfer_helpers import Setup, job


class _Nothing:
    """A daemon with no workers, for the web server alone."""

    def unhealthy_workers(self) -> list[str]:
        return []

    def status(self) -> list[dict[str, object]]:
        return [{"name": "file_transferer", "in_flight": [{"job_id": "acme.example.com/7"}]}]


def _this_hosts_address() -> str | None:
    """A non-loopback IPv4 address of this machine (the kernel's choice of source), if any."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.254", 9))  # TEST-NET-1: nothing is sent
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") else address


def _get(url: str, login: tuple[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url)  # noqa: S310 (http:// of the test's own server)
    if login is not None:
        import base64

        token = base64.b64encode(":".join(login).encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as answer:
            return int(answer.status), answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


async def _answers(settings: HttpSettings, address: str) -> dict[str, int]:
    web = WebServer(_Nothing(), settings)
    await web.start()
    try:
        paths = ("/status", "/status.json", "/healthcheck", "/metrics")
        answers = [
            await asyncio.to_thread(_get, f"http://{address}:{web.port}{path}") for path in paths
        ]
    finally:
        await web.close()
    return {path: status for path, (status, _) in zip(paths, answers, strict=True)}


async def test_the_status_pages_answer_other_machines_only_with_a_login_or_when_opened() -> None:
    """Issue 33 §4: on 0.0.0.0 without a login, job ids and keys went to anyone."""
    other = _this_hosts_address()
    if other is None:
        pytest.skip("this machine has no address besides loopback")
    everywhere = HttpSettings(host="0.0.0.0", port=0)
    assert await _answers(everywhere, other) == {
        "/status": 403,
        "/status.json": 403,
        "/healthcheck": 200,
        "/metrics": 200,
    }
    # the same daemon, asked from this machine (recstore status, kubectl exec)
    assert set((await _answers(everywhere, "127.0.0.1")).values()) == {200}
    opened = HttpSettings(host="0.0.0.0", port=0, statusOpen=True)
    assert set((await _answers(opened, other)).values()) == {200}
    login = HttpSettings(
        host="0.0.0.0",
        port=0,
        statusUser="operator",
        statusPassword=SecretStr("pw-status"),
    )
    assert (await _answers(login, "127.0.0.1"))["/status.json"] == 401  # loopback too


async def test_another_machine_is_told_how_to_get_in() -> None:
    other = _this_hosts_address()
    if other is None:
        pytest.skip("this machine has no address besides loopback")
    web = WebServer(_Nothing(), HttpSettings(host="0.0.0.0", port=0))
    await web.start()
    try:
        status, body = await asyncio.to_thread(_get, f"http://{other}:{web.port}/status.json")
    finally:
        await web.close()
    assert (status, body) == (403, CLOSED_TO_OTHERS)
    assert "acme.example.com/7" not in body


def _check_lines(tmp_path: Path, http: dict[str, Any]) -> list[str]:
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump({"http": http}))
    result = run_cli("config", "check", "--config", str(path))
    assert result.returncode == 0, result.stderr
    return [line.strip() for line in result.stdout.splitlines()]


def test_config_check_says_which_endpoints_are_open_to_whom(tmp_path: Path) -> None:
    lines = _check_lines(tmp_path, {})
    assert (
        "open: /healthcheck, /metrics to anyone who reaches 0.0.0.0:8080 (no job, key or person)"
        in lines
    )
    assert (
        "status: /status, /status.json answer only requests from this machine (loopback); set "
        "http.statusUser and http.statusPassword to log in from elsewhere" in lines
    )
    assert (
        "status: /status, /status.json open to anyone who reaches 0.0.0.0:8080 "
        "(http.statusOpen: true)" in _check_lines(tmp_path, {"statusOpen": True})
    )
    login = {"statusUser": "operator", "statusPassword": "pw-status"}
    assert "status: /status, /status.json need the login of http.statusUser (operator)" in (
        _check_lines(tmp_path, login)
    )
    path = tmp_path / "both.yaml"
    path.write_text(yaml.safe_dump({"http": {**login, "statusOpen": True}}))
    result = run_cli("config", "check", "--config", str(path))
    assert result.returncode == 2
    assert "http.statusOpen: the status page is either open or behind statusUser" in result.stderr


@pytest.mark.e2e
def test_a_port_in_use_stops_the_start_with_exit_2_naming_the_address(tmp_path: Path) -> None:
    """Issue 33 §5: a 38-line traceback and exit 1 before; a configuration error now."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        config = tmp_path / "app.yaml"
        config.write_text(yaml.safe_dump({"http": {"host": "127.0.0.1", "port": port}}))
        result = run_cli_process("run", "--config", str(config), env=clean_env())
    assert result.returncode == 2, result.stderr
    named = f"http.port: cannot listen on 127.0.0.1:{port}: the address is already in use"
    assert f"recstore: configuration error: {named}" in result.stderr
    assert re.search(rf" 15018 .*{re.escape(named)}", result.stderr), result.stderr
    assert " 15002 " in result.stderr
    assert "Traceback" not in result.stderr


# -- files that hold secrets --


@pytest.fixture
def wide_umask() -> Iterator[None]:
    """umask 0, and no narrowing afterwards: only a file created 0600 stays 0600."""
    old = os.umask(0)
    real_chmod = os.chmod
    os.chmod = lambda *args, **kwargs: None  # type: ignore[assignment]
    try:
        yield
    finally:
        os.chmod = real_chmod
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_dev_stacks_state_file_is_0600_from_the_start(tmp_path: Path, wide_umask: None) -> None:
    state_file = tmp_path / "new" / "state.json"
    write_state(state_file, {"dracoon_password": "pw-every"})
    assert _mode(state_file) == 0o600
    assert _mode(state_file.parent) == 0o700
    write_state(state_file, {"dracoon_password": "pw-again"})  # rewritten: still 0600
    assert _mode(state_file) == 0o600
    assert json.loads(state_file.read_text()) == {"dracoon_password": "pw-again"}


def _fetch_env(state: dict[str, Any]) -> dict[str, str]:
    return clean_env(
        AWS_ENDPOINT_URL=state["s3_endpoint"],
        AWS_ACCESS_KEY_ID=state["aws_access_key_id"],
        AWS_SECRET_ACCESS_KEY=state["aws_secret_access_key"],
        AWS_DEFAULT_REGION=state["region"],
    )


def _upload_config(state: dict[str, Any], prefix: str) -> str:
    async def go() -> None:
        from recstore.clients.aws import aws_client

        async with aws_client(aws_settings_from_state(state), "s3") as s3:
            await s3.put_object(
                Bucket=state["bucket"], Key=f"{prefix}/app.yaml", Body=b"dracoon: {password: pw}\n"
            )

    asyncio.run(go())
    return f"s3://{state['bucket']}/{prefix}/"


def test_config_fetch_writes_0600_files_into_a_directory_of_its_own(
    devstack: StackProcess, tmp_path: Path, wide_umask: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from recstore.runtime.config_fetch import fetch

    uri = _upload_config(devstack.state, f"cfg-{os.getpid()}-{id(tmp_path)}")
    for name, value in _fetch_env(devstack.state).items():
        monkeypatch.setenv(name, value)
    target = tmp_path / "recstore-config"
    [written] = asyncio.run(fetch(uri, target))
    assert written == target / "app.yaml"
    assert _mode(written) == 0o600
    assert _mode(target) == 0o700


@pytest.mark.skipif(os.geteuid() != 0, reason="making a directory another user owns needs root")
def test_config_fetch_refuses_a_directory_another_user_made(
    devstack: StackProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A predictable /tmp/recstore-config made by someone else beforehand: they could read or
    swap the secrets written there."""
    from recstore.runtime.config_fetch import fetch

    uri = _upload_config(devstack.state, f"cfg-{os.getpid()}-{id(tmp_path)}")
    for name, value in _fetch_env(devstack.state).items():
        monkeypatch.setenv(name, value)
    target = tmp_path / "recstore-config"
    target.mkdir(mode=0o777)
    os.chown(target, 65534, 65534)
    with pytest.raises(UnsafeDirectory, match="belongs to uid 65534, not to this user"):
        asyncio.run(fetch(uri, target))
    assert list(target.iterdir()) == []
    result = run_cli_process(
        "config", "fetch", uri, "--to", str(target), env=_fetch_env(devstack.state)
    )
    assert result.returncode == 1
    assert "belongs to uid 65534" in result.stderr
    assert "Traceback" not in result.stderr


# -- what a failure shows --


@pytest.fixture
def setup(setup: Setup, devstack: StackProcess) -> Iterator[Setup]:
    """The transfer tests' set-up (tests/transfer_helpers.py), and the DRACOON stand-in back on
    S3 storage after the tests here that take it off."""
    yield setup
    asyncio.run(admin(devstack.state, "settings", {"useS3Storage": True}))


_TOKEN_SHOWN = re.compile(r"/uploads/(?!\*\*\*)[^\s/\"'?]+")


@pytest.mark.e2e
def test_a_failing_legacy_upload_shows_no_token_and_probes_show_no_job_or_person(
    setup: Setup,
) -> None:
    """Issue 33 §5: the legacy channel's token (a bearer secret for the channel) was part of
    the completion's path in the error text, so it reached the log and /status.json (and, once
    the job gives up, the dead-letter reason: the same text). §4: /healthcheck and /metrics
    name no job, key or person."""
    state, tag = setup.state, setup.tag
    key = f"{tag}/Jane Doe interview.mp4"
    asyncio.run(seed_s3(state, {"objects": [{"key": key, "size": 4096, "seed": 4}]}))
    asyncio.run(admin(state, "settings", {"useS3Storage": False}))  # the legacy channel
    asyncio.run(
        admin(
            state,
            "faults",
            {
                "error_rate": 1,
                "error_status": 400,
                "methods": ["PUT"],
                "path_pattern": "^/api/v4/uploads/",
            },
        )
    )
    setup.send(json.dumps(job(DEMO_INSTANCE, [key], [{"path": f"leak-{tag}"}], meeting=7)))
    setup.start(setup.config())
    # The legacy channel's chunks go to the uploadUrl DRACOON handed out (a bearer URL).
    refused = "PUT the upload channel's uploadUrl failed: 400"
    setup.wait(lambda: refused in setup.logs())
    answer = None

    def failure_shown() -> bool:
        nonlocal answer
        answer = setup.ask("/status.json")
        return answer is not None and bool(answer[1]["recent_failures"])

    setup.wait(failure_shown)
    assert answer is not None
    status_json = json.dumps(answer[1])
    logs = setup.logs()
    assert refused in logs
    assert refused in status_json
    assert not _TOKEN_SHOWN.search(logs), _TOKEN_SHOWN.search(logs)
    assert not _TOKEN_SHOWN.search(status_json)
    # The probes' endpoints, open to anyone: no job id, key, file name, room or person.
    ports = re.findall(r" 15000 .*http_port=(\d+)", logs)
    base = f"http://127.0.0.1:{ports[-1]}"
    for path in ("/healthcheck", "/metrics"):
        status, body = _get(base + path)
        assert status in (200, 500), path
        for private in (f"{DEMO_INSTANCE}/7", key, "Jane Doe", f"leak-{tag}", "Host Person"):
            assert private not in body, (path, private)
