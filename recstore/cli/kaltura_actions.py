"""``recstore kaltura s3copy|replace-video|restore|repair``: seed 001's changing commands.

Each takes the same filter options as ``list``, and is a dry run unless ``--apply`` is given:
it then prints, per entry, what it would do (``WOULD_DO``) or why not, and changes nothing
anywhere. With ``--apply`` the per-entry code is the one the ArchiveActions workers run,
``archive.actionsConcurrency`` entries at a time; one entry's failure is its own FAILED row,
never the end of the batch. stdout gets one TSV row per entry
(``entry_id action outcome reason mode bytes seconds``), stderr a summary; the exit code is
1 when an entry FAILED.

Seed 001's spellings run unchanged: its command names (``replace_video``, ``restore_from_s3``,
and seed 003's ``archive`` for s3copy), its per-command switches for ``--apply`` (``--s3copy``,
``--replace``, ``--restore``, ``--repair``), and ``--tmp``/``--wait_ready``, which recstore
does not need (it streams, and always waits for READY) and accepts so the lines still run.

Each run also writes the same report to S3 as the daemon's runs do (seed 002's scheduled
``archive.rc``/``restore.rc`` left theirs under ``log/YYYY/MM``): TSV parts under
``<archive.reportPrefix>YYYY/MM/cli-<action>-<time>/`` in ``archive.bucket``, the run's id
in the ``run`` column. ``--report-to none`` turns it off.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from recstore.archive import inventory
from recstore.archive.actions import (
    OUTCOME_COLUMNS,
    REPAIR,
    REPLACE_VIDEO,
    RESTORE,
    S3COPY,
    Outcome,
)
from recstore.archive.filters import Selection
from recstore.archive.plan import report_prefix, run_id
from recstore.archive.report import RowWriter
from recstore.cli.kaltura import (
    FORMAT_OPTION,
    _progress,
    kaltura,
    run_archive_command,
    selection_options,
)
from recstore.cli.main import CONFIG_OPTION
from recstore.clients.kaltura_types import KalturaMediaEntry
from recstore.workers.archive_actions import ReportSink, archivist_for
from recstore.workers.archive_context import ArchiveContext

#: Each action's seed 001 switch for ``--apply`` (its ``DRYRUN unless --X is given``).
SEED_APPLY_FLAGS = {
    S3COPY: "--s3copy",
    REPLACE_VIDEO: "--replace",
    RESTORE: "--restore",
    REPAIR: "--repair",
}
#: Seed command names → recstore's (``archive`` is seed 003's name for s3copy).
SEED_COMMANDS = {
    "replace_video": REPLACE_VIDEO,
    "restore_from_s3": RESTORE,
    "archive": S3COPY,
}


def apply_option(action: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """``--apply``, also spelled as seed 001 spelled it for this action."""
    return click.option(
        "--apply",
        SEED_APPLY_FLAGS[action],
        "apply",
        is_flag=True,
        help="Change things. Without it nothing is changed: each entry's row says what would "
        f"be. ({SEED_APPLY_FLAGS[action]} is seed 001's name for it.)",
    )


SEED_NO_OPS = (
    click.option(
        "--tmp",
        "_tmp",
        type=click.Path(file_okay=False),
        hidden=True,
        help="Seed 001's folder for temporary files; recstore streams and needs none.",
    ),
    click.option(
        "--wait_ready",
        "-w",
        "_wait_ready",
        is_flag=True,
        hidden=True,
        help="Seed 001's wait for READY; recstore always waits (archive.readyTimeout).",
    ),
)
REPORT_OPTION = click.option(
    "--report-to",
    "report_to",
    type=click.Choice(["s3", "none"]),
    default="s3",
    show_default=True,
    help="Where the run's report goes besides stdout: `s3` (archive.bucket, under "
    "archive.reportPrefix YYYY/MM/, as the daemon's runs) or `none`.",
)
CONCURRENCY_OPTION = click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    help="Entries worked on at once (default: archive.actionsConcurrency).",
)


def _run_action(
    action: str,
    config_path: Path | None,
    selection: Selection,
    apply: bool,
    concurrency: int | None,
    fmt: str,
    report_to: str = "s3",
) -> None:
    reported: list[str] = []

    async def work(context: ArchiveContext) -> Counter[str]:
        now = datetime.now(UTC)
        archivist = archivist_for(context)
        entries = _progress(
            inventory.select(context.kaltura, selection, now), context, selection, now
        )
        writer = RowWriter(sys.stdout, OUTCOME_COLUMNS, fmt)
        writer.header()
        counts: Counter[str] = Counter()
        async with _s3_report(context, action, now, report_to) as report:
            async for result in archivist.run_many(
                action,
                _ids(entries),
                apply=apply,
                concurrency=concurrency or context.settings.archive.actions_concurrency,
            ):
                writer.row(result.row())
                sys.stdout.flush()
                counts[result.outcome.value] += 1
                report(result.row())
        reported.extend(_report_where(context, action, now, report_to))
        return counts

    counts = run_archive_command(config_path, work, need_s3=True)
    for where in reported:
        click.echo(f"report: {where}", err=True)
    total = sum(counts.values())
    parts = ", ".join(f"{n} {outcome.value}" for outcome in Outcome if (n := counts[outcome.value]))
    mode = "" if apply else " (dry run: nothing was changed; --apply to do it)"
    click.echo(f"{action}: {total} entries{': ' + parts if parts else ''}{mode}", err=True)
    if counts[Outcome.FAILED.value]:
        sys.exit(1)


@contextlib.asynccontextmanager
async def _s3_report(
    context: ArchiveContext, action: str, now: datetime, report_to: str
) -> AsyncIterator[Callable[[dict[str, Any]], None]]:
    """A function that adds a row to the run's S3 report, flushed as the daemon's are (every
    30 s, and at the end, also when the run fails); a no-op with ``--report-to none``."""
    if report_to != "s3" or context.s3 is None or context.bucket is None:
        yield lambda row: None
        return
    run, prefix = _report_run(context, action, now)
    sink = ReportSink(context.s3, context.bucket)
    stop = asyncio.Event()
    flusher = asyncio.create_task(sink.run(stop))
    try:
        yield lambda row: sink.add(prefix, {**row, "run": run, "attempt": 1})
    finally:
        stop.set()
        await flusher
        await sink.flush()


def _report_run(context: ArchiveContext, action: str, now: datetime) -> tuple[str, str]:
    """The run id (``cli-s3copy-20261207T123000Z``) and its report's key prefix."""
    run = run_id(f"cli-{action}", now)
    return run, report_prefix(context.settings.archive.report_prefix, run, now)


def _report_where(context: ArchiveContext, action: str, now: datetime, report_to: str) -> list[str]:
    if report_to != "s3" or context.s3 is None or context.bucket is None:
        return []
    return [f"s3://{context.bucket}/{_report_run(context, action, now)[1]}"]


async def _ids(entries: AsyncIterator[KalturaMediaEntry]) -> AsyncIterator[str]:
    async for entry in entries:
        yield entry.id


def _command(action: str, help_text: str) -> Callable[..., None]:
    @CONFIG_OPTION
    @selection_options
    @apply_option(action)
    @CONCURRENCY_OPTION
    @FORMAT_OPTION
    @SEED_NO_OPS[0]
    @SEED_NO_OPS[1]
    @REPORT_OPTION
    def command(
        config_path: Path | None,
        selection: Selection,
        apply: bool,
        concurrency: int | None,
        fmt: str,
        _tmp: str | None,
        _wait_ready: bool,
        report_to: str,
    ) -> None:
        _run_action(action, config_path, selection, apply, concurrency, fmt, report_to)

    command.__doc__ = help_text
    return command


for _action, _help in (
    (
        S3COPY,
        "Copy READY originals within the size limit to S3 (key = entry id), then tag them "
        "archived_to_s3. Already in S3 with a matching size: tag only.",
    ),
    (
        REPLACE_VIDEO,
        "Replace archived originals by the placeholder video: only when the S3 copy matches "
        "(size, and SHA-256 where recorded); delete the flavors, upload the placeholder, new "
        "thumbnail, tag flavors_deleted, wait for READY.",
    ),
    (
        RESTORE,
        "Put archived originals back: request restores of archived copies (WAIT_GLACIER), "
        "wait for them (WAIT), then hand the S3 copy to Kaltura and remove flavors_deleted.",
    ),
    (
        REPAIR,
        "Bring entries back in line with their tags: the placeholder where flavors_deleted "
        "says so, the original (from S3) where only archived_to_s3 does, and a fresh S3 copy "
        "where the original changed after archival.",
    ),
):
    kaltura.command(_action)(_command(_action, _help))

for _seed_name, _action in SEED_COMMANDS.items():
    kaltura.command(_seed_name, hidden=True)(
        _command(_action, f"Seed 001/003's name for `recstore kaltura {_action}`.")
    )
