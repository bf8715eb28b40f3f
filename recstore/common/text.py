"""How a value from outside is quoted in an error message."""

from __future__ import annotations


def shorten(text: str, limit: int = 60) -> str:
    """``repr`` of ``text``, cut short: error messages must stay one readable line, and the
    ``repr`` shows a newline or an invisible character that a plain quote would hide."""
    return repr(text if len(text) <= limit else text[:limit] + "...")
