"""The /status dashboard in headless Chromium, against the real daemon and the dev stack.

The daemon runs as a process with Basic auth on its status pages; a 60 MiB recording goes
through a DRACOON stand-in made slow on purpose, so the page can be watched while the upload
runs: the progress bar must move, and neither the page nor /status.json may carry a secret of
the configuration or a participant's name.

Chromium is Debian's ``/usr/bin/chromium`` driven by Playwright (never ``playwright install``).
Without it the browser test is skipped on a workstation and fails in CI (``CI=true``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from pydantic import BaseModel, SecretStr

from recstore.devstack.appconfig import DEMO_INSTANCE
from recstore.workers.registry import load_settings
from tests.conftest import StackProcess, run_cli
from tests.dracoon_helpers import admin
from tests.transfer_helpers import Setup, job

MiB = 1024 * 1024
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOGIN = ("operator", "dashboard-Pa55-word")
PERSONAL = ("Host Person", "host@example.com", "Guest Person", "guest@example.com")


class Daemon:
    """One daemon for the module: auth on, quick queue sampling, its own lease prefix."""

    def __init__(self, stack: StackProcess, tmp: Path) -> None:
        self.setup = Setup(stack, tmp)
        tag = self.setup.tag
        self.config = self.setup.config(
            http={"statusUser": LOGIN[0], "statusPassword": LOGIN[1]},
            daemon={"queueDepthInterval": "1s"},
            leases={"prefix": f"status-test/{tag}/"},
        )
        self.setup.start(self.config)
        self.base = f"http://127.0.0.1:{self._port()}"

    def _port(self) -> int:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = re.search(r" 15000 .*http_port=(\d+)", self.setup.logs())
            if found:
                return int(found.group(1))
            time.sleep(0.1)
        raise AssertionError(f"daemon did not start:\n{self.setup.logs()[-3000:]}")

    def get(self, path: str, login: tuple[str, str] | None = None) -> tuple[int, Any, str]:
        request = urllib.request.Request(self.base + path)  # noqa: S310 (http://127.0.0.1)
        if login is not None:
            token = base64.b64encode(":".join(login).encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
                return answer.status, answer.headers, answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read().decode()

    def secrets(self) -> list[str]:
        """Every secret value of the daemon's configuration."""
        found: list[str] = []

        def walk(value: Any) -> None:
            if isinstance(value, SecretStr):
                found.append(value.get_secret_value())
            elif isinstance(value, BaseModel):
                for name in type(value).model_fields:
                    walk(getattr(value, name))
            elif isinstance(value, dict | list | tuple):
                for item in value.values() if isinstance(value, dict) else value:
                    walk(item)

        walk(load_settings(self.config, {}))
        return [secret for secret in found if len(secret) >= 4]


@pytest.fixture(scope="module")
def daemon(devstack: StackProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    it = Daemon(devstack, tmp_path_factory.mktemp("status-page"))
    yield it
    it.setup.stop_all()
    asyncio.run(admin(devstack.state, "faults", {}))


def require_chromium() -> None:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@contextmanager
def chromium() -> Iterator[Browser]:
    """Headless Chromium. While it is open, Playwright's sync API owns this thread's event
    loop, so everything asynchronous (seeding, faults) happens before or after."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


def test_status_pages_need_the_login_but_health_and_metrics_stay_open(daemon: Daemon) -> None:
    for path in ("/status", "/status.json"):
        status, headers, _ = daemon.get(path)
        assert status == 401, path
        assert headers["WWW-Authenticate"].startswith("Basic realm=")
        assert daemon.get(path, (LOGIN[0], "wrong"))[0] == 401
        assert daemon.get(path, ("someone", LOGIN[1]))[0] == 401
    status, headers, body = daemon.get("/status", LOGIN)
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert "<script src" not in body  # all inline
    assert '<link rel="stylesheet"' not in body
    assert not re.search(r"(src|href)=\"(https?:)?//", body)  # nothing from elsewhere
    status, _, body = daemon.get("/status.json", LOGIN)
    assert status == 200
    assert {w["name"] for w in json.loads(body)["workers"]} == {
        "file_transferer",
        "dracoon_global_sharer",
    }
    assert daemon.get("/healthcheck")[0] == 200
    status, _, metrics = daemon.get("/metrics")
    assert status == 200
    assert "recstore_jobs_in_flight" in metrics


def progress_of(page: Page) -> tuple[float, float]:
    value, maximum = page.eval_on_selector("progress.transfer", "bar => [bar.value, bar.max]")
    return float(value), float(maximum)


def test_dashboard_shows_the_running_transfer_and_its_progress_moves(daemon: Daemon) -> None:
    require_chromium()
    setup = daemon.setup
    size = 60 * MiB
    [key] = setup.objects({"watched.mp4": size})
    # 12 parts of 5 MiB, each held 1 s by the stand-in: the upload takes 12 s or more, room
    # for Chromium's start (seconds on a busy machine) and two of the page's refreshes.
    asyncio.run(admin(setup.state, "faults", {"latency_ms": 1000, "path_pattern": "^/_s3/"}))
    setup.send(
        json.dumps(job(DEMO_INSTANCE, [key], [{"path": f"Watched {setup.tag}"}], meeting=42)),
        "this is not json",
    )
    with chromium() as browser:
        watch(daemon, browser, key, size)


def watch(daemon: Daemon, browser: Browser, key: str, size: int) -> None:
    setup = daemon.setup
    context = browser.new_context(http_credentials={"username": LOGIN[0], "password": LOGIN[1]})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.goto(f"{daemon.base}/status")

    page.wait_for_selector("progress.transfer", timeout=60_000)
    first, maximum = progress_of(page)
    assert maximum == size
    page.wait_for_function(
        "seen => { const bar = document.querySelector('progress.transfer');"
        " return bar !== null && bar.value > seen; }",
        arg=first,
        timeout=30_000,
    )
    second, _ = progress_of(page)
    assert first < second <= size
    # What the page and /status.json hold while the upload runs (checked for secrets below).
    rendered = page.content()
    _, _, document = daemon.get("/status.json", LOGIN)
    in_flight = json.loads(document)["workers"][0]["in_flight"]
    assert [job["bytes_total"] for job in in_flight if "bytes_total" in job] == [size]
    row = page.inner_text("#transfers")
    assert f"{DEMO_INSTANCE}/42" in row
    assert f"s3://recordings/{key}" in row
    assert "MB/s" in row

    # While the upload runs: workers, periodic runs, queues, the dead letter's reason.
    page.wait_for_function(
        "() => document.querySelector('#failures').innerText.includes('not JSON')",
        timeout=30_000,
    )
    assert "file_transferer" in page.inner_text("#workers")
    assert "healthy" in page.inner_text("#workers")
    periodic = page.inner_text("#periodic")
    assert "dracoon_global_sharer" in periodic
    assert re.search(r"success [1-9]", periodic)
    queues = page.inner_text("#queues")
    assert f"work-{setup.tag}" in queues
    assert f"dlq-{setup.tag}" in queues
    assert "moved to the dead-letter queue" in page.inner_text("#failures")

    # Nothing secret or personal, in the rendered page or in the document behind it.
    rendered += page.content()
    for secret in daemon.secrets():
        assert secret not in rendered
        assert secret not in document
    for personal in PERSONAL:
        assert personal not in rendered
        assert personal not in document

    page.wait_for_selector("#transfers td.empty", timeout=60_000)  # done: the row is gone
    assert "no transfers running" in page.inner_text("#transfers")
    assert problems == []  # no script error, nothing refused by the page's CSP
    context.close()


def test_recstore_status_logs_in_with_the_configured_user(daemon: Daemon) -> None:
    url = f"{daemon.base}/status.json"  # the configured port is 0: any free one
    # Run alone, this test can ask before the sharer's first run has ended and the queues'
    # first sample is in: until then there is no next run to show, nor a depth.
    deadline = time.monotonic() + 30
    while True:
        result = run_cli("status", "--config", str(daemon.config), "--url", url)
        assert result.returncode == 0, result.stderr
        if "next in" in result.stdout and "? waiting" not in result.stdout:
            break
        assert time.monotonic() < deadline, result.stdout
        time.sleep(0.2)
    assert "dracoon_global_sharer" in result.stdout
    assert "next in" in result.stdout
    assert re.search(rf"queue dlq-{daemon.setup.tag} \(dead_letter\): \d+ waiting", result.stdout)
    anonymous = run_cli("status", "--url", url)
    assert anonymous.returncode == 1
    assert "wants a login" in anonymous.stderr
