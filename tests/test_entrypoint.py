"""entrypoint.sh as a container would run it: config from S3, *_FILE values, exec + signals."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from recstore.devstack.demo import free_port
from recstore.devstack.seed import seed_s3
from tests.conftest import ROOT, LogLines, StackProcess, clean_env

# The container entrypoint, run as the image runs it.
pytestmark = pytest.mark.e2e


def container_env(devstack: StackProcess, tmp_path: Path, **extra: str) -> dict[str, str]:
    state = devstack.state
    values = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "AWS_ENDPOINT_URL": state["s3_endpoint"],
        "AWS_ACCESS_KEY_ID": state["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": state["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": state["region"],
        "RECSTORE_CONFIG_S3_URI": "s3://recordings/service-config/",
        "RECSTORE_CONFIG_DIR": str(tmp_path / "conf"),
    }
    values.update(extra)
    return clean_env(**values)


def upload_config(devstack: StackProcess, http_port: int = 0) -> None:
    doc = yaml.safe_load((ROOT / "conf" / "app.test.yaml").read_text())
    doc["http"]["port"] = http_port
    app = yaml.safe_dump(doc)
    objects = [
        {"key": "service-config/app.yaml", "text": app},
        {"key": "service-config/extra/topics.yml", "text": "recordings: x\n"},
    ]
    asyncio.run(seed_s3(devstack.state, {"objects": objects}))


def entrypoint(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(ROOT / "entrypoint.sh"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_config_is_fetched_from_s3_and_file_values_are_read(
    devstack: StackProcess, tmp_path: Path
) -> None:
    upload_config(devstack)
    (tmp_path / "login").write_text("svc-from-file\n")
    env = container_env(devstack, tmp_path, RECSTORE_DRACOON__LOGIN_FILE=str(tmp_path / "login"))
    result = entrypoint("config", "show", env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "conf" / "app.yaml").exists()
    assert (tmp_path / "conf" / "extra" / "topics.yml").exists()
    shown = yaml.safe_load(result.stdout)
    assert shown["dracoon"]["login"] == "svc-from-file"
    assert shown["http"]["port"] == 0  # the fetched app.yaml is the one in use


def test_missing_config_in_s3_fails_clearly(devstack: StackProcess, tmp_path: Path) -> None:
    env = container_env(devstack, tmp_path, RECSTORE_CONFIG_S3_URI="s3://recordings/nothing-here/")
    result = entrypoint("config", "check", env=env)
    assert result.returncode != 0
    assert "no configuration files under s3://recordings/nothing-here/" in result.stderr


def start_daemon(env: dict[str, str]) -> tuple[subprocess.Popen[str], LogLines, str]:
    """The image's default command, its log, and its start line (15000), once logged."""
    proc = subprocess.Popen(
        ["sh", str(ROOT / "entrypoint.sh")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    log = LogLines(proc.stderr)
    return proc, log, log.wait_for(" 15000 .*").group(0)


def test_the_daemon_is_exec_ed_so_sigterm_reaches_it(
    devstack: StackProcess, tmp_path: Path
) -> None:
    upload_config(devstack)
    proc, log, started = start_daemon(container_env(devstack, tmp_path))
    assert f"pid={proc.pid} " in started  # the daemon *is* the entrypoint's process
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert "drain finished clean=True" in log.finish()


def test_the_image_probe_asks_the_daemon_at_its_fetched_configuration(
    devstack: StackProcess, tmp_path: Path
) -> None:
    upload_config(devstack, http_port=free_port())  # the address is in the fetched file only
    env = container_env(devstack, tmp_path)
    proc, log, _ = start_daemon(env)
    # The probe must not fetch again (every 30 s): with S3 unreachable it still answers.
    probe_env = {**env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}
    try:
        probe = entrypoint("healthcheck", env=probe_env)
        assert (probe.returncode, probe.stdout) == (0, "healthy\n"), probe.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        log.finish()
    probe = entrypoint("healthcheck", env=probe_env)
    assert probe.returncode == 1
    assert "no recstore daemon answers" in probe.stderr
