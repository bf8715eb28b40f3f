"""sd_notify: the daemon, as a real process, tells a notify socket READY, WATCHDOG, STOPPING."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recstore.runtime.systemd import Notifier
from tests.conftest import ROOT, clean_env

# The daemon under the notify protocol, as systemd starts it.
pytestmark = pytest.mark.e2e


def test_daemon_speaks_the_notify_protocol(tmp_path: Path) -> None:
    address = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(address)
    listener.settimeout(15)
    config = tmp_path / "app.yaml"
    config.write_text((ROOT / "conf" / "app.test.yaml").read_text())
    env = clean_env(NOTIFY_SOCKET=address, WATCHDOG_USEC="200000")
    proc = subprocess.Popen(
        [sys.executable, "-m", "recstore", "run", "--config", str(config)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    received: list[str] = []
    try:
        deadline = time.monotonic() + 15
        while sum("WATCHDOG=1" in m for m in received) < 3 and time.monotonic() < deadline:
            received.append(listener.recv(4096).decode())
        proc.send_signal(signal.SIGTERM)
        while not any("STOPPING=1" in m for m in received) and time.monotonic() < deadline:
            received.append(listener.recv(4096).decode())
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        listener.close()
    text = "\n".join(received)
    assert text.index("READY=1") < text.index("STOPPING=1")
    assert text.count("WATCHDOG=1") >= 3


def test_without_notify_socket_nothing_is_sent() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert notifier.ready() is False
    assert notifier.watchdog_interval is None


def test_watchdog_for_another_pid_is_ignored() -> None:
    assert Notifier({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}).watchdog_interval is None
    assert Notifier({"WATCHDOG_USEC": "1000000"}).watchdog_interval == 0.5
