"""DRACOON and the per-instance settings (seed 004's ``recordings.*`` keys, from the
configurator service or the ``instances:`` section).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from recstore.settings.fields import DracoonUrl, Duration, Section, SourceEntries


class ConfiguratorSettings(Section):
    """``configurator.*``: where per-instance configuration comes from when not in YAML."""

    url: str | None = Field(
        None, description="Base URL of the configurator service; unset: use `instances:`."
    )
    cache_ttl: Duration = Field(
        300.0, alias="cacheTtl", description="How long an instance's answer is reused."
    )
    timeout: Duration = Field(10.0, description="Timeout of one configurator request.")


class DracoonSettings(Section):
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


class TargetCopy(Section):
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


class InstanceTarget(Section):
    meeting_type_id: Annotated[int | str, BeforeValidator(_meeting_type_key)] = Field(
        alias="meetingTypeId"
    )
    copy_to: tuple[TargetCopy, ...] = Field(alias="copyTo")


class InstanceDracoon(Section):
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


class InstanceRecordings(Section):
    storage: Literal["dracoon"] = "dracoon"
    dracoon: InstanceDracoon
    #: Narrows workers.FileTransferer.sourceBuckets for this instance's jobs (never widens).
    source_buckets: SourceEntries = Field(None, alias="source-buckets")


class InstanceSettings(Section):
    """One ``instances.<domain>`` entry, in the configurator's own key names."""

    recordings: InstanceRecordings
