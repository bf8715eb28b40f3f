"""The Kaltura, VidyoReplay, archive and LDAP sections (seeds 000-003)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    SecretStr,
    model_validator,
)

from recstore.settings.fields import (
    Duration,
    LdapFilter,
    LdapFilterOrEmpty,
    LdapUrls,
    Section,
    Size,
)


class KalturaSettings(Section):
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


class VidyoSettings(Section):
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


class ArchiveSettings(Section):
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


class LdapSettings(Section):
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
