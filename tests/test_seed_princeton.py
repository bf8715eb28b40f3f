"""Seeds 001/003 (Princeton's ``kaltura_aws.py``) as their users run it: a drop-in (issue 29).

Their command lines (``replace_video``, ``archive``, ``--status 1 -2 0``, ``--replace``,
``--max_entries -1``, ``-l INFO``), their environment (``KALTURA_PARTNERID``, ``AWS_BUCKET``,
...) and a configuration with nothing but Kaltura in it, against the dev stack.
"""

from __future__ import annotations

import asyncio
import csv
import io
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from recstore.cli.kaltura import seed_status_args
from recstore.common.errors import ConfigError
from recstore.devstack.seed import seed_stand_in
from recstore.settings import SEED_KALTURA_URL
from recstore.settings import load_settings as load_models
from recstore.workers.registry import load_settings
from tests.archive_helpers import entry, sync_s3, video
from tests.conftest import ROOT, LogLines, StackProcess, clean_env, run_cli

PREFIX = "9_seed"
#: The seed README's own example ("entries that are not in the READY state").
SEED_STATUS_EXAMPLE = ("--status", "--status", "1", "-2", "0", "1", "7", "4")


def ids(*names: str) -> list[str]:
    return [arg for name in names for arg in ("--id", f"{PREFIX}_{name}")]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--status", "1", "-2", "0"], ["--status", "1,-2,0"]),
        (list(SEED_STATUS_EXAMPLE), ["--status", "1,-2,0,1,7,4"]),
        (["--status", "2", "--id", "x"], ["--status", "2", "--id", "x"]),
        (["--status", "1,-2", "4", "-t", "a"], ["--status", "1,-2,4", "-t", "a"]),
        (["--status", "ready"], ["--status", "ready"]),  # reported as a bad status
        (["--status"], []),  # the seed's empty list: no status filter
    ],
)
def test_status_lists_are_read_as_the_seed_wrote_them(args: list[str], expected: list[str]) -> None:
    assert seed_status_args(args) == expected


SEED_ENV = {
    "KALTURA_PARTNERID": "4242",
    "KALTURA_SECRET": "seed-secret-value",
    "KALTURA_USERID": "netid@princeton.edu",
    "AWS_BUCKET": "seed-bucket",
    "N_YEARS": "3",
    "DOIT": "false",
    "LDAP_SERVER": "ldap.example.edu",
    "LDAP_USER": "svc",
    "LDAP_PWD": "ldap-pw",
}


def test_the_seed_environment_configures_recstore(tmp_path: Path) -> None:
    placeholder = tmp_path / "placeholder_video.mp4"
    placeholder.write_bytes(b"mp4")
    settings = load_settings(None, {**SEED_ENV, "PLACEHOLDER_VIDEO": str(placeholder)})
    kaltura = settings.kaltura
    assert (kaltura.service_url, kaltura.partner_id, kaltura.user_id) == (
        SEED_KALTURA_URL,
        4242,
        "netid@princeton.edu",
    )
    assert kaltura.admin_secret is not None
    assert kaltura.admin_secret.get_secret_value() == "seed-secret-value"
    assert settings.archive.bucket == "seed-bucket"
    assert settings.archive.placeholder_video == placeholder
    assert settings.workers.archiver.unplayed_for == 3.0
    assert settings.workers.restorer.played_within == 3.0
    assert settings.workers.archiver.apply is False
    assert settings.ldap.urls == ["ldaps://ldap.example.edu:636"]
    assert settings.ldap.bind_dn == "uid=svc,o=princeton university,c=us"
    assert settings.ldap.base_dn == "o=princeton university,c=us"
    # DOIT: only "true" changes things, as in archive.rc
    assert load_settings(None, {"DOIT": "true"}).workers.restorer.apply is True
    assert load_settings(None, {"DOIT": "yes"}).workers.restorer.apply is False
    assert load_settings(None, {"DOIT": ""}).workers.restorer.apply is False


def test_yaml_and_recstore_variables_win_over_the_seed_names(tmp_path: Path) -> None:
    path = tmp_path / "app.yaml"
    path.write_text(
        yaml.safe_dump(
            {"kaltura": {"serviceUrl": "https://kaltura.example", "partnerId": 7}},
        )
    )
    settings = load_settings(path, {**SEED_ENV, "RECSTORE_ARCHIVE__BUCKET": "mine"})
    assert settings.kaltura.partner_id == 7  # the YAML says otherwise
    assert settings.kaltura.service_url == "https://kaltura.example"
    assert settings.archive.bucket == "mine"  # RECSTORE_* over both
    assert settings.kaltura.user_id == "netid@princeton.edu"  # nothing else says it


def test_a_bad_seed_value_names_its_variable() -> None:
    """bash.rc's template value (``KALTURA_PARTNERID=email``) is refused, naming it."""
    with pytest.raises(ConfigError) as caught:
        load_settings(None, {"KALTURA_PARTNERID": "email", "KALTURA_SECRET": "s3cr3t-value"})
    problems = dict(caught.value.problems)
    assert "(from KALTURA_PARTNERID)" in problems["kaltura.partnerId"]
    assert "s3cr3t-value" not in str(caught.value.problems)
    with pytest.raises(ConfigError) as caught:  # the variable that set it is the one named
        load_settings(None, {"KALTURA_PARTNERID": "1", "RECSTORE_KALTURA__PARTNERID": "x"})
    assert "KALTURA_PARTNERID" not in dict(caught.value.problems)["kaltura.partnerId"]


def kaltura_only(tmp_path: Path, **extra: Any) -> Path:
    path = tmp_path / "kaltura.yaml"
    doc = {
        "kaltura": {"serviceUrl": "https://kaltura.example", "partnerId": 1, "adminSecret": "x"},
        **extra,
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def test_a_kaltura_only_configuration_needs_no_worker_switched_off(tmp_path: Path) -> None:
    settings = load_settings(kaltura_only(tmp_path), {})
    assert not settings.workers.file_transferer.enabled
    assert settings.workers.dracoon_global_sharer.count == 0
    assert set(settings.not_started) == {"FileTransferer", "DracoonGlobalSharer"}
    assert "queues.recordings" in settings.not_started["FileTransferer"]


def test_a_worker_asked_for_is_still_held_to_its_checks_but_not_by_other_commands(
    tmp_path: Path,
) -> None:
    path = kaltura_only(tmp_path, workers={"FileTransferer": {"count": 2}})
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {})
    assert "workers.FileTransferer.queue" in dict(caught.value.problems)
    assert load_models(path, {}).kaltura.partner_id == 1  # a one-shot command's loading
    assert run_cli("config", "check", "--config", str(path)).returncode == 2
    # a transfer destination without its queue is a mistake, not a Kaltura-only setup
    transfers = kaltura_only(tmp_path, configurator={"url": "http://configurator.example"})
    with pytest.raises(ConfigError) as caught:
        load_settings(transfers, {})
    assert "workers.FileTransferer.queue" in dict(caught.value.problems)


@pytest.fixture(scope="module")
def seed_setup(devstack: StackProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two entries; a YAML with only Kaltura's URL and S3's endpoint, the rest from the seed's
    environment (the stand-in's partner and secret, the archive bucket)."""
    state = devstack.state
    tmp = tmp_path_factory.mktemp("seed-princeton")
    bucket = state.get("archive_bucket") or state["bucket"]
    content = video(1024 * 1024)
    entries = [
        entry(f"{PREFIX}_a", content),
        entry(f"{PREFIX}_b", video(2048), tags="archived_to_s3,deleted_flavors"),
        entry(f"{PREFIX}_audio", video(2048), mediaType=5),
    ]
    asyncio.run(seed_stand_in(state, "kaltura", {"entries": entries}))
    s3 = sync_s3(state)
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}_b", Body=b"\0" * 4096)
    config = tmp / "kaltura.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "kaltura": {"serviceUrl": state["kaltura_url"]},
                "aws": {
                    "region": state["region"],
                    "endpointUrl": state["s3_endpoint"],
                    "accessKeyId": state["aws_access_key_id"],
                    "secretAccessKey": state["aws_secret_access_key"],
                },
                "http": {"host": "127.0.0.1", "port": 0},
            }
        )
    )
    env = clean_env(
        KALTURA_PARTNERID=str(state["kaltura_partner_id"]),
        KALTURA_SECRET=state["kaltura_admin_secret"],
        KALTURA_USERID="netid@princeton.edu",
        AWS_BUCKET=bucket,
    )
    return {"config": config, "env": env, "s3": s3, "bucket": bucket, "content": content}


def seed_cli(setup: dict[str, Any], *args: str) -> Any:
    """``recstore kaltura ARGS``, the configuration named in the environment, so that ARGS
    is the seed's line and nothing else."""
    env = {**setup["env"], "RECSTORE_CONFIG": str(setup["config"])}
    return run_cli("kaltura", *args, env=env, timeout=180)


def rows(stdout: str) -> dict[str, dict[str, str]]:
    return {
        r["entry_id"].removeprefix(f"{PREFIX}_"): r
        for r in csv.DictReader(io.StringIO(stdout), delimiter="\t")
    }


def test_seed_status_lists_select_as_in_the_seed(seed_setup: dict[str, Any]) -> None:
    """Both entries are READY (2): the README's "not READY" example counts neither."""
    both = ids("a", "b")
    not_ready = seed_cli(seed_setup, "count", *SEED_STATUS_EXAMPLE, *both)
    assert not_ready.returncode == 0, not_ready.stderr
    assert not_ready.stdout.strip() == "0"
    ready = seed_cli(seed_setup, "count", "--status", "-1", "-2", "2", *both)
    assert ready.stdout.strip() == "2", ready.stderr
    unlimited = seed_cli(seed_setup, "count", "-M", "-1", "-i", f"{PREFIX}_a", "-s", "50")
    assert unlimited.stdout.strip() == "1", unlimited.stderr


def test_media_type_selects_as_the_seed_did(seed_setup: dict[str, Any]) -> None:
    """The seed worked on videos only; recstore takes every type unless told (README)."""
    both = ids("a", "audio")
    assert seed_cli(seed_setup, "count", *both).stdout.strip() == "2"
    videos = seed_cli(seed_setup, "count", "--media_type", "video", *both)
    assert videos.stdout.strip() == "1", videos.stderr
    audio = seed_cli(seed_setup, "list", "--media_type", "audio", *both)
    assert list(rows(audio.stdout)) == ["audio"], audio.stderr


def test_seed_command_names_and_switches_run(seed_setup: dict[str, Any]) -> None:
    dry = seed_cli(seed_setup, "replace_video", "-w", *ids("a"))
    assert dry.returncode == 0, dry.stderr
    assert rows(dry.stdout)["a"]["action"] == "replace-video"
    assert "dry run" in dry.stderr
    restore = seed_cli(seed_setup, "restore_from_s3", "--tmp", ".", *ids("a"))
    assert restore.returncode == 0, restore.stderr
    assert rows(restore.stdout)["a"]["action"] == "restore"

    s3 = seed_setup["s3"]
    copied = seed_cli(seed_setup, "--loglevel", "INFO", "archive", "--s3copy", *ids("a"))
    assert copied.returncode == 0, copied.stderr
    assert rows(copied.stdout)["a"]["outcome"] == "DONE"
    head = s3.head_object(Bucket=seed_setup["bucket"], Key=f"{PREFIX}_a")
    assert head["ContentLength"] == 1024 * 1024


def test_deleted_flavors_is_read_as_flavors_deleted(seed_setup: dict[str, Any]) -> None:
    listed = seed_cli(seed_setup, "list", *ids("b"))
    assert listed.returncode == 0, listed.stderr
    assert rows(listed.stdout)["b"]["flavors_deleted"] == "True"
    health = seed_cli(seed_setup, "health", *ids("b"))
    row = rows(health.stdout)["b"]
    assert row["flavors_deleted"] == "True"
    assert row["status-ok"] == "HEALTHY", row  # a placeholder: its size need not match S3


def test_the_daemon_runs_a_kaltura_only_configuration_and_says_what_it_runs(
    seed_setup: dict[str, Any],
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "recstore", "run", "--config", str(seed_setup["config"])],
        cwd=ROOT,
        env=seed_setup["env"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        log = LogLines(proc.stderr)
        started = log.wait_for(r" 15000 .*").group(0)
        assert "workers=none" in started
        assert "FileTransferer (no work queue" in started
        assert "DracoonGlobalSharer (no DRACOON account" in started
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.finish()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_config_checks_access_as_the_seed_did(seed_setup: dict[str, Any], tmp_path: Path) -> None:
    """``kaltura_aws.py config``: a session on Kaltura and the bucket, or exit 1 saying which."""
    ok = seed_cli(seed_setup, "config")
    assert ok.returncode == 0, ok.stderr
    assert f"s3: bucket {seed_setup['bucket']} reachable" in ok.stdout
    assert "kaltura: partner" in ok.stdout
    env = {**seed_setup["env"], "AWS_BUCKET": "no-such-bucket-here"}
    missing = run_cli("kaltura", "config", "--config", str(seed_setup["config"]), env=env)
    assert missing.returncode == 1
    assert "no-such-bucket-here" in missing.stderr
    assert seed_setup["env"]["KALTURA_SECRET"] not in missing.stderr + missing.stdout


def test_download_saves_the_original_as_the_seed_did(
    seed_setup: dict[str, Any], tmp_path: Path
) -> None:
    saved = seed_cli(seed_setup, "download", "-i", f"{PREFIX}_a", "--tmp", str(tmp_path))
    assert saved.returncode == 0, saved.stderr
    target = tmp_path / f"{PREFIX}_a"
    assert saved.stdout.strip() == f"downloaded to {target}"
    assert target.read_bytes() == seed_setup["content"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]
    none = seed_cli(seed_setup, "download", "--id", f"{PREFIX}_nope", "--tmp", str(tmp_path))
    assert none.returncode == 1


#: Command lines of seed 001's own scripts (archive.rc, restore.rc, health.rc in
#: PrincetonUniversity/kaltura_archiver), N_YEARS=3, as cron runs them in test mode.
SEED_SCRIPT_LINES = [
    "count --unplayed_for 3 --tag !archived_to_s3",
    "count --created_before 3 --tag !archived_to_s3",
    "--loglevel INFO s3copy --unplayed_for 3 --tag !archived_to_s3 --max_entries 1",
    "--loglevel INFO replace_video --unplayed_for 3 --tag archived_to_s3 --max_entries 1",
    "count --unplayed_for 3 --tag !flavors_deleted",
    "--loglevel INFO restore_from_s3 --tag flavors_deleted --played_within 3 --max_entries 1",
    "--loglevel INFO restore_from_s3 --tag flavors_deleted --created_within 3 --max_entries 1",
    "count --tag flavors_deleted --played_within 3",
    "-l INFO health --played_within 3 --tag flavors_deleted",
    "-l INFO health --plays 1 --created_before 3 --tag !flavors_deleted",
]


SEED_INVOCATIONS = ("kaltura_aws.py ", "./kaltura_aws.py ", "python kaltura_aws.py ")


def seed_readme_lines() -> list[str]:
    """Every ``kaltura_aws.py`` command line in seeds 001 and 003's READMEs, unchanged but for
    their ``[filter-options]`` placeholder (one entry id here) and output redirection."""
    from tests.conftest import DATA

    lines = []
    for path in sorted((DATA / "seeds").glob("00[13]_*.txt")):
        for line in path.read_text().splitlines():
            if not line.strip().startswith(SEED_INVOCATIONS):
                continue
            args = line.split("kaltura_aws.py", 1)[1].split(">", 1)[0]
            for placeholder in ("[filter-options]", "[fiOlter-options]"):
                args = args.replace(placeholder, f"--id {PREFIX}_a")
            lines.append(" ".join(args.split()))
    return list(dict.fromkeys(lines))


def test_the_seed_readme_lines_are_found() -> None:
    lines = seed_readme_lines()
    assert "count --status --status 1 -2 0 1 7 4" in lines
    assert f"archive --id {PREFIX}_a" in lines  # seed 003
    assert f"replace_video --id {PREFIX}_a" in lines
    assert "--help" in lines


@pytest.mark.parametrize("line", [*seed_readme_lines(), *SEED_SCRIPT_LINES])
def test_every_seed_command_line_runs_unchanged(seed_setup: dict[str, Any], line: str) -> None:
    """Parsed as the seed parsed it (no usage error), and run (a dry run where it acts)."""
    result = seed_cli(seed_setup, *line.split())
    assert result.returncode in (0, 1), result.stderr
    assert "Usage:" not in result.stderr, result.stderr
    assert "WOULD_DO" not in result.stdout or "dry run" in result.stderr
