"""The FileTransferer's job message (seed 004), parsed into typed, immutable objects.

Anything malformed is a :class:`~recstore.errors.PermanentJobError` naming the field path, so
the message goes to the dead-letter queue with a reason an operator can act on. Participants'
names and e-mail addresses and the meeting description are personal data: they are kept out
of ``repr()`` and of every error message (pydantic is told not to echo input values).
Unknown extra fields are ignored, since producers add fields over time.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from recstore.errors import PermanentJobError
from recstore.transfer.expiration import parse_expiration
from recstore.transfer.instances import Target

BucketName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")]
Hostname = Annotated[
    str,
    StringConstraints(
        max_length=253,
        pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
        r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?)*$",
    ),
]
NonEmpty = Annotated[str, StringConstraints(min_length=1)]


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class Person(_Part):
    name: str | None = Field(None, repr=False)
    email: str | None = Field(None, repr=False)


class MeetingType(_Part):
    id: int | None = None
    name: NonEmpty
    duration: int | None = None


class Meeting(_Part):
    id: int | NonEmpty
    type: MeetingType
    user: Person | None = Field(None, repr=False)
    guest: Person | None = Field(None, repr=False)
    date: str | None = None
    description: str | None = Field(None, repr=False)


class TargetSpec(_Part):
    path: NonEmpty
    expiration: str | None = None

    @field_validator("expiration")
    @classmethod
    def _readable(cls, value: str | None) -> str | None:
        parse_expiration(value)  # raises ExpirationError (a ValueError) with the reason
        return value


class DracoonExtra(_Part):
    targets: tuple[TargetSpec, ...] = ()


class S3Extra(_Part):
    bucket: BucketName
    keys: tuple[NonEmpty, ...] = Field(min_length=1)


class StorageExtra(_Part):
    dracoon: DracoonExtra = DracoonExtra()
    aws_s3: S3Extra = Field(alias="aws.s3")


class Storage(_Part):
    type: Literal["dracoon"]
    extra: StorageExtra


class Instance(_Part):
    domain: Hostname


class TransferJob(_Part):
    storage: Storage
    meeting: Meeting
    instance: Instance

    @property
    def job_id(self) -> str:
        """Stable across redeliveries; names no person."""
        return f"{self.instance.domain}/{self.meeting.id}"

    @property
    def targets(self) -> tuple[Target, ...]:
        return tuple(Target(t.path, t.expiration) for t in self.storage.extra.dracoon.targets)

    @property
    def bucket(self) -> str:
        return self.storage.extra.aws_s3.bucket

    @property
    def keys(self) -> tuple[str, ...]:
        return self.storage.extra.aws_s3.keys

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", by_alias=True, exclude_none=True))


def parse_job(body: str | bytes) -> TransferJob:
    """The job in ``body``; :class:`PermanentJobError` naming what and where otherwise."""
    try:
        document: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise PermanentJobError("the message is not JSON") from None
    if not isinstance(document, dict):
        raise PermanentJobError("the message is not a JSON object")
    try:
        return TransferJob.model_validate(document)
    except ValidationError as exc:
        raise PermanentJobError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_input=False, include_url=False, include_context=False):
        where = "".join(
            f"[{part}]"
            if isinstance(part, int)
            else (f".{part}" if "." not in str(part) else f'["{part}"]')
            for part in error["loc"]
        ).lstrip(".")
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "is missing"
        elif error["type"] in ("too_short", "string_too_short"):
            message = "must not be empty"
        elif error["type"] == "literal_error" and where == "storage.type":
            message = "is not a known storage (only 'dracoon')"
        problems.append(f"{where or 'message'}: {message}")
    return "; ".join(problems)
