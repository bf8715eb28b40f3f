"""Field types and validators shared by the settings models: sizes, durations, LDAP and
DRACOON URLs, and the base every section derives from (unknown keys are errors).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
)

from recstore.common.source_rules import parse_rules
from recstore.common.units import parse_duration, parse_size

Size = Annotated[int, BeforeValidator(parse_size)]


Duration = Annotated[float, BeforeValidator(parse_duration)]


LogLevel = Literal["debug", "info", "warning", "error", "critical"]


def _ldap_urls(value: Any) -> Any:
    """A list of ``ldap://``/``ldaps://`` URLs; a string (the environment) splits on spaces."""
    urls = value.replace(",", " ").split() if isinstance(value, str) else value
    if isinstance(urls, list):
        for url in urls:
            if not isinstance(url, str) or not url.lower().startswith(("ldap://", "ldaps://")):
                raise ValueError(f"{url!r} is not an ldap:// or ldaps:// URL")
    return urls


def _ldap_filter(value: Any) -> Any:
    """A filter template: parenthesised, balanced, with ``{id}`` where the id goes."""
    if not isinstance(value, str):
        return value
    depth, closed_at = 0, -1
    for position, char in enumerate(value):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth <= 0:
            closed_at = position
            break
    if not value.startswith("(") or closed_at != len(value) - 1:
        raise ValueError("must be one parenthesised LDAP filter with balanced parentheses")
    if "{id}" not in value:
        raise ValueError("must contain {id} where the looked-up id goes")
    return value


def _ldap_filter_or_empty(value: Any) -> Any:
    return value if value == "" else _ldap_filter(value)


def dracoon_server_url(value: Any) -> Any:
    """A DRACOON server's root URL, however the operator wrote it.

    Seed 004 documents ``dracoon.baseUrl: https://dracoon.team/api/v4`` (the API's base);
    recstore's client adds ``/api/v4`` and ``/oauth`` to the server's root. So one rule for
    every place a server URL is read: trailing slashes go, and so does a trailing ``/api/v4``
    or ``/api``; ``https://dracoon.team``, ``https://dracoon.team/`` and
    ``https://dracoon.team/api/v4/`` all name the same server.
    """
    if not isinstance(value, str):
        return value
    url = value.strip().rstrip("/")
    for suffix in ("/api/v4", "/api"):
        if url.lower().endswith(suffix):
            url = url[: -len(suffix)].rstrip("/")
            break
    return url


LdapUrls = Annotated[list[str], BeforeValidator(_ldap_urls)]


LdapFilter = Annotated[str, BeforeValidator(_ldap_filter)]


LdapFilterOrEmpty = Annotated[str, BeforeValidator(_ldap_filter_or_empty)]


DracoonUrl = Annotated[str | None, BeforeValidator(dracoon_server_url)]


#: botocore.utils.validate_region_name's host label, as a full match.
REGION = re.compile(r"(?![0-9]+$)(?!-)[a-zA-Z0-9-]{1,63}(?<!-)")


def _source_entries(value: Any) -> Any:
    """``bucket`` or ``bucket/prefix`` entries: a list, or one comma-separated string (as an
    environment variable or a configurator's flat answer gives them); each must parse."""
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list | tuple) and all(isinstance(entry, str) for entry in value):
        parse_rules(value)  # ValueError naming the entry
        return tuple(value)
    return value


SourceEntries = Annotated[tuple[str, ...] | None, BeforeValidator(_source_entries)]


class Section(BaseModel):
    """Strict, immutable base: unknown keys are errors, YAML keys are the aliases."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
