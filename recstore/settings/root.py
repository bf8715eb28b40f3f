"""The whole configuration, one object validated once at start."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import (
    BaseModel,
    Field,
    PrivateAttr,
)

from recstore.common.errors import ConfigError
from recstore.settings.aws import AwsSettings, S3Settings
from recstore.settings.daemon import DaemonSettings, HttpSettings, LeaseSettings, LoggerSettings
from recstore.settings.dracoon import ConfiguratorSettings, DracoonSettings, InstanceSettings
from recstore.settings.fields import Section
from recstore.settings.media import ArchiveSettings, KalturaSettings, LdapSettings, VidyoSettings
from recstore.settings.workers import WorkersSettings


class Settings(Section):
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

    def with_workers(
        self, sections: Mapping[str, BaseModel], not_started: Mapping[str, str] | None = None
    ) -> Settings:
        """A copy with these ``workers`` sections (by attribute) in place, as the worker
        registry turns workers off; ``not_started``: default-on ones left off, and why."""
        copy = self.model_copy(update={"workers": self.workers.model_copy(update=dict(sections))})
        copy._not_started = {**self._not_started, **(not_started or {})}
        return copy

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
