"""The daemon as a real process: /healthcheck, SIGTERM/SIGINT drains, hand-back, exit codes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from recstore.devstack.demo import free_port
from tests.conftest import ROOT, LogLines, clean_env, run_cli, run_cli_process

# Real daemon processes: signals, exit status, the probe as a container runs it.
pytestmark = [pytest.mark.e2e, pytest.mark.long]


def config(tmp_path: Path, http_port: int = 0, **daemon: object) -> Path:
    doc = yaml.safe_load((ROOT / "conf" / "app.test.yaml").read_text())
    doc["daemon"].update(daemon)
    doc["http"]["port"] = http_port
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


#: Daemons a test started; any still running at its end (a failed assertion) is killed.
_started: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_daemon_outlives_its_test() -> Iterator[None]:
    yield
    while _started:
        proc = _started.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


class Daemon:
    """A daemon process, its log read as it comes (:class:`LogLines`)."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env=clean_env() if env is None else env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        _started.append(self.proc)
        assert self.proc.stderr is not None
        self.log = LogLines(self.proc.stderr)
        self.port = int(self.log.wait_for(r" 15000 .*http_port=(\d+)").group(1))

    def get(self, path: str) -> tuple[int, str, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as answer:
                return answer.status, answer.headers["Content-Type"], answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.headers["Content-Type"], error.read().decode()

    def stop(self, sig: int = signal.SIGTERM, patience: float = 30) -> tuple[int, str]:
        """Send ``sig``; the exit code and everything the daemon logged."""
        self.proc.send_signal(sig)
        self.proc.wait(timeout=patience)
        return self.proc.returncode, self.log.finish(patience)


@pytest.fixture
def markers(tmp_path: Path) -> Path:
    path = tmp_path / "markers"
    path.mkdir()
    return path


def harness(tmp_path: Path, markers: Path, mode: str, **daemon: object) -> Daemon:
    script = ROOT / "tests" / "daemon_harness.py"
    return Daemon(
        [sys.executable, str(script), str(config(tmp_path, **daemon)), str(markers), mode]
    )


def wait_for(path: Path, patience: float = 10) -> None:
    deadline = time.monotonic() + patience
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)


@pytest.fixture
def recstore_run(tmp_path: Path) -> Iterator[Daemon]:
    daemon = Daemon([sys.executable, "-m", "recstore", "run", "--config", str(config(tmp_path))])
    yield daemon
    if daemon.proc.poll() is None:
        daemon.proc.kill()
        daemon.proc.wait()


def test_recstore_run_serves_health_and_metrics_then_stops_cleanly(recstore_run: Daemon) -> None:
    status, ctype, body = recstore_run.get("/healthcheck")
    assert (status, json.loads(body)) == (200, {"status": "success"})
    assert ctype.startswith("application/json")
    status, ctype, body = recstore_run.get("/metrics")
    assert status == 200
    assert ctype.startswith("text/plain")
    assert "process_resident_memory_bytes" in body
    code, log = recstore_run.stop()
    assert code == 0, log
    assert " 15021 " in log
    assert "drain finished clean=True" in log


def test_sigterm_lets_running_work_finish(tmp_path: Path, markers: Path) -> None:
    daemon = harness(tmp_path, markers, "drain", gracePeriod="10s")
    wait_for(markers / "slow_job.started")
    code, log = daemon.stop(signal.SIGTERM)
    assert code == 0, log
    assert (markers / "slow_job.finished").exists()
    assert not (markers / "slow_job.handed_back").exists()


def test_sigint_drains_like_sigterm(tmp_path: Path, markers: Path) -> None:
    daemon = harness(tmp_path, markers, "drain", gracePeriod="10s")
    wait_for(markers / "slow_job.started")
    code, _ = daemon.stop(signal.SIGINT)
    assert code == 0
    assert (markers / "slow_job.finished").exists()


def test_grace_period_over_hands_work_back(tmp_path: Path, markers: Path) -> None:
    daemon = harness(tmp_path, markers, "stuck", gracePeriod="1s")
    wait_for(markers / "stuck_job.started")
    started = time.monotonic()
    code, log = daemon.stop(signal.SIGTERM)
    assert time.monotonic() - started < 8
    assert code == 1, log  # not a clean drain: work had to be cancelled
    assert (markers / "stuck_job.handed_back").exists()
    assert (markers / "quick_job.finished").exists()  # the others still drained normally
    assert "cancelling stuck_job" in log


def test_second_signal_skips_the_grace_period(tmp_path: Path, markers: Path) -> None:
    daemon = harness(tmp_path, markers, "stuck", gracePeriod="60s")
    wait_for(markers / "stuck_job.started")
    daemon.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    started = time.monotonic()
    code, _ = daemon.stop(signal.SIGTERM)
    assert time.monotonic() - started < 10
    assert code == 1
    assert (markers / "stuck_job.handed_back").exists()


def test_crashing_worker_is_restarted_and_reported_unhealthy(tmp_path: Path, markers: Path) -> None:
    daemon = harness(
        tmp_path,
        markers,
        "crash",
        restartBackoffInitial="0.5s",
        unhealthyAfterRestarts=2,
        stableAfter="6s",  # room for the CLI probe to start on a busy machine
    )
    url = f"http://127.0.0.1:{daemon.port}/healthcheck"
    wait_for(markers / "flaky.crash0")  # second crash: now crash-looping
    status, _, body = daemon.get("/healthcheck")
    assert (status, json.loads(body)) == (500, {"error": "worker_error_flaky", "status": "error"})
    probe = run_cli_process("healthcheck", "--url", url)  # what a container's probe runs
    assert (probe.returncode, probe.stderr) == (1, "unhealthy: worker_error_flaky\n")
    wait_for(markers / "flaky.steady")
    _, _, metrics = daemon.get("/metrics")
    assert 'recstore_worker_restarts_total{worker="flaky"} 2.0' in metrics
    # Healthy again once it has run stableAfter without crashing.
    deadline = time.monotonic() + 15
    while (probe := run_cli("healthcheck", "--url", url)).returncode != 0:
        assert time.monotonic() < deadline, "worker never became healthy again"
    assert probe.stdout == "healthy\n"
    assert daemon.get("/healthcheck")[0] == 200
    code, log = daemon.stop()
    assert code == 0
    assert log.count(" 15015 ") == 2  # one worker-error event per crash, with its code
    probe = run_cli("healthcheck", "--url", url)
    assert probe.returncode == 1
    assert f"no recstore daemon answers at {url}" in probe.stderr


def test_status_shows_workers_restarts_and_recent_failures(tmp_path: Path, markers: Path) -> None:
    daemon = harness(tmp_path, markers, "crash", restartBackoffInitial="0.2s")
    wait_for(markers / "flaky.steady")
    url = f"http://127.0.0.1:{daemon.port}/status.json"
    result = run_cli("status", "--url", url)
    assert result.returncode == 0, result.stderr
    assert "flaky" in result.stdout
    assert "restarts 2" in result.stdout
    assert "recent failures:" in result.stdout
    assert "15015 flaky: worker flaky crashed" in result.stdout
    code, _ = daemon.stop()
    assert code == 0


def test_status_without_a_daemon_says_so() -> None:
    result = run_cli("status", "--url", "http://127.0.0.1:9/status.json")
    assert result.returncode == 1
    assert "no recstore daemon answers at http://127.0.0.1:9/status.json" in result.stderr


def test_recstore_healthcheck_finds_the_daemon_from_its_configuration(tmp_path: Path) -> None:
    path = config(tmp_path, http_port=free_port())
    daemon = Daemon([sys.executable, "-m", "recstore", "run", "--config", str(path)])
    # A proxy set for the remotes is not asked for the daemon's loopback address.
    behind_a_proxy = clean_env(http_proxy="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9")
    try:
        probe = run_cli("healthcheck", "--config", str(path), env=behind_a_proxy)
        assert (probe.returncode, probe.stdout) == (0, "healthy\n"), probe.stderr
    finally:
        daemon.stop()
    # Not 2, which Docker reserves in a health check.
    unknown = run_cli("healthcheck", "--config", str(config(tmp_path)))  # http.port 0
    assert unknown.returncode == 1
    assert "http.port is 0 (any free port)" in unknown.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("http: {port: 99999}\n")
    probe = run_cli("healthcheck", "--config", str(broken))
    assert probe.returncode == 1
    assert "http.port" in probe.stderr


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("0.0.0.0", "http://127.0.0.1:8080/healthcheck"),
        ("::", "http://[::1]:8080/healthcheck"),  # asyncio makes a "::" socket IPv6-only
        ("::1", "http://[::1]:8080/healthcheck"),
        ("10.1.2.3", "http://10.1.2.3:8080/healthcheck"),
    ],
)
def test_the_daemon_is_asked_where_it_listens(host: str, url: str) -> None:
    from recstore.runtime.status import daemon_url
    from recstore.settings import HttpSettings

    assert daemon_url(HttpSettings(host=host, port=8080), "/healthcheck") == url


def test_recstore_workers_runs_only_the_named_workers(tmp_path: Path) -> None:
    """One configuration for every role; each replica's RECSTORE_WORKERS picks its part."""
    path = config(tmp_path)
    doc = yaml.safe_load(path.read_text())
    doc["workers"] = {"FileTransferer": {"enabled": True}, "DracoonGlobalSharer": {"count": 1}}
    doc["dracoon"] = {"baseUrl": "http://127.0.0.1:9", "login": "svc", "password": "pw-one"}
    doc["leases"] = {"enabled": False}
    path.write_text(yaml.safe_dump(doc))
    env = clean_env(RECSTORE_WORKERS="DracoonGlobalSharer")
    daemon = Daemon([sys.executable, "-m", "recstore", "run", "--config", str(path)], env=env)
    try:
        assert daemon.log.wait_for(r" 15000 .*workers=(\S+)").group(1) == "dracoon_global_sharer"
        _, _, body = daemon.get("/metrics")
        assert 'recstore_worker_running{worker="dracoon_global_sharer"}' in body
        assert "file_transferer" not in body
    finally:
        daemon.stop()
