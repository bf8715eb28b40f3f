"""The running daemon's sections: logging, leases, the HTTP server and shutdown."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
    SecretStr,
)

from recstore.settings.fields import Duration, LogLevel, Section


class LoggerSettings(Section):
    """``logger.*``: how log lines look. Every line carries its event code either way."""

    level: LogLevel = Field("info", description="Lowest level written.")
    format: Literal["text", "json"] = Field(
        "text", description="`text` for a terminal or journald, `json` for log shippers."
    )


class LeaseSettings(Section):
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


class HttpSettings(Section):
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


class DaemonSettings(Section):
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
