"""The AWS sections: credentials and endpoints (``aws``), the recordings bucket's transfer
settings (``s3``).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import (
    Field,
    SecretStr,
    field_validator,
)

from recstore.settings.fields import REGION, Section, Size


class AwsSettings(Section):
    """``aws.*``: region, endpoints (for S3/SQS-compatible services) and optional keys.

    Without keys the standard AWS chain applies (environment, profile, instance or task role).
    """

    region: str = Field("eu-central-1", description="AWS region of the bucket(s) and queues.")

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        """botocore's rule for a region name (a host label, not all digits), checked here so
        every command, not only the daemon, names the key instead of failing in botocore."""
        if not REGION.fullmatch(value):
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


class S3Settings(Section):
    """``s3.*``: how recordings are read from S3."""

    chunk_size: Size = Field(
        20_000_000,
        alias="chunkSize",
        ge=1024 * 1024,
        le=5 * 1024**3,
        description=(
            "Bytes per ranged GET (`20MB`, `32MiB`, or bytes); memory scales with it. A "
            "recording no larger is uploaded without a record of its upload channel in the "
            "lease bucket: a kill leaves at most this much to DRACOON's expiry."
        ),
    )
    remove_after_transferring: bool = Field(
        True,
        alias="removeAfterTransferring",
        description="Delete the S3 source once every target holds its copy.",
    )
