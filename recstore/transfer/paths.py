"""Target path templates (``$instance/$meetingType``) into DRACOON room names, safely.

A template is relative to the instance's parent room; each ``/``-separated segment becomes a
room. The values substituted come from outside (the job message), so a value is never allowed
to add levels or climb out: a ``/`` in a value, ``..``, an empty segment or an absolute path is
refused, never created. Segment names must also be names DRACOON accepts.
"""

from __future__ import annotations

import re
from string import Template

MAX_NAME = 150
_FORBIDDEN = re.compile(r'[\\<>:"|?*/\x00-\x1f\x7f]')
_RESERVED = re.compile(r"^(CON|PRN|AUX|NUL|COM[1-9]|LPT[1-9])(\..*)?$", re.IGNORECASE)
VARIABLES = ("instance", "meetingType")


class TargetPathError(ValueError):
    """The template, or what it renders to, is not a safe room path."""


def check_room_name(name: str) -> str:
    """``name`` if DRACOON accepts it as a room name; :class:`TargetPathError` otherwise."""
    if not name:
        raise TargetPathError("a room name cannot be empty")
    if name in (".", ".."):
        raise TargetPathError(f"{name!r} is not a room name")
    if len(name) > MAX_NAME:
        raise TargetPathError(f"room name longer than {MAX_NAME} characters: {name[:40]!r}...")
    bad = _FORBIDDEN.search(name)
    if bad:
        raise TargetPathError(f"room name {name!r} contains {bad.group()!r}")
    if name != name.strip() or name.endswith(".") or name.startswith("-"):
        # DRACOON's node naming convention forbids a leading '-' and a trailing '.'.
        raise TargetPathError(
            f"room name {name!r} starts with a space or '-', or ends with a space or '.'"
        )
    if _RESERVED.match(name):
        raise TargetPathError(f"room name {name!r} is reserved")
    return name


def render_target_path(template: str, *, instance: str, meeting_type: str) -> tuple[str, ...]:
    """The room names of ``template`` with ``$instance``/``$meetingType`` substituted."""
    if template.startswith("/"):
        raise TargetPathError(f"{template!r}: target paths are relative to the parent room")
    values = {"instance": instance, "meetingType": meeting_type}
    segments = template.split("/")
    rendered = []
    for segment in segments:
        if segment in ("", ".", ".."):
            raise TargetPathError(f"{template!r}: empty, '.' or '..' segment")
        try:
            name = Template(segment).substitute(values)
        except KeyError as exc:
            raise TargetPathError(
                f"{template!r}: unknown variable ${exc.args[0]} (use $instance, $meetingType)"
            ) from None
        except ValueError:
            raise TargetPathError(f"{template!r}: a '$' must start a variable or be '$$'") from None
        try:
            rendered.append(check_room_name(name))
        except TargetPathError as exc:
            raise TargetPathError(f"{template!r}: {exc}") from None
    return tuple(rendered)
