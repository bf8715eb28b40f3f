"""Typed settings: YAML, then environment overrides, then ``*_FILE`` secrets, validated once.

Why this shape:

* The YAML keys are seed 004's (``workers.FileTransferer.count``, ``s3.chunkSize``,
  ``dracoon.encryptionPassword`` ...) so an operator's existing files and habits carry over.
* Any key can be overridden from the environment as ``RECSTORE_<PATH>``, path segments joined
  by ``__`` and matched without regard to case: ``RECSTORE_WORKERS__FILETRANSFERER__COUNT=8``,
  ``RECSTORE_DRACOON__PASSWORD=...``. A ``RECSTORE_`` variable that names no key is an error,
  not silently ignored (except the few in :data:`RESERVED_ENV`).
* Any value can come from a file, for container secrets: ``password_FILE: /run/secrets/pw`` in
  the YAML, or ``RECSTORE_DRACOON__PASSWORD_FILE=/run/secrets/pw`` in the environment. One
  trailing newline is stripped.
* Unknown keys are errors (``extra="forbid"``): a misspelled key must not fall back to a default.
* Every problem is reported at once as ``(key, message)`` pairs in a :class:`ConfigError`; the
  CLI prints one line per problem and exits 2.
* Secrets are :class:`pydantic.SecretStr`: they print as ``**********`` in logs, errors,
  reprs and ``recstore config show``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from recstore.errors import ConfigError
from recstore.transfer.expiration import parse_expiration
from recstore.transfer.paths import check_template
from recstore.transfer.sources import SOURCE_BUCKETS_KEY, parse_rules
from recstore.units import parse_duration, parse_size

ENV_PREFIX = "RECSTORE_"
FILE_SUFFIX = "_FILE"
#: Environment variables with the prefix that are not configuration overrides.
RESERVED_ENV = frozenset(
    {"RECSTORE_CONFIG", "RECSTORE_CONFIG_S3_URI", "RECSTORE_CONFIG_DIR", "RECSTORE_WORKERS"}
)

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
_REGION = re.compile(r"(?![0-9]+$)(?!-)[a-zA-Z0-9-]{1,63}(?<!-)")


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


class _Section(BaseModel):
    """Strict, immutable base: unknown keys are errors, YAML keys are the aliases."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class LoggerSettings(_Section):
    """``logger.*``: how log lines look. Every line carries its event code either way."""

    level: LogLevel = Field("info", description="Lowest level written.")
    format: Literal["text", "json"] = Field(
        "text", description="`text` for a terminal or journald, `json` for log shippers."
    )


class ConfiguratorSettings(_Section):
    """``configurator.*``: where per-instance configuration comes from when not in YAML."""

    url: str | None = Field(
        None, description="Base URL of the configurator service; unset: use `instances:`."
    )
    cache_ttl: Duration = Field(
        300.0, alias="cacheTtl", description="How long an instance's answer is reused."
    )
    timeout: Duration = Field(10.0, description="Timeout of one configurator request.")


class AwsSettings(_Section):
    """``aws.*``: region, endpoints (for S3/SQS-compatible services) and optional keys.

    Without keys the standard AWS chain applies (environment, profile, instance or task role).
    """

    region: str = Field("eu-central-1", description="AWS region of the bucket(s) and queues.")

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        """botocore's rule for a region name (a host label, not all digits), checked here so
        every command, not only the daemon, names the key instead of failing in botocore."""
        if not _REGION.fullmatch(value):
            raise ValueError(
                "is not an AWS region name (letters, digits and '-', like eu-central-1)"
            )
        return value

    endpoint_url: str | None = Field(
        None, alias="endpointUrl", description="One endpoint for S3 and SQS (dev stack, MinIO)."
    )
    s3_endpoint_url: str | None = Field(
        None, alias="s3EndpointUrl", description="S3 endpoint; overrides `endpointUrl`."
    )
    sqs_endpoint_url: str | None = Field(
        None, alias="sqsEndpointUrl", description="SQS endpoint; overrides `endpointUrl`."
    )
    access_key_id: str | None = Field(None, alias="accessKeyId", description="Access key id.")
    secret_access_key: SecretStr | None = Field(
        None, alias="secretAccessKey", description="Secret access key (secret)."
    )
    ca_bundle: Path | None = Field(
        None,
        alias="caBundle",
        description="PEM file of the CA(s) to trust for https S3 and SQS endpoints, instead of "
        "botocore's bundle (as `AWS_CA_BUNDLE`); for a private CA.",
    )


class SourceSettings(_Section):
    type: Literal["s3"] = Field("s3", description="Source storage; only `s3` exists.")


class DestinationSettings(_Section):
    type: Literal["dracoon"] = Field("dracoon", description="Destination; only `dracoon` exists.")


class FileTransfererSettings(_Section):
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
    wait_time_seconds: int = Field(
        20,
        alias="waitTimeSeconds",
        ge=1,
        le=20,
        description="SQS long-poll wait; stopping cancels an open poll at once.",
    )
    source_buckets: SourceEntries = Field(
        None,
        alias="sourceBuckets",
        description="The S3 sources job messages may name: `bucket`, or `bucket/prefix` for "
        "keys under a prefix. Required while the FileTransferer runs (it copies and then "
        "deletes what a message names); archive.bucket and leases.bucket are never a source.",
    )
    source: SourceSettings = SourceSettings()
    destination: DestinationSettings = DestinationSettings()


class DracoonGlobalSharerSettings(_Section):
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


class PeriodicWorkerSettings(_Section):
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


class ArchiveActionsSettings(_Section):
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
    wait_time_seconds: int = Field(
        20,
        alias="waitTimeSeconds",
        ge=1,
        le=20,
        description="SQS long-poll wait; stopping cancels an open poll at once.",
    )


class WorkersSettings(_Section):
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


class S3Settings(_Section):
    """``s3.*``: how recordings are read from S3."""

    chunk_size: Size = Field(
        20_000_000,
        alias="chunkSize",
        ge=1024 * 1024,
        le=5 * 1024**3,
        description="Bytes per ranged GET (`20MB`, `32MiB`, or bytes); memory scales with it.",
    )
    remove_after_transferring: bool = Field(
        True,
        alias="removeAfterTransferring",
        description="Delete the S3 source once every target holds its copy.",
    )


class DracoonSettings(_Section):
    """``dracoon.*``: the default account (seed 004: for tests; production uses instances)."""

    base_url: DracoonUrl = Field(
        None,
        alias="baseUrl",
        description="Server URL, e.g. https://dracoon.team; the seed's "
        "https://dracoon.team/api/v4 (and a trailing slash) names the same server.",
    )
    client_id: str = Field(
        "dracoon_legacy_scripting", alias="clientId", description="OAuth client id."
    )
    client_secret: SecretStr = Field(
        SecretStr(""), alias="clientSecret", description="OAuth client secret (secret)."
    )
    login: str | None = Field(None, description="Account login.")
    password: SecretStr | None = Field(None, description="Account password (secret).")
    encryption_password: SecretStr | None = Field(
        None, alias="encryptionPassword", description="Unlocks the account's key pair (secret)."
    )
    parent_room_id: int | None = Field(
        None,
        alias="parentRoomId",
        description="Accepted as seed 004 lists it, but unused: target paths are made under "
        "each instance's `parent-room-id`.",
    )
    timeout: Duration = Field(
        60.0,
        description="How long a request may wait for an answer, or (on Linux) an upload for "
        "the server to take more of its bytes, before the attempt fails and is retried.",
    )
    finish_timeout: Duration = Field(
        600.0,
        alias="finishTimeout",
        ge=0,
        description="How long to wait for DRACOON to finish a completed S3 direct upload "
        "(assemble, scan) before the job is retried. The upload is left to finish; the retry "
        "finds the file by its marker instead of uploading again.",
    )
    ca_file: Path | None = Field(
        None,
        alias="caFile",
        description="PEM file of CA(s) to trust for DRACOON and the configurator, beside the "
        "system's; for a private CA.",
    )

    test: dict[str, Any] | None = Field(
        None,
        description="Seed 004's `dracoon.test.*`: the same keys as `dracoon.*`, read as an "
        "alias of them (a key given in both places must agree).",
    )

    @model_validator(mode="before")
    @classmethod
    def _test_alias(cls, data: Any) -> Any:
        """``dracoon.test.*`` fills the keys of ``dracoon.*`` (seed 004 kept its test account
        there); the section keeps no copy, so one account is configured, not two."""
        if not isinstance(data, dict) or not isinstance(data.get("test"), dict):
            return data
        merged = {key: value for key, value in data.items() if key != "test"}
        for key, value in data["test"].items():
            if key in merged and merged[key] != value:
                raise ValueError(f"dracoon.test.{key} and dracoon.{key} differ: give one")
            merged[key] = value
        return merged


class TargetCopy(_Section):
    path: str
    expiration: str | None = None


def _meeting_type_key(value: Any) -> Any:
    """A meeting type's id (``14``, or ``"14"`` as a configurator may send it), ``*any*``, or
    the type's name: a message without ``meeting.type.id`` (seed 004's own example) is told by
    ``meeting.type.name``."""
    if isinstance(value, str):
        if value.strip().isdigit():
            return int(value)
        if not value.strip():
            raise ValueError("must be a meeting type id, *any* or a meeting type name")
    return value


class InstanceTarget(_Section):
    meeting_type_id: Annotated[int | str, BeforeValidator(_meeting_type_key)] = Field(
        alias="meetingTypeId"
    )
    copy_to: tuple[TargetCopy, ...] = Field(alias="copyTo")


class InstanceDracoon(_Section):
    parent_room_id: int = Field(alias="parent-room-id")
    login: str
    password: SecretStr
    encryption_password: SecretStr = Field(alias="encryption-password")
    base_url: DracoonUrl = Field(None, alias="base-url")
    targets: tuple[InstanceTarget, ...] = ()

    @field_validator("targets", mode="before")
    @classmethod
    def _targets_json(cls, value: Any) -> Any:
        """Seed 004 stores the targets in the instance configuration as a JSON string."""
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value) if value.strip() else ()
        except ValueError:
            raise ValueError("is a string but not the JSON list of targets") from None


class InstanceRecordings(_Section):
    storage: Literal["dracoon"] = "dracoon"
    dracoon: InstanceDracoon
    #: Narrows workers.FileTransferer.sourceBuckets for this instance's jobs (never widens).
    source_buckets: SourceEntries = Field(None, alias="source-buckets")


class InstanceSettings(_Section):
    """One ``instances.<domain>`` entry, in the configurator's own key names."""

    recordings: InstanceRecordings


class KalturaSettings(_Section):
    """``kaltura.*``: the Kaltura partner the archive and sync jobs work on."""

    service_url: str | None = Field(
        None, alias="serviceUrl", description="e.g. https://www.kaltura.com (API at /api_v3)."
    )
    partner_id: int | None = Field(None, alias="partnerId", description="Partner id.")
    admin_secret: SecretStr | None = Field(
        None, alias="adminSecret", description="Admin secret; sessions are made locally (secret)."
    )
    user_id: str = Field("recstore", alias="userId", description="User named in the sessions.")
    privileges: str = Field(
        "disableentitlement", description="Session privileges (comma-separated)."
    )
    session_lifetime: Duration = Field(
        86400.0, alias="sessionLifetime", ge=300, description="Lifetime of a session (KS)."
    )
    page_size: int = Field(500, alias="pageSize", ge=1, le=500, description="Entries per page.")
    timeout: Duration = Field(120.0, description="Timeout of one API request.")


class VidyoSettings(_Section):
    """``vidyo.*``: the VidyoReplay server whose recordings VidyoSync imports into Kaltura."""

    url: str | None = Field(
        None,
        description="Server base URL, e.g. https://replay.example.com (the SOAP service is at "
        "/replay/services/VidyoReplayContentManagementService).",
    )
    user: str | None = Field(
        None, description="A super (admin) user of VidyoReplay, for HTTP Basic auth."
    )
    password: SecretStr | None = Field(None, description="That user's password (secret).")
    timeout: Duration = Field(60.0, description="Timeout of one SOAP request.")
    page_size: int = Field(
        100,
        alias="pageSize",
        ge=1,
        le=200,
        description="Records per RecordsSearch page (the server allows at most 200).",
    )


class ArchiveSettings(_Section):
    """``archive.*``: where Kaltura originals are kept in S3, and the rules of seed 001."""

    bucket: str | None = Field(
        None, description="Bucket of the archived originals (object key = entry id)."
    )
    archived_tag: str = Field(
        "archived_to_s3", alias="archivedTag", description="Tag of an entry copied to S3."
    )
    flavors_deleted_tag: str = Field(
        "flavors_deleted",
        alias="flavorsDeletedTag",
        description="Tag of an entry whose flavors were replaced by the placeholder.",
    )
    flavors_deleted_aliases: list[str] = Field(
        default_factory=lambda: ["place_holder_video", "deleted_flavors"],
        alias="flavorsDeletedAliases",
        description="Other names read as the flavors-deleted tag: seed 003's "
        "`place_holder_video`, seed 001 README's `deleted_flavors`.",
    )
    size_tolerance: float = Field(
        0.03,
        alias="sizeTolerance",
        ge=0,
        le=1,
        description="Relative size difference accepted where Kaltura knows only KB sizes.",
    )
    max_original_kb: int = Field(
        10_000_000,
        alias="maxOriginalKb",
        ge=1,
        description="Originals above this size (KB) are not archived; health warns.",
    )
    concurrency: int = Field(
        16, ge=1, le=256, description="Entries looked at (flavors, S3) at the same time."
    )
    actions_concurrency: int = Field(
        4,
        alias="actionsConcurrency",
        ge=1,
        le=64,
        description="Entries the CLI's s3copy/replace-video/restore/repair change at once.",
    )
    storage_class: Literal[
        "STANDARD",
        "STANDARD_IA",
        "ONEZONE_IA",
        "INTELLIGENT_TIERING",
        "GLACIER_IR",
        "GLACIER",
        "DEEP_ARCHIVE",
    ] = Field("GLACIER", alias="storageClass", description="S3 storage class of the copies.")
    part_size: Size = Field(
        32 * 1024 * 1024,
        alias="partSize",
        ge=5 * 1024 * 1024,
        le=5 * 1024**3,
        description="Bytes per multipart part and per upload chunk; memory is about 3 parts.",
    )
    exempt_tag: str | None = Field(
        None,
        alias="exemptTag",
        description="Entries with this tag (e.g. a legal hold) are never archived.",
    )
    placeholder_video: Path | None = Field(
        None,
        alias="placeholderVideo",
        description="Video file that replaces archived originals; unset: the placeholder "
        "recstore ships (a 2-second MP4 of a few KB).",
    )
    thumbnail_offset: float = Field(
        0.0,
        alias="thumbnailOffset",
        ge=0,
        description="Second of the placeholder the new thumbnail is taken from.",
    )
    verify_before_replace: bool = Field(
        True,
        alias="verifyBeforeReplace",
        description="Before deleting flavors, read the original again and compare it with the "
        "S3 copy's recorded SHA-256 (where one is recorded).",
    )
    ready_timeout: Duration = Field(
        1800.0,
        alias="readyTimeout",
        gt=0,
        description="How long replace-video/restore wait for the new content to be READY.",
    )
    ready_poll: Duration = Field(
        10.0, alias="readyPoll", gt=0, description="Pause between two READY checks."
    )
    restore_days: int = Field(
        2,
        alias="restoreDays",
        ge=1,
        description="Days a Glacier restore stays readable (an Intelligent-Tiering copy in an "
        "archive tier comes back for good).",
    )
    restore_tier: Literal["Bulk", "Standard", "Expedited"] = Field(
        "Bulk",
        alias="restoreTier",
        description="Retrieval tier of restores (cost vs. hours). Deep Archive offers no "
        "`Expedited`: such copies are asked for at `Standard`, and the report says so.",
    )
    restore_mode: Literal["url", "stream"] = Field(
        "url",
        alias="restoreMode",
        description="`url`: Kaltura fetches a presigned S3 URL; `stream`: recstore uploads "
        "the original through an upload token (and checks its SHA-256 on the way).",
    )
    url_expiry: Duration = Field(
        86400.0,
        alias="urlExpiry",
        ge=60,
        le=604800,
        description="Lifetime of the presigned URL handed to Kaltura (restoreMode url).",
    )
    queue: str = Field(
        "archive", description="Archive action queue: a key of `queues` or a queue URL."
    )
    dead_letter_queue: str = Field(
        "archive-dlq",
        alias="deadLetterQueue",
        description="Its dead-letter queue: a key of `queues` or a queue URL.",
    )
    report_prefix: str = Field(
        "log/",
        alias="reportPrefix",
        description="Key prefix of the run reports in the bucket (then YYYY/MM/).",
    )


class LdapSettings(_Section):
    """``ldap.*``: the directory that `ldap-status` asks about the creators of entries.

    The defaults are seed 001's rules (``uid``, the ``puresource`` filters); the seed's base DN
    ``o=princeton university,c=us`` is the example. ``{id}`` in a filter stands for the looked-up
    id, escaped as RFC 4515 says, so an id such as ``*)(uid=*`` matches nothing.
    """

    urls: LdapUrls = Field(
        default_factory=list,
        description="Servers tried in order, e.g. `[ldaps://ldap.example.edu]` (`ldap://` "
        "only with `startTls`); a space-separated string in the environment.",
    )
    bind_dn: str | None = Field(
        None,
        alias="bindDn",
        description="Service account of the simple bind, e.g. "
        "`uid=svc-recstore,o=princeton university,c=us`; unset: anonymous.",
    )
    bind_password: SecretStr | None = Field(
        None, alias="bindPassword", description="Password of `bindDn` (secret)."
    )
    base_dn: str | None = Field(
        None,
        alias="baseDn",
        description="Search base, e.g. `o=princeton university,c=us` (seed 001).",
    )
    user_attribute: str = Field(
        "uid", alias="userAttribute", description="Attribute that holds the creator id."
    )
    active_filter: LdapFilter = Field(
        "(&(uid={id})(|(puresource=authentication=enabled)(puresource=authentication=goingaway)))",
        alias="activeFilter",
        description="An account is active while this matches (seed 001's rule).",
    )
    going_away_filter: LdapFilterOrEmpty = Field(
        "(&(uid={id})(puresource=authentication=goingaway))",
        alias="goingAwayFilter",
        description="An active account matching this is reported `goingaway`; empty: never.",
    )
    name_attributes: list[str] = Field(
        default_factory=lambda: ["displayName", "cn"],
        alias="nameAttributes",
        description="The name column: the first of these the entry has.",
    )
    org_unit_attribute: str = Field(
        "ou", alias="orgUnitAttribute", description="The org_unit column's attribute."
    )
    strip_email_domain: bool = Field(
        True,
        alias="stripEmailDomain",
        description="Look `netid@example.edu` up as `netid`, as seed 001 did.",
    )
    start_tls: bool = Field(
        False, alias="startTls", description="Upgrade `ldap://` connections with StartTLS."
    )
    verify_certificate: bool = Field(
        True,
        alias="verifyCertificate",
        description="Check the server's certificate and name; false only for a test bench.",
    )
    ca_file: Path | None = Field(
        None, alias="caFile", description="PEM file of the CA(s) to trust (default: system's)."
    )
    timeout: Duration = Field(10.0, gt=0, description="Timeout of connecting and of one search.")
    concurrency: int = Field(
        4, ge=1, le=32, description="Connections (and searches in flight) at most."
    )
    batch_size: int = Field(
        50, alias="batchSize", ge=1, le=500, description="Ids asked about in one search."
    )

    @model_validator(mode="after")
    def _consistent(self) -> LdapSettings:
        if (self.bind_dn is None) != (self.bind_password is None):
            raise ValueError("give both bindDn and bindPassword, or neither")
        if self.start_tls and any(url.lower().startswith("ldaps://") for url in self.urls):
            raise ValueError("startTls is for ldap:// URLs; ldaps:// is TLS already")
        if self.ca_file is not None and not self.ca_file.is_file():
            raise ValueError(f"caFile: no such file: {self.ca_file}")
        return self


class LeaseSettings(_Section):
    """``leases.*``: keeps each singleton job to one replica (an S3 object per job)."""

    enabled: bool = Field(
        True, description="Hold an S3 lease per singleton job; false for a single replica."
    )
    bucket: str | None = Field(
        None,
        description=(
            "Bucket for lease objects: one per singleton job, and short-lived per-entry locks "
            "of applied archive actions; required while a periodic worker runs."
        ),
    )
    prefix: str = Field("recstore/leases/", description="Key prefix of the lease objects.")
    ttl: Duration = Field(
        300.0, ge=10, description="A dead holder's lease expires after this; renewed at 1/3."
    )

    @property
    def shared(self) -> bool:
        """Whether replicas coordinate through lease objects (on, with a bucket to hold them)."""
        return self.enabled and bool(self.bucket)


class HttpSettings(_Section):
    """``http.*``: the server for /healthcheck, /metrics and the /status dashboard."""

    host: str = Field("0.0.0.0", description="Listen address.")
    port: int = Field(8080, ge=0, le=65535, description="Listen port (0: any free port).")
    status_user: str | None = Field(
        None,
        alias="statusUser",
        description="Basic auth user for /status and /status.json (with `statusPassword`).",
    )
    status_password: SecretStr | None = Field(
        None, alias="statusPassword", description="Password of `statusUser` (secret)."
    )
    status_open: bool = Field(
        False,
        alias="statusOpen",
        description="Serve /status and /status.json to anyone who reaches the address, without "
        "a login. Off: they need `statusUser`/`statusPassword`, or answer only requests from "
        "this machine (loopback). /healthcheck and /metrics are always open.",
    )


class DaemonSettings(_Section):
    """``daemon.*``: supervision and shutdown."""

    grace_period: Duration = Field(
        30.0,
        alias="gracePeriod",
        description="On SIGTERM, how long running jobs may finish before they are handed back.",
    )
    restart_backoff_initial: Duration = Field(
        1.0, alias="restartBackoffInitial", description="First delay before restarting a worker."
    )
    restart_backoff_max: Duration = Field(
        60.0, alias="restartBackoffMax", description="Longest delay between restarts."
    )
    unhealthy_after_restarts: int = Field(
        3,
        alias="unhealthyAfterRestarts",
        ge=1,
        description="Crashes in a row after which the worker reports unhealthy.",
    )
    stable_after: Duration = Field(
        60.0,
        alias="stableAfter",
        description="A worker that ran this long without crashing counts as recovered.",
    )
    queue_depth_interval: Duration = Field(
        30.0,
        alias="queueDepthInterval",
        ge=1,
        description="How often the work and dead-letter queues' depths are read from SQS.",
    )


class Settings(_Section):
    """The whole configuration: one object, validated once at start."""

    logger: LoggerSettings = LoggerSettings()
    configurator: ConfiguratorSettings = ConfiguratorSettings()
    aws: AwsSettings = AwsSettings()
    queues: dict[str, str] = Field(
        default_factory=dict, description="Queue name → SQS queue URL (the seed's topics.yml)."
    )
    queues_file: Path | None = Field(
        None,
        alias="queuesFile",
        description="A YAML file of more queue name → URL pairs, such as seed 004's "
        "`conf/pubsub/sqs/topics.yml`; names in `queues` win.",
    )
    workers: WorkersSettings = WorkersSettings()
    s3: S3Settings = S3Settings()
    dracoon: DracoonSettings = DracoonSettings()
    kaltura: KalturaSettings = KalturaSettings()
    vidyo: VidyoSettings = VidyoSettings()
    archive: ArchiveSettings = ArchiveSettings()
    ldap: LdapSettings = LdapSettings()
    leases: LeaseSettings = LeaseSettings()
    http: HttpSettings = HttpSettings()
    daemon: DaemonSettings = DaemonSettings()
    instances: dict[str, InstanceSettings] = Field(
        default_factory=dict, description="Per-instance configuration keyed by domain."
    )
    #: Workers left off because nothing configures them: name → what would turn them on.
    _not_started: dict[str, str] = PrivateAttr(default_factory=dict)

    @property
    def not_started(self) -> dict[str, str]:
        """Default-on workers this configuration gives nothing to do, with the reason."""
        return dict(self._not_started)

    def queue_url(self, name_or_url: str) -> str:
        """The URL of a queue named in ``queues``, or the value itself when it is a URL."""
        if name_or_url.startswith(("http://", "https://")):
            return name_or_url
        try:
            return self.queues[name_or_url]
        except KeyError:
            # The daemon's cross-checks catch this for enabled workers; a CLI command can
            # still name a queue of a worker that is off here.
            raise ConfigError(
                [(f"queues.{name_or_url}", "is not configured: add its URL under `queues`")]
            ) from None


def load_settings(
    path: Path | str | None,
    environ: Mapping[str, str] | None = None,
    workers: str | None = None,
    *,
    check_workers: bool = True,
) -> Settings:
    """Read, override, resolve and validate; raise :class:`ConfigError` listing every problem.

    ``workers`` (``recstore run --workers``, ``RECSTORE_WORKERS``) names the workers this
    replica runs, comma-separated, out of those the configuration turns on; the others are
    turned off before the cross-checks, so a replica is only asked for what it runs.

    ``check_workers`` false checks the settings without what the daemon's workers need: for
    the one-shot commands, which check what they use when they use it.
    """
    environ = os.environ if environ is None else environ
    raw = _read_yaml(Path(path)) if path is not None else {}
    problems: list[tuple[str, str]] = []
    _apply_env(raw, environ, problems)
    from_seed = _apply_seed_env(raw, environ)  # after: fills only what is still unset
    _resolve_files(raw, "", problems)
    _read_queues_file(raw, problems)
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_name_seed_sources(problems + _problems_from(exc), from_seed)) from None
    settings = _settle_default_workers(settings)
    if workers is not None:
        settings = _select_workers(settings, workers, problems)
    problems += _cross_checks(settings, check_workers)
    if problems:
        raise ConfigError(_name_seed_sources(problems, from_seed))
    return settings


#: The Princeton archiver's (seeds 001/003) fixed choices, used with its variables below.
SEED_KALTURA_URL = "https://www.kaltura.com"
SEED_LDAP_BASE = "o=princeton university,c=us"


def _seed_doit(value: str, _: Mapping[str, str]) -> str:
    """`true` when it is exactly `true`, else `false` (as the seed's scripts read it)."""
    return "true" if value == "true" else "false"


def _seed_ldap_url(value: str, environ: Mapping[str, str]) -> str:
    """`ldaps://HOST:PORT`, PORT from `LDAP_PORT` or 636 (the seed's connection)."""
    return f"ldaps://{value}:{environ.get('LDAP_PORT') or 636}"


def _seed_ldap_user(value: str, _: Mapping[str, str]) -> str:
    """`uid=USER,o=princeton university,c=us` (the seed's bind DN)."""
    return f"uid={value},{SEED_LDAP_BASE}"


#: Seed 001/003's environment (``bash.rc``, ``csh.rc``, ``env.list``, ``src/envvars.py``):
#: variable → the keys it fills, each with how its value becomes the key's (None: as it is).
#: ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` are not here: the AWS chain reads them.
SEED_ENV: dict[str, tuple[tuple[str, Any], ...]] = {
    "KALTURA_PARTNERID": (("kaltura.partnerId", None), ("kaltura.serviceUrl", SEED_KALTURA_URL)),
    "KALTURA_SECRET": (("kaltura.adminSecret", None),),
    "KALTURA_USERID": (("kaltura.userId", None),),
    "AWS_BUCKET": (("archive.bucket", None),),
    "PLACEHOLDER_VIDEO": (("archive.placeholderVideo", None),),
    "N_YEARS": (("workers.Archiver.unplayedFor", None), ("workers.Restorer.playedWithin", None)),
    "DOIT": (
        ("workers.Archiver.apply", _seed_doit),
        ("workers.Restorer.apply", _seed_doit),
    ),
    "LDAP_SERVER": (("ldap.urls", _seed_ldap_url), ("ldap.baseDn", SEED_LDAP_BASE)),
    "LDAP_USER": (("ldap.bindDn", _seed_ldap_user),),
    "LDAP_PWD": (("ldap.bindPassword", None),),
}


def _apply_seed_env(raw: dict[str, Any], environ: Mapping[str, str]) -> dict[str, str]:
    """Fill keys the YAML leaves unset from the seed's variables; key → variable used.

    The YAML wins over them and ``RECSTORE_*`` over both, so a file written for recstore is
    never changed by an old environment; an empty variable counts as unset, as in the seed.
    """
    used: dict[str, str] = {}
    for name, targets in SEED_ENV.items():
        value = environ.get(name, "")
        if not value:
            continue
        for key, convert in targets:
            *parents, leaf = key.split(".")
            node = raw
            for part in parents:
                child = node.get(_match_key(node, part))
                if child is None:
                    child = node[part] = {}
                if not isinstance(child, dict):
                    break  # a malformed section: validation names it
                node = child
            else:
                if _match_key(node, leaf) in node or _match_key(node, leaf + FILE_SUFFIX) in node:
                    continue
                if callable(convert):
                    node[leaf] = convert(value, environ)
                else:
                    node[leaf] = value if convert is None else convert
                used[key] = name
    return used


def _name_seed_sources(
    problems: list[tuple[str, str]], from_seed: Mapping[str, str]
) -> list[tuple[str, str]]:
    """A problem with a key filled from a seed variable names that variable too."""
    return [
        (key, f"{message} (from {from_seed[key]})" if key in from_seed else message)
        for key, message in problems
    ]


def _settle_default_workers(settings: Settings) -> Settings:
    """Turn off the default-on workers that nothing in the configuration sets up.

    FileTransferer and DracoonGlobalSharer are on by default (seed 004). A configuration that
    says nothing about one of them and gives it nothing to work on (for the transferer: no
    work queue and no DRACOON destination, neither ``configurator.url``, ``instances`` nor
    ``dracoon.baseUrl``; for the sharer: no DRACOON account) is one for other work, such as
    the Kaltura archive: the worker is left off and the daemon says so at start. Once any of
    its keys is set, or a sign of its work is there, it is held to its checks.
    """
    workers = settings.workers
    transferer, sharer = workers.file_transferer, workers.dracoon_global_sharer
    skipped: dict[str, str] = {}
    update: dict[str, Any] = {}
    queue = transferer.queue
    has_queue = queue.startswith(("http://", "https://")) or queue in settings.queues
    # Any sign of transfers (a queue, a DRACOON destination) keeps it on, and checked.
    for_transfers = has_queue or bool(
        settings.configurator.url or settings.instances or settings.dracoon.base_url
    )
    if transferer.enabled and not transferer.model_fields_set and not for_transfers:
        skipped["FileTransferer"] = f"no work queue: `queues.{queue}` is not configured"
        update["file_transferer"] = transferer.model_copy(update={"enabled": False})
    if sharer.count > 0 and not sharer.model_fields_set and not _has_dracoon_account(settings):
        skipped["DracoonGlobalSharer"] = "no DRACOON account: neither `dracoon.*` nor `instances`"
        update["dracoon_global_sharer"] = sharer.model_copy(update={"count": 0})
    if not update:
        return settings
    settled = settings.model_copy(update={"workers": workers.model_copy(update=update)})
    settled._not_started = skipped
    return settled


def _has_dracoon_account(settings: Settings) -> bool:
    """A DRACOON account to serve: the ``dracoon.*`` one, YAML instances', or those of the
    instances the configurator answers for (the ones whose jobs the daemon serves)."""
    dracoon = settings.dracoon
    return (
        bool(settings.instances)
        or bool(settings.configurator.url)
        or bool(dracoon.base_url and dracoon.login and dracoon.password)
    )


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([("config", f"cannot read {path}: {exc.strerror}")]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError([("config", f"{path} is not valid YAML{line}")]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([("config", f"{path} must hold a mapping of sections")])
    return data


def _read_queues_file(raw: dict[str, Any], problems: list[Any]) -> None:
    """Merge ``queuesFile`` (seed 004's topics.yml: queue name → URL) under ``queues``.

    The seed's own file is not in its documentation beyond "URLs of all AWS SQS queues are
    stored" there; a flat mapping is read, and so is one under a single top-level key (as
    ``topics:``). Names already in ``queues`` keep their value.
    """
    path = raw.get("queuesFile")
    if not isinstance(path, str) or not path:
        return
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        problems.append(("queuesFile", f"cannot read {path}: {exc.strerror}"))
        return
    except yaml.YAMLError:
        problems.append(("queuesFile", f"{path} is not valid YAML"))
        return
    if isinstance(document, dict) and len(document) == 1:
        (inner,) = document.values()
        if isinstance(inner, dict):
            document = inner
    if not isinstance(document, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in document.items()
    ):
        problems.append(("queuesFile", f"{path} must map queue names to queue URLs"))
        return
    queues = raw.get("queues")
    if queues is None:
        queues = raw["queues"] = {}
    if isinstance(queues, dict):
        for name, url in document.items():
            queues.setdefault(name, url)


def _apply_env(raw: dict[str, Any], environ: Mapping[str, str], problems: list[Any]) -> None:
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name in RESERVED_ENV:
            continue
        value = environ[name]
        segments = name[len(ENV_PREFIX) :].split("__")
        from_file = segments[-1].upper().endswith(FILE_SUFFIX)
        if from_file:
            segments[-1] = segments[-1][: -len(FILE_SUFFIX)]
        keys = _resolve_env_path(segments)
        if keys is None:
            problems.append((name, "names no configuration key"))
            continue
        target = raw
        for key in keys[:-1]:
            existing = _match_key(target, key)
            child = target.get(existing)
            if not isinstance(child, dict):
                child = target[existing] = {}
            target = child
        last = _match_key(target, keys[-1])
        if from_file:
            target.pop(last, None)
            target[last + FILE_SUFFIX] = value
        else:
            target[last] = value


def _resolve_env_path(segments: list[str]) -> list[str] | None:
    """Map case-insensitive env segments to YAML keys by walking the settings model."""
    model: type[BaseModel] | None = Settings
    keys: list[str] = []
    for segment in segments:
        if not segment:
            return None
        if model is None:  # inside a free mapping (queues, instances): keep as written
            keys.append(segment.lower())
            continue
        field_key, next_model = _find_field(model, segment)
        if field_key is None:
            return None
        keys.append(field_key)
        model = next_model
    return keys


def _find_field(model: type[BaseModel], segment: str) -> tuple[str | None, type[BaseModel] | None]:
    wanted = segment.lower()
    for name, info in model.model_fields.items():
        key = info.alias or name
        if wanted in (key.lower(), name.lower(), key.lower().replace("-", "_")):
            annotation = info.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                return key, annotation
            return key, None
    return None, None


def _match_key(mapping: dict[str, Any], key: str) -> str:
    for existing in mapping:
        if existing.lower() == key.lower():
            return existing
    return key


def _resolve_files(node: dict[str, Any], prefix: str, problems: list[Any]) -> None:
    for key in list(node):
        value = node[key]
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            _resolve_files(value, path + ".", problems)
        elif key.endswith(FILE_SUFFIX) and isinstance(value, str):
            target = key[: -len(FILE_SUFFIX)]
            try:
                content = Path(value).read_text(encoding="utf-8")
            except OSError as exc:
                problems.append((path, f"cannot read {value}: {exc.strerror}"))
                del node[key]  # reported once, not again as an unknown key
                continue
            del node[key]
            node[target] = content[:-1] if content.endswith("\n") else content


def _problems_from(exc: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        key = ".".join(str(part) for part in error["loc"]) or "config"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (misspelled?)"
        problems.append((key, message))
    return problems


def _instance_target_checks(settings: Settings) -> list[tuple[str, str]]:
    """The YAML's target templates and expirations, which are the operator's to fix.

    A fault of their own (an unknown variable, an absolute path, "2 yeers") would fail every
    job that uses them, so it stops the start instead. Configurator answers are not held to
    this: there a bad target fails, with its reason, only the jobs that use it.
    """
    problems: list[tuple[str, str]] = []
    for domain, instance in settings.instances.items():
        for i, target in enumerate(instance.recordings.dracoon.targets):
            for j, copy in enumerate(target.copy_to):
                key = f"instances.{domain}.recordings.dracoon.targets.{i}.copyTo.{j}"
                try:
                    check_template(copy.path)
                except ValueError as exc:
                    problems.append((f"{key}.path", str(exc)))
                try:
                    parse_expiration(copy.expiration)
                except ValueError as exc:
                    problems.append((f"{key}.expiration", str(exc)))
    return problems


def _cross_checks(settings: Settings, workers: bool) -> list[tuple[str, str]]:
    """Rules that span sections, which field validators cannot see.

    ``workers`` false: a one-shot command, which runs no worker, is not held to what the
    workers need (a Kaltura command does not care whether the transfer queue is set up).
    """
    problems: list[tuple[str, str]] = []
    aws = settings.aws
    if (aws.access_key_id is None) != (aws.secret_access_key is None):
        missing = "aws.secretAccessKey" if aws.secret_access_key is None else "aws.accessKeyId"
        problems.append((missing, "give both aws.accessKeyId and aws.secretAccessKey, or neither"))
    http = settings.http
    if (http.status_user is None) != (http.status_password is None):
        missing = "http.statusPassword" if http.status_password is None else "http.statusUser"
        problems.append((missing, "give both http.statusUser and http.statusPassword, or neither"))
    if http.status_open and http.status_user is not None:
        problems.append(
            ("http.statusOpen", "the status page is either open or behind statusUser: not both")
        )
    problems += _instance_target_checks(settings)
    problems += _archive_checks(settings, workers)
    if workers:
        problems += _worker_checks(settings)
    return problems


def _worker_checks(settings: Settings) -> list[tuple[str, str]]:
    """What the workers the configuration turns on need to run."""
    problems: list[tuple[str, str]] = []
    transferer = settings.workers.file_transferer
    if transferer.enabled and "FileTransferer" in AVAILABLE_WORKERS:
        if transferer.count < 1:
            problems.append(("workers.FileTransferer.count", "must be at least 1 when enabled"))
        for key, value in (
            ("queue", transferer.queue),
            ("deadLetterQueue", transferer.dead_letter_queue),
        ):
            if not value.startswith(("http://", "https://")) and value not in settings.queues:
                problems.append(
                    (f"workers.FileTransferer.{key}", f"{value!r} is not a key of `queues`")
                )
        problems += _source_checks(settings)
    singletons = [name for name, _ in enabled_workers(settings) if name in SINGLETON_WORKERS]
    if singletons and settings.leases.enabled and not settings.leases.bucket:
        problems.append(
            (
                "leases.bucket",
                f"required while {', '.join(singletons)} runs "
                "(or set leases.enabled: false for a single replica)",
            )
        )
    sharer_on = settings.workers.dracoon_global_sharer.count > 0
    if sharer_on and not _has_dracoon_account(settings):
        problems.append(
            (
                "workers.DracoonGlobalSharer.count",
                "no DRACOON account to serve: configure dracoon.*, instances or configurator.url "
                "(or set 0)",
            )
        )
    problems += _vidyo_checks(settings)
    for alias, key in enabled_workers(settings):
        if alias not in AVAILABLE_WORKERS:
            problems.append((f"workers.{alias}.{key}", "this worker is not in this version yet"))
    return problems


def protected_buckets(
    settings: Settings, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The buckets recstore writes itself, each with the key that names it, and the one its
    configuration (with every secret) was fetched from: never a source."""
    environ = os.environ if environ is None else environ
    fetched = environ.get("RECSTORE_CONFIG_S3_URI", "").removeprefix("s3://").split("/")[0]
    named = (
        ("RECSTORE_CONFIG_S3_URI", fetched),
        ("archive.bucket", settings.archive.bucket),
        ("leases.bucket", settings.leases.bucket),
    )
    return {bucket: key for key, bucket in reversed(named) if bucket}


def _source_checks(settings: Settings) -> list[tuple[str, str]]:
    """The FileTransferer copies and then deletes whatever a message names: it starts only
    with its sources listed, none of them a bucket recstore writes itself."""
    entries = settings.workers.file_transferer.source_buckets
    if entries is None:
        return [
            (
                SOURCE_BUCKETS_KEY,
                "required while the FileTransferer runs: list the buckets (or bucket/prefix) "
                "that job messages may name as their source, e.g. [recordings]",
            )
        ]
    if not entries:
        return [(SOURCE_BUCKETS_KEY, "names no bucket: no job could run (turn the worker off)")]
    protected = protected_buckets(settings)
    return [
        (SOURCE_BUCKETS_KEY, f"{rule.bucket!r} is {protected[rule.bucket]}: never a source")
        for rule in parse_rules(entries)
        if rule.bucket in protected
    ]


def _archive_checks(settings: Settings, for_workers: bool) -> list[tuple[str, str]]:
    """What the Archiver, Restorer and ArchiveActions workers need once one of them runs."""
    workers = settings.workers
    on = [
        name
        for name, enabled in (
            ("Archiver", workers.archiver.enabled),
            ("Restorer", workers.restorer.enabled),
            ("ArchiveActions", workers.archive_actions.enabled),
        )
        if enabled
    ]
    archive = settings.archive
    problems: list[tuple[str, str]] = []
    if archive.placeholder_video is not None and not archive.placeholder_video.is_file():
        problems.append(("archive.placeholderVideo", f"no such file: {archive.placeholder_video}"))
    if not on or not for_workers:
        return problems
    needed = f"required while {', '.join(on)} runs"
    kaltura = settings.kaltura
    for key, value in (
        ("kaltura.serviceUrl", kaltura.service_url),
        ("kaltura.partnerId", kaltura.partner_id),
        ("kaltura.adminSecret", kaltura.admin_secret),
        ("archive.bucket", archive.bucket),
    ):
        if value is None or value == "":
            problems.append((key, needed))
    for key, value in (("queue", archive.queue), ("deadLetterQueue", archive.dead_letter_queue)):
        if not value.startswith(("http://", "https://")) and value not in settings.queues:
            problems.append((f"archive.{key}", f"{value!r} is not a key of `queues`"))
    return problems


def _vidyo_checks(settings: Settings) -> list[tuple[str, str]]:
    """What VidyoSync needs once it runs: both ends of the sync."""
    if not settings.workers.vidyo_sync.enabled:
        return []
    vidyo, kaltura = settings.vidyo, settings.kaltura
    return [
        (key, "required while VidyoSync runs")
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


#: Workers that run in one replica at a time, under a lease.
SINGLETON_WORKERS = frozenset({"DracoonGlobalSharer", "VidyoSync", "Archiver", "Restorer"})
#: Workers this build can run; the others are refused at start rather than silently idle.
AVAILABLE_WORKERS: frozenset[str] = frozenset(
    {
        "FileTransferer",
        "DracoonGlobalSharer",
        "VidyoSync",
        "Archiver",
        "Restorer",
        "ArchiveActions",
    }
)


def enabled_workers(settings: Settings) -> list[tuple[str, str]]:
    """``(name, switching key)`` of every worker the configuration turns on."""
    workers = settings.workers
    switched = [
        ("FileTransferer", "enabled", workers.file_transferer.enabled),
        ("DracoonGlobalSharer", "count", workers.dracoon_global_sharer.count > 0),
        ("VidyoSync", "enabled", workers.vidyo_sync.enabled),
        ("Archiver", "enabled", workers.archiver.enabled),
        ("Restorer", "enabled", workers.restorer.enabled),
        ("ArchiveActions", "enabled", workers.archive_actions.enabled),
    ]
    return [(name, key) for name, key, on in switched if on]


#: Each worker's switch and the value that turns it off (see :func:`enabled_workers`).
_WORKER_OFF: dict[str, tuple[str, dict[str, Any]]] = {
    "FileTransferer": ("file_transferer", {"enabled": False}),
    "DracoonGlobalSharer": ("dracoon_global_sharer", {"count": 0}),
    "VidyoSync": ("vidyo_sync", {"enabled": False}),
    "Archiver": ("archiver", {"enabled": False}),
    "Restorer": ("restorer", {"enabled": False}),
    "ArchiveActions": ("archive_actions", {"enabled": False}),
}


def _select_workers(settings: Settings, names: str, problems: list[Any]) -> Settings:
    """``settings`` with every worker off that ``names`` leaves out.

    A name that is no worker, or one the configuration does not turn on, is a problem rather
    than ignored: a replica started to run a worker must not quietly run nothing.
    """
    wanted = [name.strip() for name in names.split(",") if name.strip()]
    where = "workers (--workers, RECSTORE_WORKERS)"
    if not wanted:
        problems.append((where, "names no worker"))
    enabled = dict(enabled_workers(settings))
    for name in wanted:
        if name not in _WORKER_OFF:
            problems.append((where, f"{name!r} is no worker: one of {', '.join(_WORKER_OFF)}"))
        elif name not in enabled:
            switch = next(iter(_WORKER_OFF[name][1]))
            problems.append(
                (f"workers.{name}.{switch}", "named in --workers but off in the configuration")
            )
    update = {
        field: getattr(settings.workers, field).model_copy(update=off)
        for name, (field, off) in _WORKER_OFF.items()
        if name not in wanted
    }
    return settings.model_copy(update={"workers": settings.workers.model_copy(update=update)})


def masked_dump(settings: Settings) -> dict[str, Any]:
    """The settings as YAML keys with every secret masked, for ``recstore config show``."""
    return settings.model_dump(mode="json", by_alias=True)
