"""SQS: receive (long poll), delete, change visibility, send, depth.

Only the queue protocol lives here; what a failure means for a job (retry later, dead-letter
queue) is the worker's rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from recstore.clients.aws_errors import aws_errors
from recstore.common.errors import RemoteError
from recstore.common.retry import RetryPolicy, call_with_retry

REMOTE = "sqs"
#: SQS caps a message attribute value; reasons are cut to stay well inside it.
MAX_ATTRIBUTE = 1024


@dataclass(frozen=True)
class Message:
    message_id: str
    receipt_handle: str = field(repr=False)
    body: str = field(repr=False)
    receive_count: int
    attributes: Mapping[str, str] = field(default_factory=dict)


class SqsQueue:
    """One queue by URL over an aiobotocore client the caller owns."""

    def __init__(self, client: Any, url: str, policy: RetryPolicy | None = None) -> None:
        self._client = client
        self.url = url
        self._policy = policy

    async def receive(
        self, max_messages: int, wait_seconds: int = 20, visibility_timeout: int | None = None
    ) -> list[Message]:
        """Long-poll for up to ``max_messages`` (1..10); an empty list when none came."""
        kwargs: dict[str, Any] = {
            "QueueUrl": self.url,
            "MaxNumberOfMessages": max(1, min(10, max_messages)),
            "WaitTimeSeconds": wait_seconds,
            "MessageSystemAttributeNames": ["ApproximateReceiveCount"],
            "MessageAttributeNames": ["All"],
        }
        if visibility_timeout is not None:
            kwargs["VisibilityTimeout"] = visibility_timeout
        # No retry here: the poll loop itself is the retry, with its own backoff and health.
        with aws_errors(REMOTE, "receive"):
            answer = await self._client.receive_message(**kwargs)
        return [_message(raw) for raw in answer.get("Messages", [])]

    async def delete(self, message: Message) -> None:
        async def call() -> None:
            with aws_errors(REMOTE, f"delete of message {message.message_id}"):
                await self._client.delete_message(
                    QueueUrl=self.url, ReceiptHandle=message.receipt_handle
                )

        await call_with_retry(call, remote=REMOTE, policy=self._policy)

    async def change_visibility(self, message: Message, seconds: int) -> None:
        async def call() -> None:
            with aws_errors(REMOTE, f"visibility change of message {message.message_id}"):
                await self._client.change_message_visibility(
                    QueueUrl=self.url,
                    ReceiptHandle=message.receipt_handle,
                    VisibilityTimeout=max(0, min(43200, seconds)),
                )

        await call_with_retry(call, remote=REMOTE, policy=self._policy)

    async def send(self, body: str, attributes: Mapping[str, str] | None = None) -> str:
        """Send ``body`` with string attributes; the new message's id."""
        attrs = {
            name: {"DataType": "String", "StringValue": value[:MAX_ATTRIBUTE] or "-"}
            for name, value in (attributes or {}).items()
        }

        async def call() -> str:
            with aws_errors(REMOTE, "send"):
                answer = await self._client.send_message(
                    QueueUrl=self.url, MessageBody=body, MessageAttributes=attrs
                )
            return str(answer["MessageId"])

        return await call_with_retry(call, remote=REMOTE, policy=self._policy)

    async def send_batch(self, bodies: Sequence[str]) -> None:
        """Send up to 10 bodies in one call; what SQS refuses is sent again, then raised.

        A batch call succeeds as a whole even when single messages fail, so the answer's
        ``Failed`` list is checked: those go again (with the retry helper's backoff) until
        none is left or the policy gives up.
        """
        if not bodies:
            return
        if len(bodies) > 10:
            raise ValueError("SQS takes at most 10 messages per batch")
        pending = {str(i): body for i, body in enumerate(bodies)}

        async def call() -> None:
            with aws_errors(REMOTE, "batch send"):
                answer = await self._client.send_message_batch(
                    QueueUrl=self.url,
                    Entries=[{"Id": i, "MessageBody": body} for i, body in pending.items()],
                )
            for done in answer.get("Successful", []):
                pending.pop(str(done["Id"]), None)
            failed = answer.get("Failed", [])
            if failed:
                first = failed[0]
                raise RemoteError(
                    f"sqs batch send: {len(failed)} message(s) refused ({first.get('Code')})",
                    remote=REMOTE,
                    code=str(first.get("Code")),
                    transient=not any(f.get("SenderFault") for f in failed),
                )

        await call_with_retry(call, remote=REMOTE, policy=self._policy)

    async def depth(self) -> tuple[int, int]:
        """(messages waiting, messages in flight), as SQS approximates them."""

        async def call() -> tuple[int, int]:
            with aws_errors(REMOTE, "attribute read"):
                answer = await self._client.get_queue_attributes(
                    QueueUrl=self.url,
                    AttributeNames=[
                        "ApproximateNumberOfMessages",
                        "ApproximateNumberOfMessagesNotVisible",
                    ],
                )
            attrs = answer["Attributes"]
            return (
                int(attrs["ApproximateNumberOfMessages"]),
                int(attrs["ApproximateNumberOfMessagesNotVisible"]),
            )

        return await call_with_retry(call, remote=REMOTE, policy=self._policy)


def _message(raw: dict[str, Any]) -> Message:
    attributes = {
        name: str(value.get("StringValue", ""))
        for name, value in raw.get("MessageAttributes", {}).items()
    }
    return Message(
        message_id=raw["MessageId"],
        receipt_handle=raw["ReceiptHandle"],
        body=raw.get("Body", ""),
        receive_count=int(raw.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
        attributes=attributes,
    )
