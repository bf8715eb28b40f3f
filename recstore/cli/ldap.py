"""``recstore ldap-status``: seed 001's ``add_ldap_status``, a filter from TSV to TSV.

``recstore kaltura list > list.tsv; recstore ldap-status < list.tsv > enhanced.tsv`` adds the
``ldap_status``, ``name`` and ``org_unit`` columns (see :mod:`recstore.archive.ldap_report`).
Exit statuses: 0 done; 1 the directory failed (nothing is written to stdout, so a redirect
leaves an empty file, never a report that looks complete); 2 bad configuration or an input
that does not fit (no such column, a row too short).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from recstore.archive.ldap_report import ReportFormatError, enhance_tsv
from recstore.cli.main import CONFIG_OPTION, _config_failed, _load, main
from recstore.clients.ldap import LdapDirectory
from recstore.common.errors import ConfigError, RecstoreError


@main.command("ldap-status")
@CONFIG_OPTION
@click.option(
    "--column",
    default="creator_id",
    show_default=True,
    help="Header name of the column that holds the creator id (netid or netid@domain).",
)
def ldap_status(config_path: Path | None, column: str) -> None:
    """Add ldap_status, name and org_unit columns to the TSV report on stdin.

    ldap_status is active, goingaway, inactive (in the directory, not active) or unknown
    (not in the directory). Every other byte of the input is kept as it was.
    """
    settings = _load(config_path, check_workers=False)
    data = sys.stdin.buffer.read()

    async def work() -> Iterator[bytes]:
        async with LdapDirectory(settings.ldap) as directory:
            return await enhance_tsv(
                data,
                directory,
                column=column,
                strip_email_domain=settings.ldap.strip_email_domain,
            )

    try:
        lines = asyncio.run(work())
    except ConfigError as exc:
        _config_failed(exc)
    except ReportFormatError as exc:
        click.echo(f"recstore ldap-status: {exc}", err=True)
        sys.exit(2)
    except RecstoreError as exc:
        click.echo(f"recstore ldap-status: no output written: {exc}", err=True)
        sys.exit(1)
    out = sys.stdout.buffer
    try:
        for line in lines:
            out.write(line)
        out.flush()
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away: nothing left to say
        sys.exit(0)
