"""The ``workers`` section: one model per worker, each under seed 004's key names."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo

from recstore.settings.fields import LogLevel, Section, SourceEntries


class SourceSettings(Section):
    type: Literal["s3"] = Field("s3", description="Source storage; only `s3` exists.")


class DestinationSettings(Section):
    type: Literal["dracoon"] = Field("dracoon", description="Destination; only `dracoon` exists.")


#: The keys every worker that consumes an SQS work queue has (each its own default).
WaitTimeSeconds = Annotated[
    int,
    Field(
        alias="waitTimeSeconds",
        ge=1,
        le=20,
        description="SQS long-poll wait; stopping cancels an open poll at once.",
    ),
]
RetryDelay = Annotated[
    int,
    Field(
        alias="retryDelay",
        ge=1,
        le=43200,
        description="Seconds before a failed job is tried again; doubles with each further "
        "failure of the same message, up to `retryDelayMax` (the queue's redrive policy "
        "decides when it goes to the dead-letter queue).",
    ),
]


def _not_below_retry_delay(value: int, info: ValidationInfo) -> int:
    first = info.data.get("retry_delay")
    if first is not None and value < first:
        raise ValueError(f"is shorter than retryDelay ({first})")
    return value


RetryDelayMax = Annotated[
    int,
    Field(
        alias="retryDelayMax",
        ge=1,
        le=43200,
        description="Longest wait before a failed job is tried again (at least `retryDelay`).",
        validate_default=True,  # a retryDelay set above the default is caught too
    ),
    AfterValidator(_not_below_retry_delay),
]


class FileTransfererSettings(Section):
    """``workers.FileTransferer.*``: the pool that turns SQS job messages into DRACOON files."""

    enabled: bool = Field(
        True,
        description="Run the transfer pool in this daemon. Left unset with no work queue in "
        "`queues`, no DRACOON destination (`configurator.url`, `instances`, `dracoon.baseUrl`) "
        "and no other key of this section set, it stays off and the start line says so.",
    )
    count: int = Field(4, description="Transfers run at once (at least 1 when enabled).")
    report_level: LogLevel = Field(
        "info",
        alias="reportLevel",
        description="Lowest level of this worker's log lines (`error`: failures only, no "
        "per-job status lines); raises `logger.level`, never lowers it.",
    )
    queue: str = Field("recordings", description="Work queue: a key of `queues` or a queue URL.")
    dead_letter_queue: str = Field(
        "recordings-dlq",
        alias="deadLetterQueue",
        description="Dead-letter queue: a key of `queues` or a queue URL.",
    )
    visibility_timeout: int = Field(
        120,
        alias="visibilityTimeout",
        ge=10,
        le=43200,
        description="Seconds a received message stays hidden; renewed every third of it.",
    )
    wait_time_seconds: WaitTimeSeconds = 20
    retry_delay: RetryDelay = 30
    retry_delay_max: RetryDelayMax = 900
    source_buckets: SourceEntries = Field(
        None,
        alias="sourceBuckets",
        description="The S3 sources job messages may name: `bucket`, or `bucket/prefix` for "
        "keys under a prefix. Required while the FileTransferer runs (it copies and then "
        "deletes what a message names); archive.bucket and leases.bucket are never a source.",
    )
    source: SourceSettings = SourceSettings()
    destination: DestinationSettings = DestinationSettings()


class DracoonGlobalSharerSettings(Section):
    """``workers.DracoonGlobalSharer.*``: the periodic hand-out of missing file keys."""

    count: int = Field(
        1,
        ge=0,
        le=1,
        description="0 turns the sharer off; at most 1. Left unset with no DRACOON account "
        "(`dracoon.*`, `instances`), it stays off and the start line says so.",
    )
    job_delay_minutes: int = Field(
        60, alias="jobDelayMinutes", ge=1, description="Minutes between two runs."
    )


class PeriodicWorkerSettings(Section):
    """Common keys of the periodic Kaltura/VidyoReplay workers."""

    enabled: bool = Field(False, description="Run this worker in this daemon.")
    interval_minutes: int = Field(
        60, alias="intervalMinutes", ge=1, description="Minutes between two runs."
    )


class VidyoSyncSettings(PeriodicWorkerSettings):
    """``workers.VidyoSync.*``: new VidyoReplay recordings become Kaltura entries (seed 000)."""

    interval_minutes: int = Field(
        15, alias="intervalMinutes", ge=1, description="Minutes between two sync cycles."
    )
    tag: str = Field(
        "vidyoreplay",
        min_length=1,
        description="Kaltura tag of every imported entry; the recording's own tags follow it.",
    )
    categories: list[str] = Field(
        default_factory=list,
        description="Kaltura categories of every imported entry (full names, `>` between levels).",
    )
    user_id: str | None = Field(
        None,
        alias="userId",
        description="Kaltura owner of the imported entries; unset: the recording's VidyoReplay "
        "user name.",
    )
    batch_size: int = Field(
        50,
        alias="batchSize",
        ge=1,
        le=200,
        description="Recordings per Kaltura multirequest (up to three calls each).",
    )
    metadata: bool = Field(
        True,
        description="Keep the recording's VidyoReplay fields as custom metadata on its entry.",
    )
    metadata_profile_id: int | None = Field(
        None,
        alias="metadataProfileId",
        description="Id of the custom metadata profile; unset: looked up by its system name "
        "(`recstore vidyo setup-metadata --write` fills this in).",
    )
    metadata_profile_system_name: str = Field(
        "vidyoreplaymetadata00",
        alias="metadataProfileSystemName",
        min_length=1,
        description="System name of the custom metadata profile.",
    )
    import_after_id: int | None = Field(
        None,
        alias="importAfterId",
        ge=0,
        description="Recordings of this id or lower are never imported (entries that exist are "
        "still completed): where seed 000 left a recording out on purpose, its last synced id "
        "(docs/migration.md).",
    )
    fetch_auth: Literal["header", "url", "none"] = Field(
        "header",
        alias="fetchAuth",
        description="How Kaltura logs in to VidyoReplay to pull a recording: `header` (Basic "
        "auth in the URL resource's `urlHeaders`), `url` (credentials in the URL, for Kaltura "
        "servers without `urlHeaders`; never logged) or `none` (links need no login).",
    )


class ArchiveWorkerSettings(PeriodicWorkerSettings):
    """Archiver and Restorer: dry run unless ``apply`` says otherwise."""

    interval_minutes: int = Field(
        1440, alias="intervalMinutes", ge=1, description="Minutes between two runs."
    )
    apply: bool = Field(False, description="Change things; false logs what would be done.")
    max_entries: int | None = Field(
        None,
        alias="maxEntries",
        ge=1,
        description="Plan at most this many entries per action and run (unset: all).",
    )


class ArchiverSettings(ArchiveWorkerSettings):
    """``workers.Archiver.*``: plans s3copy, then replace-video, for entries not played lately."""

    unplayed_for: float = Field(
        2.0,
        alias="unplayedFor",
        gt=0,
        description="Archive entries not played in this many years (never played counts).",
    )


class RestorerSettings(ArchiveWorkerSettings):
    """``workers.Restorer.*``: plans restores of placeholder entries that were played again."""

    played_within: float = Field(
        1.0,
        alias="playedWithin",
        gt=0,
        description="Restore placeholder entries played in this many years.",
    )


class ArchiveActionsSettings(Section):
    """``workers.ArchiveActions.*``: the pool that runs the planned per-entry archive actions."""

    enabled: bool = Field(False, description="Consume the archive queue in this daemon.")
    count: int = Field(2, ge=1, le=64, description="Entries worked on at once.")
    visibility_timeout: int = Field(
        300,
        alias="visibilityTimeout",
        ge=10,
        le=43200,
        description="Seconds a received message stays hidden; renewed every third of it.",
    )
    wait_time_seconds: WaitTimeSeconds = 20
    retry_delay: RetryDelay = 30
    retry_delay_max: RetryDelayMax = 900


class WorkersSettings(Section):
    file_transferer: FileTransfererSettings = Field(
        FileTransfererSettings(), alias="FileTransferer"
    )
    dracoon_global_sharer: DracoonGlobalSharerSettings = Field(
        DracoonGlobalSharerSettings(), alias="DracoonGlobalSharer"
    )
    vidyo_sync: VidyoSyncSettings = Field(VidyoSyncSettings(), alias="VidyoSync")
    archiver: ArchiverSettings = Field(ArchiverSettings(), alias="Archiver")
    restorer: RestorerSettings = Field(RestorerSettings(interval_minutes=60), alias="Restorer")
    archive_actions: ArchiveActionsSettings = Field(
        ArchiveActionsSettings(), alias="ArchiveActions"
    )
