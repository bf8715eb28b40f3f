"""``recstore kaltura list|count|health|stats``: the read-only inventory commands of seed 001.

Each takes the seed's filter options (``--tag``, ``--category``, ``--plays``, ``--status``,
``--created_within``, ``--created_before``, ``--played_within``, ``--unplayed_for``, ``--id``,
``--idfile``, ``--max_entries``; spelled with ``_`` as in the seed or ``-``), writes its report
to stdout and shows a progress bar on stderr when stderr is a terminal.

The seed's command lines run as they are (issue 29): its short options (``-t``, ``-c``, ``-p``,
``-u``, ``-i``, ``-I``, ``-M``), ``--status`` with space-separated numbers (``--status 1 -2 0``,
even repeated empty as in its README: ``--status --status 1 -2 0 1 7 4``), ``--max_entries -1``
for "no limit", and the paging options it had (``--page_size``; ``--first_page 1``).
docs/migration.md lists every option of ``kaltura_aws.py`` and what recstore does with it.
"""

from __future__ import annotations

import asyncio
import functools
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from tqdm import tqdm

from recstore.archive import health as archive_health
from recstore.archive import inventory
from recstore.archive.filters import Selection, SelectionError, parse_statuses, read_id_file
from recstore.archive.report import (
    FLAVOR_COLUMNS,
    FORMATS,
    HEALTH_COLUMNS,
    LIST_COLUMNS,
    RowWriter,
    flavor_rows,
    health_row,
    list_row,
)
from recstore.archive.states import Flavor, original_flavor
from recstore.archive.stats import STATS_COLUMNS, Stats
from recstore.cli.main import CONFIG_OPTION, _load, main, reported_errors
from recstore.clients.aws import aws_client
from recstore.clients.aws_errors import aws_errors
from recstore.clients.kaltura_types import KalturaMediaEntry
from recstore.common import events
from recstore.workers.archive_context import ArchiveContext, archive_context

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

FORMAT_OPTION = click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="tsv",
    show_default=True,
    help="tsv and csv with a header line; json is one object per line.",
)
#: KalturaMediaType values of seed 001's ``--media_type`` choices.
MEDIA_TYPES = {"video": 1, "image": 2, "audio": 5}
_FILTERS = (
    click.option(
        "--tag",
        "-t",
        "tags",
        multiple=True,
        help="Entries with this tag; '!TAG' for entries without it (repeatable, all must hold).",
    ),
    click.option(
        "--category",
        "-c",
        "categories",
        type=int,
        multiple=True,
        help="Entries in this category id or below it (repeatable: any of them).",
    ),
    click.option("--plays", type=int, help="Entries played exactly this many times."),
    click.option(
        "--status",
        "statuses",
        multiple=True,
        help="KalturaEntryStatus numbers, e.g. --status 2, --status 1,-2,0 or (as in seed "
        "001) --status 1 -2 0 (default: all but DELETED).",
    ),
    click.option(
        "--created_within", "--created-within", type=float, help="Created in the last N years."
    ),
    click.option(
        "--created_before",
        "--created-before",
        type=float,
        help="Created more than N years ago.",
    ),
    click.option(
        "--played_within",
        "--played-within",
        "-p",
        type=float,
        help="Played in the last N years.",
    ),
    click.option(
        "--unplayed_for",
        "--unplayed-for",
        "-u",
        type=float,
        help="Not played in the last N years (never played counts, if created before then).",
    ),
    click.option("--id", "-i", "ids", multiple=True, help="This entry id (repeatable)."),
    click.option(
        "--idfile",
        "-I",
        type=click.File("r", encoding="utf-8"),
        help="Entry ids, one per line ('#' starts a comment; '-' reads stdin).",
    ),
    click.option(
        "--max_entries",
        "--max-entries",
        "-M",
        type=int,
        help="Stop after this many entries (-1, as in seed 001: no limit, the default).",
    ),
    click.option(
        "--media_type",
        "--media-type",
        type=click.Choice(list(MEDIA_TYPES)),
        help="Only entries of this media type (seed 001 worked on videos only; default: all).",
    ),
    click.option(
        "--page_size",
        "--page-size",
        "-s",
        type=click.IntRange(0, 500),
        help="Entries per Kaltura request (default: kaltura.pageSize; 0: that default).",
    ),
    click.option(
        "--first_page",
        "--first-page",
        "-f",
        type=int,
        hidden=True,
        help="Seed 001's paging start; only 1 (where every run starts) is accepted.",
    ),
)
#: One ``--status`` word: a number or a comma-separated list of them (``1``, ``-2``, ``1,-2``).
_STATUS_WORD = re.compile(r"-?\d+(,-?\d+)*,?")


def seed_status_args(args: list[str]) -> list[str]:
    """Seed 001's ``--status 1 -2 0`` (argparse ``nargs='*'``) as one ``--status 1,-2,0``.

    The numbers after ``--status`` are gathered up to the next word that is not one; a
    ``--status`` followed by no number (the seed README's ``--status --status 1 -2 0``) adds
    nothing, as the seed's empty list did. A word that is neither a number nor an option
    stays the option's value, so ``--status ready`` is reported as a bad status.
    """
    out: list[str] = []
    i = 0
    while i < len(args):
        word = args[i]
        i += 1
        if word == "--":
            out += args[i - 1 :]
            break
        if word != "--status":
            out.append(word)
            continue
        numbers: list[str] = []
        while i < len(args) and _STATUS_WORD.fullmatch(args[i]):
            numbers.append(args[i].rstrip(","))
            i += 1
        if numbers:
            out += ["--status", ",".join(numbers)]
        elif i < len(args) and not args[i].startswith("-"):
            out += ["--status", args[i]]
            i += 1
    return out


class SeedCommand(click.Command):
    """A ``kaltura`` command that reads seed 001's space-separated ``--status`` lists."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, seed_status_args(args))


class SeedGroup(click.Group):
    """The ``kaltura`` group: its commands are :class:`SeedCommand`."""

    command_class = SeedCommand


#: Where ``--page_size`` waits for :func:`run_archive_command` (``Context.meta``).
_PAGE_SIZE = "recstore.kaltura.page_size"


def selection_options(command: F) -> F:
    """Add the seed's filter options; the command receives them as one ``selection``."""

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        page_size = kwargs.pop("page_size")
        if page_size:
            click.get_current_context().meta[_PAGE_SIZE] = page_size
        try:
            selection = _selection(kwargs)
        except SelectionError as exc:
            raise click.UsageError(str(exc)) from None
        return command(selection=selection, **kwargs)

    for option in reversed(_FILTERS):
        wrapper = option(wrapper)
    return wrapper  # type: ignore[return-value]


def _selection(kwargs: dict[str, Any]) -> Selection:
    first_page = kwargs.pop("first_page")
    if first_page not in (None, 1):
        raise SelectionError(
            "--first_page: recstore goes through every match in one run (past Kaltura's "
            "10,000-result paging); narrow the selection (--created_before, --id, ...) or "
            "cap it with --max_entries instead"
        )
    max_entries = kwargs.pop("max_entries")
    if max_entries == -1:  # seed 001's "unlimited"
        max_entries = None
    ids = list(kwargs.pop("ids"))
    id_file = kwargs.pop("idfile")
    if id_file is not None:
        ids += read_id_file(id_file)
        if not ids:
            raise SelectionError("--idfile names no entry id")
    return Selection(
        tags=tuple(kwargs.pop("tags")),
        categories=tuple(kwargs.pop("categories")),
        plays=kwargs.pop("plays"),
        statuses=parse_statuses(kwargs.pop("statuses")),
        created_within=kwargs.pop("created_within"),
        created_before=kwargs.pop("created_before"),
        played_within=kwargs.pop("played_within"),
        unplayed_for=kwargs.pop("unplayed_for"),
        ids=tuple(ids),
        max_entries=max_entries,
        extra={"mediaTypeEqual": MEDIA_TYPES[media]} if (media := kwargs.pop("media_type")) else {},
    )


def run_archive_command(
    config_path: Path | None,
    work: Callable[[ArchiveContext], Awaitable[T]],
    *,
    need_s3: bool = False,
) -> T:
    """Load the settings, open the clients, run ``work``; errors become clear exits.

    A bad or incomplete configuration exits 2 naming the key; a remote that fails exits 1
    with its message (never a secret); a closed stdout (``| head``) ends quietly.
    """
    settings = _load(config_path, check_workers=False)
    ctx = click.get_current_context(silent=True)
    if ctx is not None and (page_size := ctx.meta.get(_PAGE_SIZE)):
        kaltura = settings.kaltura.model_copy(update={"page_size": page_size})
        settings = settings.model_copy(update={"kaltura": kaltura})

    async def run() -> T:
        async with archive_context(settings, need_s3=need_s3) as context:
            return await work(context)

    with reported_errors():
        try:
            return asyncio.run(run())
        except BrokenPipeError:
            sys.stderr.close()  # the reader went away: nothing left to say
            sys.exit(0)


async def _progress(
    items: AsyncIterator[T], context: ArchiveContext, selection: Selection, now: datetime
) -> AsyncIterator[T]:
    """Pass items through, ticking a bar on stderr when a person is watching."""
    if not sys.stderr.isatty():
        async for item in items:
            yield item
        return
    total = None
    if selection.exact_on_server:
        total = await inventory.count(context.kaltura, selection, now)
    with tqdm(total=total, unit=" entries", file=sys.stderr, dynamic_ncols=True) as bar:
        async for item in items:
            bar.update()
            yield item


#: Seed 001's ``--loglevel`` names → recstore's levels.
SEED_LOG_LEVELS = {"ERROR": "error", "WARN": "warning", "INFO": "info", "DEBUG": "debug"}


@click.group(cls=SeedGroup)
@click.option(
    "--loglevel",
    "-l",
    type=click.Choice([*SEED_LOG_LEVELS, *SEED_LOG_LEVELS.values()], case_sensitive=False),
    help="Log what the command does on stderr from this level on (seed 001: ERROR, WARN, "
    "INFO, DEBUG); unset: warnings and errors only.",
)
def kaltura(loglevel: str | None) -> None:
    """Inventory (and archive) commands on the Kaltura partner of the configuration."""
    if loglevel is not None:
        events.setup_logging(SEED_LOG_LEVELS.get(loglevel.upper(), loglevel.lower()))


main.add_command(kaltura)


@kaltura.command("list")
@CONFIG_OPTION
@selection_options
@click.option(
    "--mode",
    "-m",
    type=click.Choice(["video", "flavor"]),
    default="video",
    show_default=True,
    help="One row per entry, or one per flavor of each entry.",
)
@FORMAT_OPTION
@click.option(
    "--ldap",
    "with_ldap",
    is_flag=True,
    help="Add ldap_status, name and org_unit from the directory (ldap.*), as ldap-status does.",
)
def list_entries(
    config_path: Path | None, selection: Selection, mode: str, fmt: str, with_ldap: bool
) -> None:
    """The selected entries (seed 001's TSV columns), oldest first, past 10,000."""
    if with_ldap and mode != "video":
        raise click.UsageError("--ldap works with --mode video (one row per entry)")

    async def work(context: ArchiveContext) -> None:
        now = datetime.now(UTC)
        entries = _progress(
            inventory.select(context.kaltura, selection, now), context, selection, now
        )
        if with_ldap:
            await _list_with_ldap(context, entries, fmt)
            return
        if mode == "video":
            writer = RowWriter(sys.stdout, LIST_COLUMNS, fmt)
            writer.header()
            async for entry in entries:
                writer.row(list_row(entry, context.tags))
            return
        writer = RowWriter(sys.stdout, FLAVOR_COLUMNS, fmt)
        writer.header()
        concurrency = context.settings.archive.concurrency
        async for view in inventory.inspect(entries, context.kaltura, concurrency=concurrency):
            for row in flavor_rows(view, context.tags):
                writer.row(row)

    run_archive_command(config_path, work)


async def _list_with_ldap(
    context: ArchiveContext, entries: AsyncIterator[KalturaMediaEntry], fmt: str
) -> None:
    """The whole report is looked up before a line is written: a directory that fails midway
    must not leave a report that looks complete."""
    from recstore.archive.ldap_report import LDAP_COLUMNS, add_ldap_columns
    from recstore.clients.ldap import LdapDirectory

    ldap = context.settings.ldap
    rows = [list_row(entry, context.tags) async for entry in entries]
    async with LdapDirectory(ldap) as directory:
        enhanced = await add_ldap_columns(
            rows, directory, strip_email_domain=ldap.strip_email_domain
        )
    writer = RowWriter(sys.stdout, LIST_COLUMNS + LDAP_COLUMNS, fmt)
    writer.header()
    for row in enhanced:
        writer.row(row)


@kaltura.command("count")
@CONFIG_OPTION
@selection_options
def count_entries(config_path: Path | None, selection: Selection) -> None:
    """How many entries the filters select (Kaltura's own count where it is exact)."""

    async def work(context: ArchiveContext) -> int:
        return await inventory.count(context.kaltura, selection, datetime.now(UTC))

    click.echo(run_archive_command(config_path, work))


@kaltura.command("health")
@CONFIG_OPTION
@selection_options
@FORMAT_OPTION
def health(config_path: Path | None, selection: Selection, fmt: str) -> None:
    """Check seed 001's invariants per entry; exit 1 when any entry is unhealthy."""

    async def work(context: ArchiveContext) -> tuple[int, int]:
        now = datetime.now(UTC)
        entries = _progress(
            inventory.select(context.kaltura, selection, now), context, selection, now
        )
        writer = RowWriter(sys.stdout, HEALTH_COLUMNS, fmt)
        writer.header()
        checked = unhealthy = 0
        async for view in inventory.inspect(
            entries,
            context.kaltura,
            objects=context.s3,
            bucket=context.bucket,
            concurrency=context.settings.archive.concurrency,
        ):
            result = archive_health.check(view, context.tags, context.sizes)
            writer.row(health_row(view, result))
            checked += 1
            unhealthy += not result.healthy
        return checked, unhealthy

    checked, unhealthy = run_archive_command(config_path, work, need_s3=True)
    click.echo(f"{checked} entries checked, {unhealthy} unhealthy", err=True)
    if unhealthy:
        sys.exit(1)


@kaltura.command("stats")
@CONFIG_OPTION
@selection_options
@FORMAT_OPTION
def stats(config_path: Path | None, selection: Selection, fmt: str) -> None:
    """Counts per year, how many are archived or placeholders, and TB that could be saved."""

    async def work(context: ArchiveContext) -> Stats:
        now = datetime.now(UTC)
        entries = _progress(
            inventory.select(context.kaltura, selection, now), context, selection, now
        )
        result = Stats(context.tags)
        async for view in inventory.inspect(
            entries, context.kaltura, concurrency=context.settings.archive.concurrency
        ):
            result.add(view)
        return result

    result = run_archive_command(config_path, work)
    writer = RowWriter(sys.stdout, STATS_COLUMNS, fmt)
    writer.header()
    for row in result.rows():
        writer.row(row)


@kaltura.command("config")
@CONFIG_OPTION
def check_access(config_path: Path | None) -> None:
    """Seed 001's `config`: reach Kaltura (a session, one count) and the archive bucket.

    `recstore config check` reads the settings; this also uses them, so a wrong secret, an
    unreachable server or a missing bucket shows here (exit 1) before a run does.
    """

    async def work(context: ArchiveContext) -> list[str]:
        settings = context.settings
        entries = await context.kaltura.count({"objectType": "KalturaMediaEntryFilter"})
        kaltura = settings.kaltura
        where = f"partner {kaltura.partner_id} at {kaltura.service_url}"
        lines = [f"kaltura: {where}: {entries} entries"]
        bucket = settings.archive.bucket
        if bucket:
            async with aws_client(settings.aws, "s3") as s3:
                with aws_errors("s3", f"head of bucket {bucket}"):
                    await s3.head_bucket(Bucket=bucket)
            lines.append(f"s3: bucket {bucket} reachable")
        else:
            lines.append("s3: archive.bucket is not set (s3copy, replace-video, restore need it)")
        placeholder = settings.archive.placeholder_video
        lines.append(
            f"placeholder: {placeholder}"
            if placeholder is not None
            else "placeholder: archive.placeholderVideo is not set (replace-video needs it)"
        )
        return lines

    for line in run_archive_command(config_path, work):
        click.echo(line)


@kaltura.command("download")
@CONFIG_OPTION
@click.option("--id", "-i", "entry_id", required=True, help="The entry whose original to fetch.")
@click.option(
    "--tmp",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder the file is written to, named after the entry id (seed 001's --tmp).",
)
def download(config_path: Path | None, entry_id: str, folder: Path) -> None:
    """Seed 001's `download`: save an entry's READY original flavor as FOLDER/ENTRY_ID.

    Written under a temporary name and renamed when complete, so a failed download never
    leaves a file that looks whole; exit 1 when the entry has no READY original.
    """

    async def work(context: ArchiveContext) -> Path | str:
        flavors = [Flavor.from_api(f) for f in await context.kaltura.flavors(entry_id)]
        found = original_flavor(flavors)
        if found is None or not found.ready:
            state = "no original flavor" if found is None else f"original is {found.status_name}"
            return f"{entry_id}: {state}, nothing downloaded"
        url = await context.kaltura.flavor_url(found.id)
        target = folder / entry_id
        partial = folder / f".{entry_id}.part"
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        out = await asyncio.to_thread(partial.open, "wb")
        try:
            with out:
                async for piece in context.kaltura.download(url, context.settings.s3.chunk_size):
                    await asyncio.to_thread(out.write, piece)
            await asyncio.to_thread(partial.replace, target)
        finally:
            await asyncio.to_thread(partial.unlink, missing_ok=True)
        return target

    result = run_archive_command(config_path, work)
    if isinstance(result, str):
        raise click.ClickException(result)
    click.echo(f"downloaded to {result}")
