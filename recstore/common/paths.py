"""Target path templates (``$instance/$meetingType``) into DRACOON room names, safely.

A template is relative to the instance's parent room; each ``/``-separated segment names one
room, created if missing. Substitution follows :class:`string.Template`: ``$instance`` and
``$meetingType``, or ``${instance}`` / ``${meetingType}`` when letters follow
(``${instance}_2024``; ``$instance_2024`` names an unknown variable), and ``$$`` for a literal
dollar. An unknown variable or a stray ``$`` is an error, never left in a name.

Nothing here creates a room: the result is either the room names or :class:`TargetPathError`.
Refused are absolute paths, empty segments (``a//b``, a trailing ``/``), ``.`` and ``..``, and
names DRACOON refuses (see :func:`node_name_problem`). The substituted values come from
outside (the job message, the configurator), so a value is never allowed to add levels: a
``/`` in a value is refused rather than replaced, because any replacement would silently file
recordings in a room nobody asked for.
"""

from __future__ import annotations

import re
import unicodedata
from string import Template

from recstore.common.text import shorten

#: DRACOON's limit for node (room, folder, file) names.
MAX_NAME = 150
#: The variables a template may use.
VARIABLES = ("instance", "meetingType")

# The "node naming convention" of the DRACOON API (v4.26.7, POST /v4/nodes/rooms and
# /v4/nodes/files/uploads): these characters, a leading '-', a trailing '.', and the DOS
# device names with or without an extension. Leading/trailing white space and control
# characters are refused too: DRACOON's clients refuse them, and Windows clients could not
# sync such a room.
_FORBIDDEN = re.compile(r'[\\<>:"|?*/]')
#: Characters a reader cannot see, or that change how the rest displays: control (Cc), format
#: (Cf: U+202E RIGHT-TO-LEFT OVERRIDE makes "abc\u202etxt.exe" display as "abcexe.txt",
#: zero-width spaces and joiners), surrogate, private use and unassigned code points, and the
#: line and paragraph separators.
_INVISIBLE_CATEGORIES = {
    "Cc": "control",
    "Cf": "format",
    "Cs": "surrogate",
    "Co": "private use",
    "Cn": "unassigned",
    "Zl": "line separator",
    "Zp": "paragraph separator",
}
#: Letters that display as blank space (Unicode's default-ignorable Hangul fillers).
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")
_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL"] + [f"{port}{n}" for port in ("COM", "LPT") for n in range(1, 10)]
)


class TargetPathError(ValueError):
    """The template, or what it renders to, is not a safe room path."""


def node_name_problem(name: str) -> str | None:
    """Why DRACOON would refuse ``name`` as a room or file name; None when it is fine.

    The reason never repeats the name, so the caller decides whether the name may be shown
    (a file name taken from an S3 key might carry personal data).
    """
    if not name:
        return "is empty"
    if name in (".", ".."):
        return "is a relative reference ('.' or '..'), not a name"
    if len(name) > MAX_NAME:
        return f"is longer than {MAX_NAME} characters"
    forbidden = _FORBIDDEN.search(name)
    if forbidden is not None:
        return f"contains {forbidden.group()!r}"
    for char in name:
        kind = _INVISIBLE_CATEGORIES.get(unicodedata.category(char))
        if kind is not None:
            return f"contains the {kind} character U+{ord(char):04X}"
        if char in _BLANK_LETTERS:
            return f"contains the invisible character U+{ord(char):04X}"
    if name.startswith("-"):
        return "starts with '-'"
    if name[0].isspace() or name[-1].isspace():
        return "starts or ends with a space"
    if name.endswith("."):
        return "ends with '.'"
    if name.split(".", 1)[0].upper() in _RESERVED:
        return "is a reserved device name (CON, PRN, AUX, NUL, COM1-9, LPT1-9)"
    return None


def check_node_name(name: str) -> str:
    """``name`` when DRACOON accepts it as a room or file name; TargetPathError otherwise."""
    problem = node_name_problem(name)
    if problem is not None:
        raise TargetPathError(f"the name {shorten(name)} {problem}")
    return name


def render_target_path(template: str, *, instance: str, meeting_type: str) -> tuple[str, ...]:
    """The room names, outermost first, that ``template`` gives for an instance and meeting type.

    ``instance`` is the instance's domain, ``meeting_type`` the meeting type's name. The path
    is relative to the instance's parent room, which is not part of the result.
    """
    shown = shorten(template)
    if not template.strip():
        raise TargetPathError("the target path template is empty")
    if template.startswith("/"):
        raise TargetPathError(f"{shown}: target paths are relative to the parent room")
    values = {"instance": instance, "meetingType": meeting_type}
    names = []
    for position, segment in enumerate(template.split("/"), start=1):
        if not segment:
            raise TargetPathError(f"{shown}: segment {position} is empty")
        if segment in (".", ".."):
            raise TargetPathError(f"{shown}: segment {position} is {segment!r}")
        try:
            name = Template(segment).substitute(values)
        except KeyError as exc:
            raise TargetPathError(
                f"{shown}: unknown variable ${exc.args[0]} (known: $instance, $meetingType; "
                "write ${instance} when letters follow)"
            ) from None
        except ValueError:
            raise TargetPathError(
                f"{shown}: segment {position} has a '$' that starts no variable (write $$ for '$')"
            ) from None
        if "/" in name:
            # The template's own '/' were split off above: this one came from a value.
            raise TargetPathError(
                f"{shown}: segment {position} renders to {shorten(name)}; a substituted value "
                "contains '/' and may not add room levels"
            )
        problem = node_name_problem(name)
        if problem is not None:
            raise TargetPathError(
                f"{shown}: segment {position} renders to {shorten(name)}, which {problem}"
            )
        names.append(name)
    return tuple(names)


def check_template(template: str) -> str:
    """``template`` when it can render at all; TargetPathError for faults of its own.

    For configured templates, checked when the configuration is read: an unknown variable,
    an absolute path, ``..`` or a forbidden character in the fixed text is the operator's to
    fix, so the daemon refuses to start with it rather than failing every job later. What
    depends on the values (a meeting type named ``a/b``) can only be found per job.
    """
    render_target_path(template, instance="example.org", meeting_type="Meeting")
    return template
