"""Reports enriched from the directory: seed 001's ``add_ldap_status``, as a pure transformation.

Three columns are added to each row, looked up by the creator id column:

``ldap_status``
    ``active``     the account matches ``ldap.activeFilter`` (seed 001: ``puresource`` holds
                   ``authentication=enabled`` or ``authentication=goingaway``) and not
                   ``ldap.goingAwayFilter``;
    ``goingaway``  it matches both: still active, about to be disabled
                   (``authentication=goingaway``);
    ``inactive``   the directory has the entry, but the active filter does not match it
                   (``authentication=disabled``, or no ``puresource`` at all);
    ``unknown``    no entry under ``ldap.baseDn`` has the id (or the cell is empty).
    Seed 001 said ``inactive`` for both of the last two; telling them apart is what an operator
    asks next ("left, or never here?"). The column is not called ``status`` as in the seed
    because the ``list`` report already has a ``status`` column (the Kaltura entry status).
``name``
    the first of ``ldap.nameAttributes`` the entry has (seed 001: ``displayName``, else ``cn``).
``org_unit``
    the first value of ``ldap.orgUnitAttribute`` (seed 001: ``ou``); empty when missing.

Ids such as ``netid@example.edu`` are looked up as ``netid`` (seed 001; ``ldap.stripEmailDomain``).
Every distinct id is asked about once. Tabs and line breaks inside a directory value become
spaces, like everywhere else in recstore's TSV.

The TSV form (:func:`enhance_tsv`) works on bytes and keeps every input byte: each line's cells,
odd characters, empty cells and its line ending (``\\n`` or ``\\r\\n``, also a missing final one)
stay as they were; the three cells go before the line ending. A blank line stays blank. The
whole report is read and every id resolved before the first line comes out, so a directory
failure leaves no half-enriched report behind.

No sockets here: the lookups go through a :class:`Directory` (``recstore.clients.ldap``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from recstore.clients.ldap import DirectoryUser
from recstore.common.errors import RecstoreError

LDAP_COLUMNS = ("ldap_status", "name", "org_unit")
ACTIVE = "active"
GOING_AWAY = "goingaway"
INACTIVE = "inactive"
UNKNOWN = "unknown"
STATUSES = (ACTIVE, GOING_AWAY, INACTIVE, UNKNOWN)


class Directory(Protocol):
    """Anything that answers :class:`DirectoryUser` facts for ids (an ``LdapDirectory``)."""

    async def find_users(self, ids: Iterable[str]) -> Mapping[str, DirectoryUser]: ...


class ReportFormatError(RecstoreError):
    """The input is not a report the columns can be added to (no such column, short row...)."""


@dataclass(frozen=True)
class LdapColumns:
    """The three added cells of one creator id."""

    status: str
    name: str = ""
    org_unit: str = ""

    def cells(self) -> tuple[str, str, str]:
        return self.status, _clean(self.name), _clean(self.org_unit)


def lookup_id(creator_id: str, *, strip_email_domain: bool = True) -> str:
    """The id to look up for a creator id cell: trimmed, and ``x@domain`` as ``x``."""
    value = creator_id.strip()
    if strip_email_domain and "@" in value:
        value = value.split("@", 1)[0]
    return value


def columns_of(user: DirectoryUser | None) -> LdapColumns:
    """The added cells for what the directory said (None: it has no entry for the id)."""
    if user is None:
        return LdapColumns(UNKNOWN)
    if not user.active:
        status = INACTIVE
    elif user.going_away:
        status = GOING_AWAY
    else:
        status = ACTIVE
    return LdapColumns(status, user.name, user.org_unit)


async def resolve(
    creator_ids: Iterable[str], directory: Directory, *, strip_email_domain: bool = True
) -> dict[str, LdapColumns]:
    """Each distinct creator id cell → its added cells, asking the directory once per id."""
    keys = {cell: lookup_id(cell, strip_email_domain=strip_email_domain) for cell in creator_ids}
    found = await directory.find_users(sorted({key for key in keys.values() if key}))
    return {
        cell: columns_of(found.get(key)) if key else LdapColumns(UNKNOWN)
        for cell, key in keys.items()
    }


async def add_ldap_columns(
    rows: Iterable[Mapping[str, Any]],
    directory: Directory,
    *,
    column: str = "creator_id",
    strip_email_domain: bool = True,
) -> list[dict[str, Any]]:
    """Rows (e.g. :func:`recstore.archive.report.list_row`) with :data:`LDAP_COLUMNS` added.

    For ``kaltura list --ldap``: write them with ``LIST_COLUMNS + LDAP_COLUMNS``. All rows are
    taken in before the directory is asked, so a failure raises before anything is written.
    """
    rows = list(rows)
    for row in rows:
        if set(LDAP_COLUMNS) & set(row):
            raise ReportFormatError(f"rows already have a column of {', '.join(LDAP_COLUMNS)}")
    cells = [_cell_text(row.get(column)) for row in rows]
    resolved = await resolve(cells, directory, strip_email_domain=strip_email_domain)
    enriched = []
    for row, cell in zip(rows, cells, strict=True):
        values = dict(row)
        values.update(zip(LDAP_COLUMNS, resolved[cell].cells(), strict=True))
        enriched.append(values)
    return enriched


async def enhance_tsv(
    data: bytes,
    directory: Directory,
    *,
    column: str = "creator_id",
    strip_email_domain: bool = True,
) -> Iterator[bytes]:
    """The TSV report ``data`` (header line first) with :data:`LDAP_COLUMNS` added, line by line.

    Raises :class:`ReportFormatError` before any lookup when the input does not fit, and the
    directory's error when a lookup fails; the returned lines are produced only after every id
    was resolved.
    """
    lines = _split_lines(data)
    if not lines or not lines[0][0].strip():
        raise ReportFormatError("the input has no header line")
    header = [
        cell.decode("utf-8", "replace")
        for cell in lines[0][0].removeprefix(b"\xef\xbb\xbf").split(b"\t")
    ]
    if column not in header:
        raise ReportFormatError(
            f"the header has no column {column!r} (it has: {', '.join(header)})"
        )
    present = [name for name in LDAP_COLUMNS if name in header]
    if present:
        raise ReportFormatError(f"the input already has the column(s) {', '.join(present)}")
    index = header.index(column)
    ids: list[str | None] = [None]
    for number, (body, _) in enumerate(lines[1:], start=2):
        if not body:
            ids.append(None)
            continue
        cells = body.split(b"\t")
        if len(cells) <= index:
            raise ReportFormatError(
                f"line {number} has {len(cells)} cell(s), so no {column} (cell {index + 1})"
            )
        ids.append(cells[index].decode("utf-8", "replace"))
    resolved = await resolve(
        {value for value in ids if value is not None},
        directory,
        strip_email_domain=strip_email_domain,
    )
    return _enhanced_lines(lines, ids, resolved)


def _enhanced_lines(
    lines: list[tuple[bytes, bytes]],
    ids: list[str | None],
    resolved: Mapping[str, LdapColumns],
) -> Iterator[bytes]:
    for number, ((body, ending), value) in enumerate(zip(lines, ids, strict=True)):
        if number == 0:
            added: Iterable[str] = LDAP_COLUMNS
        elif value is None:
            yield body + ending
            continue
        else:
            added = resolved[value].cells()
        yield body + b"".join(b"\t" + cell.encode("utf-8") for cell in added) + ending


def _split_lines(data: bytes) -> list[tuple[bytes, bytes]]:
    """``(content, line ending)`` per line: LF ends a line and a CR before it belongs to the
    ending (CRLF); a last line without LF keeps its missing ending."""
    pieces = data.split(b"\n")
    tail = pieces.pop()  # what follows the last LF: empty when the data ends with one
    lines = [_cut_ending(piece + b"\n") for piece in pieces]
    if tail:
        lines.append(_cut_ending(tail))
    return lines


def _cut_ending(line: bytes) -> tuple[bytes, bytes]:
    body = line.removesuffix(b"\n").removesuffix(b"\r")
    return body, line[len(body) :]


def _cell_text(value: Any) -> str:
    return "" if value is None else str(value)


def _clean(value: str) -> str:
    return value.replace("\t", " ").replace("\r", " ").replace("\n", " ")
