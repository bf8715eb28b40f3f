"""The FileTransferer's job message (seed 004), parsed into typed, immutable objects.

Anything malformed is a :class:`~recstore.common.errors.PermanentJobError` whose message names the
field path (``storage.extra["aws.s3"].keys[1]: must be a non-empty string``), so the message
goes to the dead-letter queue with a reason an operator can act on.

What is checked, and how strictly:

* Required: ``storage.type`` (only ``"dracoon"``), ``storage.extra["aws.s3"]`` with a valid S3
  ``bucket`` and a non-empty list of ``keys`` whose last segment is a name DRACOON accepts
  (a key listed twice is one recording, copied once), ``meeting.id``, ``meeting.type.name``
  and ``instance.domain`` (a hostname).
* Optional, since producers differ: ``storage.extra.dracoon.targets`` (absent, null or empty
  all mean "use the instance's configured targets"), ``meeting.type.id`` and ``duration``,
  ``meeting.user``, ``guest``, ``date`` and ``description``.
* Types are strict wherever a field is present: no ``"14"`` for an integer, no ``true`` for a
  number, no number for a string. Unknown fields are ignored: producers add fields over time.
* Each message target is planned now rather than at upload time: its expiration is parsed
  and its path rendered (``$instance``, ``$meetingType``) to safe room names, once; the job
  carries their :class:`~recstore.transfer.rooms.RoomPlan` (:attr:`TransferJob.rooms`).

Participants' names and e-mail addresses and the meeting description are personal data: they
are kept out of ``repr()`` and of every error message (errors name the field, never the value,
and pydantic is told not to echo input).
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from recstore.common.errors import PermanentJobError
from recstore.common.expiration import Expiration, parse_expiration
from recstore.common.paths import TargetPathError, node_name_problem, render_target_path
from recstore.common.source_rules import bucket_name_problem
from recstore.transfer.rooms import RoomPlan, merged

#: A malformed message may have many faults; the reason names this many, then counts the rest.
MAX_PROBLEMS = 5
_MAX_KEY_BYTES = 1024  # S3's limit for an object key, in UTF-8 bytes
# Matched with fullmatch: "$" would let a trailing newline through ("2014\n"), which splits
# log lines and reaches DRACOON notes.
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_MEETING_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def _storage_type(value: object) -> Literal["dracoon"]:
    # The wording is pinned by the worker and dev stack tests (dead-letter reasons). The type
    # that was sent is not repeated: the dead-letter queue keeps the whole message anyway.
    if value == "dracoon":
        return "dracoon"
    if isinstance(value, str):
        raise ValueError("is not a known storage (only 'dracoon')")
    raise ValueError("must be a string (only 'dracoon' is known)")


def _bucket(value: str) -> str:
    """S3's naming rules for general purpose buckets (legacy upper-case names are refused)."""
    problem = bucket_name_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _s3_key(value: str) -> str:
    """A key the transfer can name in DRACOON; the key itself is never shown in the error."""
    if not value:
        raise ValueError("must be a non-empty string")
    if len(value.encode("utf-8", "surrogatepass")) > _MAX_KEY_BYTES:
        raise ValueError(f"is longer than S3's {_MAX_KEY_BYTES} bytes")
    problem = node_name_problem(value.rsplit("/", 1)[-1])
    if problem is not None:
        raise ValueError(f"does not end in a file name DRACOON accepts: its last segment {problem}")
    return value


def _keys_once(value: tuple[str, ...]) -> tuple[str, ...]:
    """At least one key, each once: a producer that lists a key twice means one recording,
    copied and removed once.

    Checked after the items: min_length would count only the valid items and add a misleading
    "must not be empty" to a list whose items are wrong.
    """
    if not value:
        raise ValueError("must not be empty: a job needs at least one key")
    return tuple(dict.fromkeys(value))


def _hostname(value: str) -> str:
    if len(value) > 253 or not all(_LABEL.fullmatch(label) for label in value.split(".")):
        raise ValueError("is not a hostname (letters, digits and '-' in dot-separated labels)")
    return value


def _meeting_id(value: object) -> int | str:
    # An integer in the seed; some producers send a string. Either way it goes into the job id
    # and the upload marker, so a string must be a plain token.
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and _MEETING_ID.fullmatch(value):
        return value
    raise ValueError(
        "must be a non-negative integer or a token of letters, digits, '.', '_' and '-'"
    )


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must be a non-empty string")
    return value


def _expiration(value: object) -> Expiration | None:
    if value is None or isinstance(value, Expiration):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return parse_expiration(value)  # raises ExpirationError (a ValueError) with the reason


def _phrase(value: Expiration | None) -> str | None:
    """Written back as its canonical phrase (``1 year, 2 months`` as ``1 year 2 months``)."""
    return None if value is None else str(value)


StorageType = Annotated[Literal["dracoon"], PlainValidator(_storage_type)]
BucketName = Annotated[StrictStr, AfterValidator(_bucket)]
S3Key = Annotated[StrictStr, AfterValidator(_s3_key)]
Hostname = Annotated[StrictStr, AfterValidator(_hostname)]
MeetingId = Annotated[int | str, PlainValidator(_meeting_id)]
Text = Annotated[StrictStr, AfterValidator(_not_blank)]
ExpirationPhrase = Annotated[
    Expiration | None, BeforeValidator(_expiration), PlainSerializer(_phrase)
]


class _Part(BaseModel):
    model_config = ConfigDict(
        extra="ignore", frozen=True, populate_by_name=True, hide_input_in_errors=True
    )


class Person(_Part):
    """A participant; both fields are personal data and never shown."""

    name: StrictStr | None = Field(None, repr=False)
    email: StrictStr | None = Field(None, repr=False)


class MeetingType(_Part):
    id: StrictInt | None = None
    name: Text
    duration: StrictInt | None = None


class Meeting(_Part):
    id: MeetingId
    type: MeetingType
    user: Person | None = Field(None, repr=False)
    guest: Person | None = Field(None, repr=False)
    date: StrictStr | None = None
    description: StrictStr | None = Field(None, repr=False)


class TargetSpec(_Part):
    """One target named by the message: a path template as sent, and its expiration, parsed."""

    path: Text
    expiration: ExpirationPhrase = None


class DracoonExtra(_Part):
    targets: tuple[TargetSpec, ...] = ()

    @field_validator("targets", mode="before")
    @classmethod
    def _null_is_empty(cls, value: object) -> object:
        return () if value is None else value


class S3Extra(_Part):
    bucket: BucketName
    keys: Annotated[tuple[S3Key, ...], AfterValidator(_keys_once)]


class StorageExtra(_Part):
    dracoon: DracoonExtra | None = None
    aws_s3: S3Extra = Field(alias="aws.s3")


class Storage(_Part):
    type: StorageType
    extra: StorageExtra


class Instance(_Part):
    domain: Hostname


class TransferJob(_Part):
    """One job message. Build it with :func:`parse_job`; it cannot be changed afterwards."""

    storage: Storage
    meeting: Meeting
    instance: Instance
    _rooms: tuple[RoomPlan, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _plan_rooms(self) -> TransferJob:
        # $instance and $meetingType are known now, so a path that cannot be made safely is a
        # permanent fault of this message, found before any room is created.
        plans = []
        for index, target in enumerate(self.message_targets):
            try:
                segments = render_target_path(
                    target.path, instance=self.instance.domain, meeting_type=self.meeting.type.name
                )
            except TargetPathError as exc:
                raise ValueError(f"storage.extra.dracoon.targets[{index}].path: {exc}") from None
            plans.append(RoomPlan.of(target.path, segments, target.expiration))
        self._rooms = merged(plans)
        return self

    @property
    def rooms(self) -> tuple[RoomPlan, ...]:
        """The rooms the message's own targets name, planned at parse time; empty means "use
        the instance's configured targets"."""
        return self._rooms

    @property
    def job_id(self) -> str:
        """``<instance>/<meeting id>``: stable across redeliveries, names no person."""
        return f"{self.instance.domain}/{self.meeting.id}"

    @property
    def message_targets(self) -> tuple[TargetSpec, ...]:
        """The targets the message names itself, as parsed."""
        dracoon = self.storage.extra.dracoon
        return dracoon.targets if dracoon is not None else ()

    @property
    def bucket(self) -> str:
        return self.storage.extra.aws_s3.bucket

    @property
    def keys(self) -> tuple[str, ...]:
        return self.storage.extra.aws_s3.keys

    def to_json(self) -> str:
        """The message in seed 004's wire form (``"aws.s3"``; absent fields stay absent,
        expirations are written as their canonical phrases)."""
        return json.dumps(
            self.model_dump(mode="json", by_alias=True, exclude_none=True), ensure_ascii=False
        )


def parse_job(body: str | bytes) -> TransferJob:
    """The job in ``body``; :class:`PermanentJobError` naming what and where otherwise."""
    try:
        document: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise PermanentJobError("the message is not JSON") from None
    except RecursionError:
        # "[" * 200000: a fault of the message, not of the moment; retrying never helps.
        raise PermanentJobError("the message is JSON nested too deeply to read") from None
    if not isinstance(document, dict):
        raise PermanentJobError("the message is not a JSON object")
    try:
        return TransferJob.model_validate(document)
    except ValidationError as exc:
        raise PermanentJobError(_describe(exc)) from None


def file_name(key: str) -> str:
    """The DRACOON file name for S3 ``key``: its last path segment.

    ``sandbox/test-video.mp4`` gives ``test-video.mp4``. A key ending in ``/`` or in a name
    DRACOON refuses is a :class:`PermanentJobError`; the key is not repeated in the message.
    """
    name = key.rsplit("/", 1)[-1]
    problem = node_name_problem(name)
    if problem is not None:
        raise PermanentJobError(
            f"the S3 key does not end in a file name: its last segment {problem}"
        )
    return name


_MESSAGES = {
    "missing": "is missing",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "model_type": "must be an object",
    "dict_type": "must be an object",
    "tuple_type": "must be a list",
    "list_type": "must be a list",
}


def _describe(exc: ValidationError) -> str:
    """One line naming each fault by its path; input values are never included."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False, include_context=False):
        where, message = _where(error), _message(error)
        problems.append(f"{where}: {message}" if where else message)
    if len(problems) > MAX_PROBLEMS:
        rest = len(problems) - MAX_PROBLEMS
        problems = [*problems[:MAX_PROBLEMS], f"and {rest} more"]
    return "; ".join(problems)


def _where(error: ErrorDetails) -> str:
    """The path as one would write it in code: ``storage.extra["aws.s3"].keys[1]``."""
    where = ""
    for part in error["loc"]:
        if isinstance(part, int):
            where += f"[{part}]"
        elif "." in part:
            where += f'["{part}"]'
        else:
            where += f".{part}"
    return where.removeprefix(".")


def _message(error: ErrorDetails) -> str:
    if error["type"] == "value_error":
        return error["msg"].removeprefix("Value error, ")
    return _MESSAGES.get(error["type"], error["msg"])
