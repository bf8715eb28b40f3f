"""The DRACOON upload channels a job has open, recorded in S3 while they are open.

DRACOON lists nobody's open upload channels, and a killed upload leaves its channel open (and
its parts stored) until the server expires it. So each channel a job opens is recorded under
``<leases.prefix>uploads/<job>.json`` in the lease bucket as it opens and dropped as it closes
(cancelled, or its parts handed over for completion). The job's next attempt, on whichever
replica SQS gives it to, owns the job: it cancels what the record still lists, left by an
attempt that died. Recording is best effort: when S3 refuses, the channel is left to
DRACOON's expiry, as it was before.

The record is read once, at the job's start (:meth:`ChannelLog.left_open`); each change after
that writes what the job knows the record holds, without reading it again: one job runs its
uploads one after the other, and only this attempt writes the record while it owns the job
(reading it back before each write cost two S3 requests per upload, a third of a short job's
S3 requests).

An upload of at most one chunk (``s3.chunkSize``, 20 MB by default: most meetings) is not
recorded. Its channel is open only while its one or two parts upload, and a kill then leaves
at most that chunk to DRACOON's expiry; recording it cost two S3 requests (the record's write
and its removal) of a short recording's fifteen.

A job's first delivery reads nothing at its start (:meth:`ChannelLog.first_attempt`): no
attempt of its message came before. Its first write creates the record only where none exists
(``If-None-Match``); where one does, another message of the same job (a producer's re-send)
had an attempt that died, whose channels are cancelled then, before the record is written.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable

from recstore.clients.s3 import S3Store
from recstore.common import events

log = logging.getLogger(__name__)


class ChannelLog:
    """The record of one job's open upload channels (upload ids)."""

    def __init__(
        self,
        store: S3Store,
        bucket: str,
        prefix: str,
        job_id: str,
        cancel: Callable[[str], Awaitable[None]],
        unrecorded_up_to: int = 0,
    ) -> None:
        """``unrecorded_up_to``: the size in bytes up to which an upload's channel is not
        recorded (the chunk size; 0: every channel is)."""
        self._store = store
        self._unrecorded_up_to = unrecorded_up_to
        self._bucket = bucket
        self._cancel = cancel
        digest = hashlib.sha256(job_id.encode()).hexdigest()[:32]
        self.key = f"{prefix}uploads/{digest}.json"
        #: What the record holds, as this attempt last read or wrote it (None: not read yet).
        self._known: list[str] | None = None
        #: The record is created by the next write, unless one exists (a first delivery).
        self._create = False

    async def cancel_left_open(self) -> int:
        """Cancel the channels an earlier attempt left open, and forget them; how many.
        This attempt owns the job now."""
        left = await self.left_open()
        for upload_id in left:
            await self._cancel(upload_id)
        if left:
            await self.forget()
            events.emit(
                log,
                events.TRANSFER_STATUS,
                "cancelled %d upload channel(s) an earlier attempt left open",
                len(left),
            )
        return len(left)

    def first_attempt(self) -> None:
        """The job's message comes for the first time: nothing is read now (see the module
        docstring); the first record written is created only where none exists."""
        self._known, self._create = [], True

    async def left_open(self) -> list[str]:
        """The channels an earlier attempt of the job recorded and never closed."""
        self._known = await self._read()
        return list(self._known)

    async def _read(self) -> list[str]:
        try:
            found = await self._store.get_small(self._bucket, self.key)
        except Exception as exc:
            events.emit(log, events.STORAGE_ERROR, "open upload record unreadable: %s", exc)
            return []
        if found is None:
            return []
        try:
            ids = json.loads(found[0])
        except ValueError:
            return []
        return [str(i) for i in ids] if isinstance(ids, list) else []

    async def _held(self) -> list[str]:
        return list(self._known) if self._known is not None else await self.left_open()

    async def opened(self, upload_id: str, size: int | None = None) -> None:
        if size is not None and size <= self._unrecorded_up_to:
            return  # a small upload's channel is left out (see the module docstring)
        await self._write([*await self._held(), upload_id])

    async def closed(self, upload_id: str) -> None:
        held = await self._held()
        if upload_id in held:  # else never recorded: nothing to write
            await self._write([i for i in held if i != upload_id])

    async def forget(self) -> None:
        await self._write([])

    async def _write(self, ids: list[str]) -> None:
        if self._create and ids:
            self._create = False
            try:
                data = json.dumps(ids).encode()
                created = (
                    await self._store.put_small(self._bucket, self.key, data, if_none_match=True)
                    is not None
                )
            except Exception as exc:  # as below: the channel is left to DRACOON's expiry
                events.emit(log, events.STORAGE_ERROR, "open upload record not written: %s", exc)
                created = True
            if created:
                self._known = ids
                return
            # A record exists: a re-sent job's attempt died with channels open.
            await self.cancel_left_open()
        # Known even when the write fails: the next change writes the record whole again.
        self._known = ids
        try:
            if ids:
                await self._store.put_small(self._bucket, self.key, json.dumps(ids).encode())
            else:
                await self._store.delete(self._bucket, self.key)
        except Exception as exc:  # the channel is left to DRACOON's expiry, as before
            events.emit(log, events.STORAGE_ERROR, "open upload record not written: %s", exc)
