"""``recstore vidyo setup-metadata|sync`` and ``devstack seed vidyo`` as real processes against
the session's dev stack (``devstack up``: its VidyoReplay and Kaltura stand-ins)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from recstore.clients.http import http_session
from recstore.clients.kaltura import KalturaClient
from recstore.clients.vidyo import SERVICE_PATH
from recstore.common.errors import ConfigError
from recstore.devstack.appconfig import app_config
from recstore.workers.registry import load_settings
from tests.conftest import StackProcess, run_cli
from tests.test_vidyo_seed000 import lacking
from tests.vidyo_helpers import recording

CONFIG_TAIL = """\
# VidyoSync, as an operator would keep it:
  VidyoSync:
    tag: vidyoreplay  # every imported entry carries it
    metadataProfileId: null  # filled in by `recstore vidyo setup-metadata --write`
"""


def write_config(tmp_path: Path, state: dict[str, Any]) -> Path:
    doc = app_config(state)
    doc["leases"] = {"enabled": False}
    text = yaml.safe_dump(doc, sort_keys=False)
    assert "\nworkers:\n" in text
    head, _, tail = text.partition("\nworkers:\n")
    path = tmp_path / "app.yaml"
    path.write_text(f"{head}\nworkers:\n{CONFIG_TAIL}{tail}")
    return path


def fetch(url: str) -> str:
    assert url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 (loopback http only)
        return str(answer.read().decode())


def kaltura_entries(state: dict[str, Any], guids: list[str]) -> list[dict[str, Any]]:
    """The dev stack's Kaltura entries with these reference ids (through its state route)."""
    entries: list[dict[str, Any]] = json.loads(fetch(f"{state['kaltura_url']}/_devstack/state"))[
        "entries"
    ]
    return [e for e in entries if e["referenceId"] in guids]


def test_devstack_state_names_the_vidyo_server_and_serves_the_wsdl(devstack: StackProcess) -> None:
    state = devstack.state
    assert {"vidyo_url", "vidyo_user", "vidyo_password"} <= set(state)
    wsdl = fetch(state["vidyo_url"] + SERVICE_PATH + "?wsdl")
    assert f'location="{state["vidyo_url"]}{SERVICE_PATH}"' in wsdl


def test_seed_setup_metadata_and_sync_from_the_command_line(
    devstack: StackProcess, tmp_path: Path
) -> None:
    stamp = int(time.time() * 1000)
    seeds = [recording(1000 + n, guid=f"cli-{stamp}-{n}") for n in range(2)]
    seed_file = tmp_path / "records.json"
    seed_file.write_text(json.dumps({"records": seeds}))
    state_file = str(devstack.state_file)
    seeded = run_cli(
        "devstack", "seed", "vidyo", "--state-file", state_file, "--file", str(seed_file)
    )
    assert seeded.returncode == 0, seeded.stderr
    assert [r["guid"] for r in json.loads(seeded.stdout)["records"]] == [s["guid"] for s in seeds]

    config = write_config(tmp_path, devstack.state)
    setup = run_cli("vidyo", "setup-metadata", "--config", str(config), "--write")
    assert setup.returncode == 0, setup.stderr
    profile_id = int(setup.stdout.strip())
    text = config.read_text()
    assert f"metadataProfileId: {profile_id}  # filled in by" in text  # edited in place
    assert "# VidyoSync, as an operator would keep it:" in text
    assert load_settings(config, {}).workers.vidyo_sync.metadata_profile_id == profile_id
    again = run_cli("vidyo", "setup-metadata", "--config", str(config))
    assert (again.returncode, again.stdout.strip()) == (0, str(profile_id))
    assert "found metadata profile vidyoreplaymetadata00" in again.stderr

    guids = [s["guid"] for s in seeds]
    dry = run_cli("vidyo", "sync", "--config", str(config), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    rows = [line.split("\t") for line in dry.stdout.splitlines()[1:]]
    ours = [row for row in rows if row[1] in guids]
    assert [(row[2], row[4]) for row in ours] == [("import", "DRY RUN entry,content,metadata")] * 2
    assert kaltura_entries(devstack.state, guids) == []

    synced = run_cli("vidyo", "sync", "--config", str(config))
    assert synced.returncode == 0, synced.stderr
    assert synced.stdout.splitlines()[0] == "recording_id\tguid\taction\tentry_id\tresult"
    results = {row[1]: row for row in (line.split("\t") for line in synced.stdout.splitlines()[1:])}
    assert all(results[g][2:5:2] == ["import", "SUCCESS"] for g in guids)
    assert " 15025 " in synced.stderr
    assert " 15026 " in synced.stderr
    assert "SUCCESS synchronized recording guid" in synced.stderr
    assert devstack.state["vidyo_password"] not in synced.stderr
    entries = kaltura_entries(devstack.state, guids)
    assert sorted(e["id"] for e in entries) == sorted(results[g][3] for g in guids)

    quiet = run_cli("vidyo", "sync", "--config", str(config))
    assert quiet.returncode == 0, quiet.stderr
    assert not [line for line in quiet.stdout.splitlines()[1:] if line.split("\t")[1] in guids]
    assert "new 0" in quiet.stderr
    assert len(kaltura_entries(devstack.state, guids)) == 2


def test_a_seed_with_an_unknown_field_is_refused(devstack: StackProcess, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"records": [{"title": "x", "colour": "red"}]}))
    state_file = str(devstack.state_file)
    result = run_cli("devstack", "seed", "vidyo", "--state-file", state_file, "--file", str(bad))
    assert result.returncode == 1
    assert "unknown record field(s): colour" in result.stderr


def test_commands_name_what_is_missing(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text(
        "workers: {FileTransferer: {enabled: false}, DracoonGlobalSharer: {count: 0}}\n"
    )
    write = run_cli("vidyo", "setup-metadata", "--write")
    assert write.returncode == 2
    assert "--write needs --config" in write.stderr
    setup = run_cli("vidyo", "setup-metadata", "--config", str(empty))
    assert setup.returncode == 2
    assert "kaltura.serviceUrl: is required to set up the metadata profile" in setup.stderr
    sync = run_cli("vidyo", "sync", "--config", str(empty))
    assert sync.returncode == 2
    assert "vidyo.url: is required for the VidyoReplay sync" in sync.stderr
    assert "kaltura.adminSecret: is required for the VidyoReplay sync" in sync.stderr


def test_enabling_the_worker_requires_both_ends(tmp_path: Path) -> None:
    path = tmp_path / "app.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "leases": {"enabled": False},
                "workers": {
                    "FileTransferer": {"enabled": False},
                    "DracoonGlobalSharer": {"count": 0},
                    "VidyoSync": {"enabled": True, "batchSize": 500},
                },
                "vidyo": {"pageSize": 201},
            }
        )
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {})
    problems = dict(caught.value.problems)
    assert "less than or equal to 200" in problems["workers.VidyoSync.batchSize"]
    assert "less than or equal to 200" in problems["vidyo.pageSize"]
    path.write_text(
        path.read_text().replace("batchSize: 500", "batchSize: 20").replace("201", "50")
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {})
    problems = dict(caught.value.problems)
    for key in ("vidyo.url", "vidyo.user", "vidyo.password", "kaltura.serviceUrl"):
        assert problems[key] == "required while VidyoSync runs"


def test_setup_metadata_refuses_an_existing_profile_that_lacks_a_field(
    devstack: StackProcess, tmp_path: Path
) -> None:
    """Seed 000's setupMetadata.php reused an existing profile as it stood; recstore checks it
    first and exits 2 naming what it lacks, without writing the id into the file."""
    name = f"vidyo-lacking-{int(time.time() * 1000)}"
    config = write_config(tmp_path, devstack.state)
    text = config.read_text().replace(
        "    tag: vidyoreplay", f"    tag: vidyoreplay\n    metadataProfileSystemName: {name}"
    )
    config.write_text(text)
    settings = load_settings(config, {})

    async def create() -> int:
        async with http_session(10) as http:
            added = await KalturaClient(settings.kaltura, http).add_metadata_profile(
                name, name, lacking("Locked")
            )
            return added.id

    profile_id = asyncio.run(create())
    setup = run_cli("vidyo", "setup-metadata", "--config", str(config), "--write")
    assert setup.returncode == 2, setup.stderr
    assert (
        "configuration error: workers.VidyoSync.metadataProfileSystemName: the existing profile "
        f"{name} (id {profile_id}) cannot take recstore's metadata: it lacks the field(s) Locked"
    ) in setup.stderr
    assert "metadataProfileId: null" in config.read_text()
