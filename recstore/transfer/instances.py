"""Which account and which rooms a job's recording goes to.

An instance's configuration comes from the YAML ``instances:`` section when it is there (an
operator's local override), else from the configurator. An instance known to neither is a
permanent failure for its jobs: falling back to the global ``dracoon.*`` test account would
put one customer's recordings into another's rooms. Any other failure of the configurator
(down, refusing our request, an answer that does not validate) is the configurator's to mend,
so the job is retried later rather than dead-lettered: once it is mended, the jobs go through.

Targets: the message's own ``storage.extra.dracoon.targets`` when it has any (planned when it
is decoded, :attr:`~recstore.transfer.job.TransferJob.rooms`); otherwise every ``copyTo`` of the
instance's targets whose ``meetingTypeId`` is the meeting's type or ``*any*`` (both apply). A
room that several of them name gets one file, kept as long as the longest of their expirations
asks (:func:`~recstore.transfer.rooms.merged`), so the list keeps every one of them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Protocol

from recstore.common import events
from recstore.common.errors import PermanentJobError, UnknownInstance
from recstore.settings import InstanceSettings
from recstore.transfer.rooms import Target


class InstanceConfigurationError(PermanentJobError):
    """The job's instance has no configuration, or none that serves this job.

    Its own class so the job's line carries seed 004's code for it (15013, "InstanceJobRunner
    error": the seed's runner resolved an instance's configuration before a job ran).
    """


class InstanceSource(Protocol):
    async def instance(self, domain: str, *, fresh: bool = False) -> InstanceSettings:
        """The domain's settings (asked again, not cached, when ``fresh``); UnknownInstance
        is the one failure that is final."""
        ...


class InstanceResolver:
    def __init__(
        self, configured: Mapping[str, InstanceSettings], configurator: InstanceSource | None
    ) -> None:
        self._configured = {domain.lower(): value for domain, value in configured.items()}
        self._configurator = configurator

    async def configurator_answers(self, domain: str) -> bool:
        """Whether the configurator answers for ``domain`` now (a fresh fetch, not the cache;
        "no such instance" is an answer too); False when the domain is configured locally or
        there is no configurator. Raises what the fetch raised while it does not answer."""
        if domain.lower() in self._configured or self._configurator is None:
            return False
        with contextlib.suppress(UnknownInstance):  # an answer: the service is up
            await self._configurator.instance(domain, fresh=True)
        return True

    async def resolve(self, domain: str) -> InstanceSettings:
        """The instance's settings; PermanentJobError when nobody knows the domain."""
        local = self._configured.get(domain.lower())
        if local is not None:
            return local
        if self._configurator is None:
            raise InstanceConfigurationError(
                f"instance {domain!r} has no configuration: not in `instances:` and no "
                "configurator.url is set"
            )
        try:
            answer = await self._configurator.instance(domain)
        except UnknownInstance as exc:
            raise InstanceConfigurationError(f"instance {domain!r}: {exc}") from exc
        # The YAML's passwords are kept out of log lines from the start; these arrive now.
        events.register_secrets_in(answer)
        return answer


def targets_for(
    instance: InstanceSettings,
    domain: str,
    meeting_type_id: int | None,
    meeting_type_name: str | None = None,
) -> list[Target]:
    """The instance's targets for a job whose message names none; InstanceConfigurationError
    when there are none.

    A target's ``meetingTypeId`` matches the message's ``meeting.type.id``; seed 004's own
    example message carries no id, only ``meeting.type.name``, so a target may also be keyed
    by the type's name (compared without regard to case), which every message has. ``*any*``
    matches every meeting.
    """
    # Only exact repeats are dropped: the same path with another expiration is the transfer's
    # to weigh, and dropping it here would let the first one listed shorten the other's.
    chosen: dict[Target, None] = {}
    for target in instance.recordings.dracoon.targets:
        if _matches(target.meeting_type_id, meeting_type_id, meeting_type_name):
            for copy in target.copy_to:
                chosen[Target(copy.path, copy.expiration)] = None
    if not chosen:
        which = (
            f"meeting type {meeting_type_id}"
            if meeting_type_id is not None
            else f"meeting type {meeting_type_name!r} (the message names no meeting.type.id: "
            "key targets by *any* or by the type's name)"
        )
        raise InstanceConfigurationError(
            f"instance {domain!r} has no target for {which} and the message names none"
        )
    return list(chosen)


def _matches(key: int | str, type_id: int | None, type_name: str | None) -> bool:
    if key == "*any*":
        return True
    if isinstance(key, int):
        return key == type_id
    return type_name is not None and key.casefold() == type_name.casefold()
