"""``recstore vidyo setup-metadata|sync``: seed 000's ``setupMetadata.php`` and one sync cycle.

``sync`` prints one TSV row per recording it worked on (``recording_id``, ``guid``, ``action``,
``entry_id``, ``result``) on stdout; the log lines and a summary go to stderr. It exits 1 when
a recording or the cycle failed.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import click

from recstore.cli.main import (
    CONFIG_OPTION,
    _config_failed,
    _load,
    main,
    reported_errors,
    start_logging,
)
from recstore.common.errors import ConfigError

COLUMNS = ("recording_id", "guid", "action", "entry_id", "result")


@main.group()
def vidyo() -> None:
    """VidyoReplay recordings into Kaltura (VidyoSync): metadata profile, one cycle."""


@vidyo.command("setup-metadata")
@CONFIG_OPTION
@click.option(
    "--write",
    is_flag=True,
    help="Also write the id into the --config file as workers.VidyoSync.metadataProfileId.",
)
def setup_metadata(config_path: Path | None, write: bool) -> None:
    """Find or create the custom metadata profile and print its id."""
    from recstore.clients.kaltura import KalturaClient
    from recstore.workers.vidyo_sync import existing_profile_problems, write_profile_id
    from recstore.workers.vidyo_sync import setup_metadata as find_or_create

    if write and config_path is None:
        raise click.UsageError("--write needs --config: the file to write the id into")
    settings = _load(config_path)
    start_logging(settings)
    system_name = settings.workers.vidyo_sync.metadata_profile_system_name
    kaltura = settings.kaltura
    missing = [
        (key, "is required to set up the metadata profile")
        for key, value in (
            ("kaltura.serviceUrl", kaltura.service_url),
            ("kaltura.partnerId", kaltura.partner_id),
            ("kaltura.adminSecret", kaltura.admin_secret),
        )
        if value is None or value == ""
    ]
    if missing:
        _config_failed(ConfigError(missing))

    async def run() -> tuple[int, bool, list[str]]:
        from recstore.clients.http import http_session

        async with http_session(settings.kaltura.timeout) as http:
            client = KalturaClient(settings.kaltura, http)
            profile_id, created = await find_or_create(client, system_name)
            problems = [] if created else await existing_profile_problems(client, system_name)
            return profile_id, created, problems

    with reported_errors():
        profile_id, created, problems = asyncio.run(run())
    if problems:  # an existing profile that would refuse every metadata.add: nothing written
        _config_failed(
            ConfigError(
                [
                    (
                        "workers.VidyoSync.metadataProfileSystemName",
                        f"the existing profile {system_name} (id {profile_id}) cannot take "
                        f"recstore's metadata: {'; '.join(problems)}",
                    )
                ]
            )
        )
    click.echo(profile_id)
    verb = "created" if created else "found"
    click.echo(f"{verb} metadata profile {system_name} with id {profile_id}", err=True)
    if write:
        assert config_path is not None
        try:
            kept = write_profile_id(config_path, profile_id)
        except (ConfigError, OSError) as exc:
            raise click.ClickException(f"cannot write {config_path}: {exc}") from None
        note = "" if kept else " (rewritten: its comments were not kept)"
        click.echo(f"wrote workers.VidyoSync.metadataProfileId into {config_path}{note}", err=True)


@vidyo.command("sync")
@CONFIG_OPTION
@click.option("--dry-run", is_flag=True, help="Report what would be imported; change nothing.")
def sync(config_path: Path | None, dry_run: bool) -> None:
    """Run one VidyoSync cycle in the foreground."""
    from recstore.workers.vidyo_sync import open_sync

    settings = _load(config_path)
    start_logging(settings)

    async def run() -> Any:
        async with open_sync(settings) as service:
            return await service.cycle(dry_run=dry_run)

    with reported_errors():
        report = asyncio.run(run())
    click.echo("\t".join(COLUMNS))
    if dry_run:
        for work in report.planned:
            action = "import" if work.is_new else "complete"
            steps = ",".join(work.steps)
            row = [str(work.record.id), work.record.guid, action, work.entry_id or "", steps]
            click.echo("\t".join([*row[:4], f"DRY RUN {row[4]}"]))
    for outcome in report.outcomes:
        record = outcome.work.record
        action = "import" if outcome.work.is_new else "complete"
        result = "SUCCESS"
        if outcome.failure is not None:
            step, reason = outcome.failure
            result = f"ERROR {step}: {_one_line(reason)}"
        click.echo("\t".join([str(record.id), record.guid, action, outcome.entry_id or "", result]))
    counts = ", ".join(f"{key} {value}" for key, value in report.counts().items())
    click.echo(f"{'dry run: ' if dry_run else ''}{counts}", err=True)
    if report.failed:
        sys.exit(1)


def _one_line(text: str) -> str:
    return " ".join(text.split())
