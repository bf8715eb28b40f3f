"""Looking into and emptying a dead-letter queue, for ``recstore dlq list|redrive``.

SQS has no "peek": listing receives each message with a short visibility timeout and hands it
back at the end, so a listing leaves the queue as it found it (receive counts go up by one).
Message bodies carry personal data (participants' names and e-mail addresses), so a listing
shows ids, reasons and where the job came from, and bodies only when asked.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from recstore.clients.sqs import Message, SqsQueue

#: How long listed messages stay hidden while the listing runs.
LISTING_VISIBILITY = 30
#: Longest instance or meeting id shown from a body; they come from unvalidated input.
MAX_SHOWN = 80


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    reason: str
    worker: str
    receive_count: int
    instance: str
    meeting_id: str
    body: str

    @classmethod
    def of(cls, message: Message) -> DeadLetter:
        try:
            doc: Any = json.loads(message.body)
        except (ValueError, RecursionError):  # a dead letter may be anything, "[" * 200000 too
            doc = None
        attrs = message.attributes
        return cls(
            message_id=message.message_id,
            reason=attrs.get("reason", "(no reason: moved by the queue's redrive policy)"),
            worker=attrs.get("worker", ""),
            receive_count=message.receive_count,
            instance=_scalar(doc, "instance", "domain"),
            meeting_id=_scalar(doc, "meeting", "id"),
            body=message.body,
        )


def _scalar(doc: Any, section: str, name: str) -> str:
    """``doc[section][name]`` when it is a short string or number, else "".

    A dead letter is often there because its body has the wrong shape, so nothing about it
    is assumed; a long value is cut so one odd message cannot flood the listing, and control
    characters are shown as ``?``.
    """
    part = doc.get(section) if isinstance(doc, dict) else None
    value = part.get(name) if isinstance(part, dict) else None
    if isinstance(value, bool) or not isinstance(value, str | int):
        return ""
    # A tab or a line break would add columns or rows to the listing, an escape sequence
    # would talk to the terminal.
    text = "".join("?" if unicodedata.category(c) == "Cc" else c for c in str(value))
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


async def _drain(dead: SqsQueue, limit: int, visibility: int) -> list[Message]:
    seen: dict[str, Message] = {}
    while len(seen) < limit:
        batch = await dead.receive(min(10, limit - len(seen)), 1, visibility)
        fresh = [m for m in batch if m.message_id not in seen]
        if not fresh:
            break
        for message in fresh:
            seen[message.message_id] = message
    return list(seen.values())


async def list_dead_letters(dead: SqsQueue, limit: int = 1000) -> list[DeadLetter]:
    messages = await _drain(dead, limit, LISTING_VISIBILITY)
    for message in messages:
        await dead.change_visibility(message, 0)
    return [DeadLetter.of(m) for m in messages]


async def redrive(
    dead: SqsQueue,
    work: SqsQueue,
    wanted: Callable[[DeadLetter], bool] = lambda letter: True,
    limit: int = 1000,
) -> list[DeadLetter]:
    """Move the wanted messages back to the work queue (send first, then delete)."""
    moved: list[DeadLetter] = []
    for message in await _drain(dead, limit, 120):
        letter = DeadLetter.of(message)
        if wanted(letter):
            await work.send(message.body)
            await dead.delete(message)
            moved.append(letter)
        else:
            await dead.change_visibility(message, 0)
    return moved
