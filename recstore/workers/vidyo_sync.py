"""VidyoSync: new VidyoReplay recordings become Kaltura entries, every ``intervalMinutes``.

One cycle (seed 000, done again without its flaws):

1. Resolve the custom metadata profile (``metadataProfileId``, else by system name) and check
   that its XSD takes what recstore writes; a profile that would refuse it is a configuration
   error (15002, once per verdict) and the cycle imports without metadata, which a later
   cycle adds once the profile is fixed.
2. Page through every VidyoReplay record (oldest first) and, page by page, look the GUIDs up
   in Kaltura by reference id; :func:`recstore.sync.plan.plan_page` decides what each
   recording still needs (a new entry with content and metadata, or only the step an earlier
   cycle failed to do).
3. Push the work in multirequests of ``batchSize`` recordings, check every element, and log
   the seed's lines as events: the cycle's start and counts (15025), each recording's SUCCESS
   steps (15026), each ERROR (15027).

A failed recording is simply found again, incomplete, by the next cycle. Multirequests are
sent once and never retried in place: a request that timed out may have been carried out,
and only the next cycle's lookup can tell without importing twice (Kaltura's search index
follows a write within seconds; cycles are minutes apart). A cycle fails (and the
worker reports unhealthy until one succeeds) when VidyoReplay or Kaltura cannot be read or a
whole batch could not be sent; single recordings that fail do not fail the cycle.

Kaltura pulls each file from VidyoReplay itself, so it needs VidyoReplay's login: by default
as an ``Authorization`` header in ``KalturaUrlResource.urlHeaders``, never inside a logged
URL. With several replicas the cycle runs in one of them, under a lease.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import time
import urllib.parse
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from recstore.clients.kaltura import REMOTE as KALTURA
from recstore.clients.kaltura import KalturaClient, KalturaError
from recstore.clients.kaltura_types import KalturaMediaEntry, KalturaMetadata
from recstore.clients.vidyo import Record, VidyoClient, strip_credentials
from recstore.common import events, metrics
from recstore.common.errors import ConfigError, RecstoreError
from recstore.common.retry import RetryPolicy
from recstore.settings import Settings, VidyoSyncSettings
from recstore.sync.metadata import PROFILE_NAME, profile_problems, profile_xsd
from recstore.sync.plan import (
    ALL_DISPLAY_IN_SEARCH,
    ALL_MODERATION_STATUSES,
    ALL_STATUSES,
    KalturaEntry,
    Outcome,
    Step,
    SyncRules,
    Work,
    batches,
    build_calls,
    by_sort_value,
    choose_entry,
    chunks,
    group_by_reference,
    plan_page,
    read_outcomes,
    url_resource,
    usable_guid,
)
from recstore.workers.base import REQUIRED, Problem, WorkerHealth, WorkerSpec
from recstore.workers.periodic import PeriodicWorker, job_lease
from recstore.workers.resources import Resources, opened

log = logging.getLogger(__name__)
NAME = "vidyo_sync"
#: Rows per Kaltura lookup page (the most Kaltura gives).
LOOKUP_PAGE = 500
#: Multirequests that create entries are sent once (see the module docstring).
SEND_ONCE = RetryPolicy(attempts=1)


@dataclass
class CycleReport:
    """What one cycle saw and did; the CLI prints it, the status page shows the counts."""

    dry_run: bool = False
    profile_id: int | None = None
    listed: int = 0
    complete: int = 0
    deleted: int = 0
    #: Recordings found by id and tag on an entry without reference id (seed 000's marks).
    by_id: int = 0
    held_back: int = 0
    repeated: int = 0
    unusable: int = 0
    new: int = 0
    repairs: int = 0
    imported: int = 0
    repaired: int = 0
    failed: int = 0
    failed_batches: int = 0
    seconds: float = 0.0
    planned: list[Work] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "listed": self.listed,
            "in_kaltura": self.complete,
            "deleted_in_kaltura": self.deleted,
            "found_by_id": self.by_id,
            "held_back": self.held_back,
            "unusable": self.unusable,
            "new": self.new,
            "repairs": self.repairs,
            "imported": self.imported,
            "repaired": self.repaired,
            "failed": self.failed,
        }


def _extra_counts(report: CycleReport) -> dict[str, Any]:
    """The counts the finishing line does not already say in words."""
    said = ("imported", "repaired", "failed")
    return {k: v for k, v in report.counts().items() if k not in said}


def _require(settings: Settings) -> None:
    """Raise :class:`ConfigError` naming every key the sync cannot do without (the worker's
    own requirements, for the one-shot ``vidyo`` commands that run it outside the daemon)."""
    missing = [key for key, _ in _requires(settings)]
    if missing:
        raise ConfigError([(key, "is required for the VidyoReplay sync") for key in missing])


def _with_credentials(url: str, user: str, password: str) -> str:
    parts = urllib.parse.urlsplit(url)
    login = f"{urllib.parse.quote(user, safe='')}:{urllib.parse.quote(password, safe='')}"
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{login}@{parts.netloc}"))


class VidyoSyncService:
    """Both ends of the sync and its rules; :meth:`cycle` runs one cycle."""

    def __init__(
        self,
        config: VidyoSyncSettings,
        vidyo: VidyoClient,
        kaltura: KalturaClient,
        writer: KalturaClient,
        *,
        login: tuple[str, str],
    ) -> None:
        self.config = config
        self.vidyo = vidyo
        self.kaltura = kaltura
        self.writer = writer
        #: The last profile verdict reported (id, problems), so a bad profile is told once.
        self._profile_verdict: tuple[int | None, tuple[str, ...]] | None = None
        user, password = login
        self._headers: list[str] = []
        self._url_login: tuple[str, str] | None = None
        if config.fetch_auth == "header":
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            events.register_secret(token)
            self._headers = [f"Authorization: Basic {token}"]
        elif config.fetch_auth == "url":
            events.register_secret(urllib.parse.quote(password, safe=""))
            self._url_login = (user, password)

    # -- one cycle -------------------------------------------------------------------------

    async def cycle(self, dry_run: bool = False) -> CycleReport:
        """Find what Kaltura lacks and (unless ``dry_run``) send it; raise if a remote failed."""
        started = time.monotonic()
        report = CycleReport(dry_run=dry_run)
        events.emit(
            log,
            events.VIDYO_SYNC_STATUS,
            "cycle started%s",
            " (dry run)" if dry_run else "",
            vidyo=self.vidyo.server,
        )
        try:
            report.profile_id = await self.profile_id()
            rules = self._rules(report.profile_id)
            work = await self._scan(rules, report)
            events.emit(
                log,
                events.VIDYO_SYNC_STATUS,
                "syncing %d new recording(s), completing %d",
                report.new,
                report.repairs,
                listed=report.listed,
                in_kaltura=report.complete,
                deleted_in_kaltura=report.deleted,
            )
            if dry_run:
                self._tell_plan(work)
            else:
                await self._push(work, rules, report)
        except RecstoreError as exc:
            report.seconds = round(time.monotonic() - started, 3)
            events.emit(log, events.VIDYO_SYNC_ERROR, "cycle failed: %s", exc)
            raise
        report.seconds = round(time.monotonic() - started, 3)
        events.emit(
            log,
            events.VIDYO_SYNC_STATUS,
            "cycle finished: %d imported, %d completed, %d failed%s",
            report.imported,
            report.repaired,
            report.failed,
            " (dry run)" if dry_run else "",
            seconds=report.seconds,
            **_extra_counts(report),
        )
        if report.failed_batches:
            raise RecstoreError(
                f"{report.failed_batches} multirequest batch(es) could not be sent to Kaltura"
            )
        return report

    def _rules(self, profile_id: int | None) -> SyncRules:
        config = self.config
        return SyncRules(
            tag=config.tag,
            categories=tuple(config.categories),
            user_id=config.user_id,
            profile_id=profile_id,
            import_after=config.import_after_id,
        )

    async def profile_id(self) -> int | None:
        """The metadata profile to write, or None: metadata off, no such profile yet, or a
        profile that would refuse what recstore writes (reported as a configuration error)."""
        config = self.config
        if not config.metadata:
            return None
        wanted = config.metadata_profile_id
        if wanted is None:
            found = await self.kaltura.metadata_profiles(config.metadata_profile_system_name)
            if not found:
                events.emit(
                    log,
                    events.VIDYO_SYNC_STATUS,
                    "no metadata profile %s: importing without custom metadata "
                    "(run `recstore vidyo setup-metadata`)",
                    config.metadata_profile_system_name,
                    level=logging.WARNING,
                )
                return None
        else:
            by_id = await self.kaltura.metadata_profile(wanted)
            found = [by_id] if by_id is not None else []
        profile_id = found[0].id if found else wanted
        # Every KalturaMetadataProfile carries its XSD (kaltura/server,
        # plugins/metadata/lib/KalturaMetadataProfile.php, fromObject), list answers included.
        if not found:
            problems = ["Kaltura knows no metadata profile of that id"]
        else:
            xsd = found[0].xsd
            problems = profile_problems(str(xsd)) if xsd else []
        self._tell_profile(profile_id, problems)
        return None if problems else profile_id

    def _tell_profile(self, profile_id: int | None, problems: list[str]) -> None:
        """A profile that would refuse recstore's metadata is a configuration error (15002):
        told when first seen and whenever the verdict changes, not by each failed write."""
        verdict = (profile_id, tuple(problems))
        if verdict == self._profile_verdict:
            return
        first = self._profile_verdict is None
        self._profile_verdict = verdict
        config = self.config
        key = (
            "workers.VidyoSync.metadataProfileId"
            if config.metadata_profile_id is not None
            else "workers.VidyoSync.metadataProfileSystemName"
        )
        if problems:
            events.emit(
                log,
                events.CONFIG_LOAD_FAILED,
                "%s: metadata profile %s (id %s) cannot take recstore's metadata: %s; importing "
                "without custom metadata until it is fixed (add the missing fields, or point %s "
                "at a profile made by `recstore vidyo setup-metadata`)",
                key,
                config.metadata_profile_system_name,
                profile_id,
                "; ".join(problems),
                key,
                profile_id=profile_id,
            )
        elif not first:
            events.emit(
                log,
                events.VIDYO_SYNC_STATUS,
                "metadata profile %s takes recstore's metadata again",
                profile_id,
                profile_id=profile_id,
            )

    async def _scan(self, rules: SyncRules, report: CycleReport) -> list[Work]:
        work: list[Work] = []
        seen: set[str] = set()
        async for records in self.vidyo.pages():
            report.listed += len(records)
            guids = sorted({r.guid for r in records if usable_guid(r.guid)})
            found = await self._lookup(guids)
            lost = [r for r in records if usable_guid(r.guid) and r.guid not in found]
            if lost:
                recovered = await self._lookup_by_id(lost)
                report.by_id += len(recovered)
                found = {**found, **recovered}
            alive = [e for e in (choose_entry(v) for v in found.values()) if e is not None]
            with_metadata = await self._with_metadata(rules.profile_id, [e.id for e in alive])
            plan = plan_page(records, found, with_metadata, rules, seen)
            report.complete += plan.complete
            report.deleted += plan.deleted
            report.held_back += plan.held_back
            report.repeated += plan.repeated
            report.unusable += len(plan.unusable)
            for record, reason in plan.unusable:
                events.emit(
                    log,
                    events.VIDYO_SYNC_ERROR,
                    "ERROR recording %d cannot be imported: %s",
                    record.id,
                    reason,
                    recording=record.id,
                    guid=record.guid,
                )
            for item in plan.work:
                if item.is_new:
                    report.new += 1
                else:
                    report.repairs += 1
            work.extend(plan.work)
        report.planned = work
        return work

    async def _lookup(self, guids: Sequence[str]) -> dict[str, list[KalturaEntry]]:
        """Kaltura's entries for these reference ids, whatever their status, tag or category.

        Every status, moderation status and display state is named, the recycle bin
        included: the server's default hides all but READY, moderated and recycled entries
        (``KalturaBaseEntryFilter::prepareEntriesCriteriaFilter``), which would be imported
        again. The client splits the ``referenceIdIn`` list into parts the server reads whole.
        """
        if not guids:
            return {}
        objects = await self.kaltura.list_all(
            "media",
            {
                "objectType": "KalturaMediaEntryFilter",
                "referenceIdIn": ",".join(guids),
                "statusIn": ALL_STATUSES,
                "moderationStatusIn": ALL_MODERATION_STATUSES,
                "displayInSearchIn": ALL_DISPLAY_IN_SEARCH,
            },
            KalturaMediaEntry,
            page_size=LOOKUP_PAGE,
        )
        wanted = set(guids)
        return {g: e for g, e in group_by_reference(objects).items() if g in wanted}

    async def _lookup_by_id(self, records: Sequence[Record]) -> dict[str, list[KalturaEntry]]:
        """Entries without reference id that carry these recordings' ids and the sync tag.

        Kaltura filters ``partnerSortValue`` by range only (``KalturaBaseEntryBaseFilter`` has
        no ``...In`` for it; the server drops fields a filter lacks), so each chunk of ids asks
        for its range and :func:`by_sort_value` keeps the exact matches.
        """
        objects: list[KalturaMediaEntry] = []
        for part in chunks(sorted({r.id for r in records})):
            objects += await self.kaltura.list_all(
                "media",
                {
                    "objectType": "KalturaMediaEntryFilter",
                    "partnerSortValueGreaterThanOrEqual": part[0],
                    "partnerSortValueLessThanOrEqual": part[-1],
                    "tagsLike": self.config.tag,
                    "statusIn": ALL_STATUSES,
                    "moderationStatusIn": ALL_MODERATION_STATUSES,
                    "displayInSearchIn": ALL_DISPLAY_IN_SEARCH,
                },
                KalturaMediaEntry,
                page_size=LOOKUP_PAGE,
            )
        found = by_sort_value(records, objects)
        for record in records:
            for entry in found.get(record.guid, ()):
                events.emit(
                    log,
                    events.VIDYO_SYNC_STATUS,
                    "recording %d is entry %s (its id as partnerSortValue, tag %s), "
                    "although the entry has no reference id",
                    record.id,
                    entry.id,
                    self.config.tag,
                    recording=record.id,
                    guid=record.guid,
                    entry_id=entry.id,
                )
        return found

    async def _with_metadata(self, profile_id: int | None, entry_ids: Sequence[str]) -> set[str]:
        """The entries among ``entry_ids`` that already hold the profile's metadata."""
        if profile_id is None or not entry_ids:
            return set()
        rows = await self.kaltura.list_all(
            "metadata_metadata",
            {
                "objectType": "KalturaMetadataFilter",
                "metadataProfileIdEqual": profile_id,
                "metadataObjectTypeEqual": 1,
                "objectIdIn": ",".join(entry_ids),
            },
            KalturaMetadata,
            page_size=LOOKUP_PAGE,
        )
        return {str(row.object_id) for row in rows}

    def _tell_plan(self, work: Sequence[Work]) -> None:
        for item in work:
            record = item.record
            events.emit(
                log,
                events.VIDYO_SYNC_RECORDING,
                "DRY RUN would %s recording %d: %s",
                "import" if item.is_new else "complete",
                record.id,
                ", ".join(item.steps),
                recording=record.id,
                guid=record.guid,
                entry_id=item.entry_id,
            )

    async def _push(self, work: Sequence[Work], rules: SyncRules, report: CycleReport) -> None:
        for batch in batches(work, self.config.batch_size):
            calls, slots = build_calls(batch, rules, self.resource)
            try:
                results = await self.writer.multirequest(calls)
            except KalturaError as exc:
                report.failed_batches += 1
                report.failed += len(batch)
                metrics.VIDYO_RECORDINGS.labels(outcome="failed").inc(len(batch))
                events.emit(
                    log,
                    events.VIDYO_SYNC_ERROR,
                    "ERROR failed to push a batch of %d recording(s) using multirequest: %s "
                    "(the next cycle finds out what Kaltura did)",
                    len(batch),
                    exc,
                    recordings=",".join(str(w.record.id) for w in batch),
                )
                continue
            for outcome in read_outcomes(slots, results):
                self._tell(outcome, report)

    def resource(self, record: Record) -> dict[str, Any]:
        """The ``KalturaUrlResource`` from which Kaltura pulls the recording."""
        url = record.file_link
        if self._url_login is not None:
            url = _with_credentials(url, *self._url_login)
        return url_resource(url, self._headers)

    def _tell(self, outcome: Outcome, report: CycleReport) -> None:
        report.outcomes.append(outcome)
        record = outcome.work.record
        fields: dict[str, Any] = {
            "recording": record.id,
            "guid": record.guid,
            "entry_id": outcome.entry_id,
        }
        for step in outcome.done:
            if step is Step.ENTRY:
                message = "SUCCESS creating new Kaltura entry %s of recording %d"
                args: tuple[object, ...] = (outcome.entry_id, record.id)
            elif step in (Step.CONTENT, Step.CONTENT_AGAIN):
                message = "SUCCESS importing VidyoReplay recording %d from %s to Kaltura entry %s"
                args = (record.id, strip_credentials(record.file_link), outcome.entry_id)
            else:
                message = "SUCCESS synced custom metadata fields to entry %s"
                args = (outcome.entry_id,)
            events.emit(log, events.VIDYO_SYNC_RECORDING, message, *args, **fields)
        if outcome.failure is not None:
            step, reason = outcome.failure
            report.failed += 1
            metrics.VIDYO_RECORDINGS.labels(outcome="failed").inc()
            events.emit(
                log,
                events.VIDYO_SYNC_ERROR,
                "ERROR recording %d: %s failed: %s (retried next cycle)",
                record.id,
                step,
                reason,
                **fields,
            )
            return
        if outcome.work.is_new:
            report.imported += 1
            metrics.VIDYO_RECORDINGS.labels(outcome="imported").inc()
        else:
            report.repaired += 1
            metrics.VIDYO_RECORDINGS.labels(outcome="repaired").inc()
        events.emit(
            log,
            events.VIDYO_SYNC_RECORDING,
            "SUCCESS synchronized recording guid %s",
            record.guid,
            **fields,
        )


@asynccontextmanager
async def open_sync(
    settings: Settings, policy: RetryPolicy | None = None, resources: Resources | None = None
) -> AsyncIterator[VidyoSyncService]:
    """The sync's clients, Kaltura's on the session of ``resources`` (the daemon's, when
    given); :class:`ConfigError` names what is missing.

    ``policy`` is how the reading calls retry (default: the retry helper's).
    """
    _require(settings)
    vidyo = settings.vidyo
    assert vidyo.user is not None
    assert vidyo.password is not None
    async with opened(resources, settings) as resources, VidyoClient(vidyo, policy) as client:
        http = await resources.http(KALTURA)
        yield VidyoSyncService(
            settings.workers.vidyo_sync,
            client,
            KalturaClient(settings.kaltura, http, policy),
            KalturaClient(settings.kaltura, http, policy=SEND_ONCE),
            login=(vidyo.user, vidyo.password.get_secret_value()),
        )


async def existing_profile_problems(kaltura: KalturaClient, system_name: str) -> list[str]:
    """Why the profile of that system name would refuse recstore's metadata ([] if it would
    not, or if Kaltura does not show its XSD): seed 000's ``setupMetadata.php`` reused an
    existing profile as it stood, and so does :func:`setup_metadata`."""
    found = await kaltura.metadata_profiles(system_name)
    xsd = found[0].xsd if found else None
    return profile_problems(str(xsd)) if xsd else []


async def setup_metadata(kaltura: KalturaClient, system_name: str) -> tuple[int, bool]:
    """The profile's id, creating it from the shipped XSD when missing; ``(id, created)``."""
    found = await kaltura.metadata_profiles(system_name)
    if found:
        return found[0].id, False
    profile = await kaltura.add_metadata_profile(PROFILE_NAME, system_name, profile_xsd())
    return profile.id, True


_PROFILE_LINE = re.compile(
    r"^(?P<key>[ \t]*metadataProfileId:)[ \t]*(?P<value>[^#\n]*?)(?P<tail>[ \t]*(#.*)?)$", re.M
)


def write_profile_id(path: Path, profile_id: int) -> bool:
    """Set ``workers.VidyoSync.metadataProfileId`` in the YAML file at ``path``.

    An existing ``metadataProfileId:`` line is edited in place, so comments and layout stay;
    otherwise the file is rewritten from its parsed form (comments are then lost). Returns
    whether the file kept its layout.
    """
    text = path.read_text(encoding="utf-8")
    matches = list(_PROFILE_LINE.finditer(text))
    if len(matches) == 1:
        match = matches[0]
        line = f"{match['key']} {profile_id}{match['tail']}"
        edited = text[: match.start()] + line + text[match.end() :]
        if _profile_id_in(edited) == profile_id:
            path.write_text(edited, encoding="utf-8")
            return True
    doc = yaml.safe_load(text) or {}
    if not isinstance(doc, dict):
        raise ConfigError([("config", f"{path} must hold a mapping of sections")])
    workers = doc.setdefault("workers", {})
    sync = workers.setdefault("VidyoSync", {}) if isinstance(workers, dict) else None
    if not isinstance(sync, dict):
        raise ConfigError([("workers.VidyoSync", f"{path} holds no mapping there")])
    sync["metadataProfileId"] = profile_id
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return False


def _profile_id_in(text: str) -> object:
    try:
        doc = yaml.safe_load(text)
        return doc["workers"]["VidyoSync"]["metadataProfileId"]
    except (yaml.YAMLError, KeyError, TypeError):
        return None


class VidyoSync:
    """The periodic worker, with its lease when leases are on."""

    name = NAME

    def __init__(
        self,
        settings: Settings,
        resources: Resources | None = None,
        interval: float | None = None,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.settings = settings
        self.resources = resources
        self.policy = policy
        config = settings.workers.vidyo_sync
        #: Seconds between cycles; ``intervalMinutes`` unless a test asks for less.
        self.interval = interval if interval is not None else config.interval_minutes * 60.0
        self.health = WorkerHealth()
        self.periodic: PeriodicWorker | None = None
        self.last_report: CycleReport | None = None

    def status(self) -> dict[str, object]:
        extra: dict[str, object] = {}
        if self.last_report is not None:
            extra["last_cycle"] = self.last_report.counts()
        if self.periodic is not None:
            extra.update(self.periodic.status())
        return extra

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.settings
        async with (
            opened(self.resources, settings) as resources,
            open_sync(settings, self.policy, resources) as service,
        ):
            await self._check_profile(service)
            lease = await job_lease(settings, NAME, resources)

            async def run_once() -> None:
                self.last_report = await service.cycle()

            self.periodic = PeriodicWorker(NAME, self.interval, run_once, lease)
            self.periodic.health = self.health
            await self.periodic.run(stop)

    @staticmethod
    async def _check_profile(service: VidyoSyncService) -> None:
        """Check the metadata profile at start, in every replica, whichever runs the cycles: a
        profile that would refuse recstore's metadata is reported now (15002). Kaltura out of
        reach is left to the cycle, which reports it."""
        try:
            await service.profile_id()
        except RecstoreError as exc:
            log.debug("metadata profile not checked at start: %s", exc)


def _requires(settings: Settings) -> list[Problem]:
    """Both ends of the sync."""
    vidyo, kaltura = settings.vidyo, settings.kaltura
    return [
        (key, REQUIRED)
        for key, value in (
            ("vidyo.url", vidyo.url),
            ("vidyo.user", vidyo.user),
            ("vidyo.password", vidyo.password),
            ("kaltura.serviceUrl", kaltura.service_url),
            ("kaltura.partnerId", kaltura.partner_id),
            ("kaltura.adminSecret", kaltura.admin_secret),
        )
        if value is None or value == ""
    ]


SPEC = WorkerSpec(
    name="VidyoSync",
    section="vidyo_sync",
    build=VidyoSync,
    singleton=True,
    reaches=lambda settings: ["VidyoReplay", "Kaltura"],
    requires=_requires,
)
