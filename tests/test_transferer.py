"""The transfer rules in-process, against moto's S3 and the DRACOON stand-in."""

from __future__ import annotations

import uuid
from typing import Any

from recstore.clients.aws import aws_client
from recstore.clients.s3 import S3Store
from recstore.devstack.seed import aws_settings_from_state, seed_s3
from recstore.transfer.instances import Target
from recstore.transfer.transferer import Transferer, TransferRequest
from recstore.workers.dracoon_destination import DracoonDestination
from tests.conftest import StackProcess
from tests.dracoon_helpers import client

NEWER = b"a newer recording, written while the job ran"


class Replacing(S3Store):
    """The real store, and a producer that writes a new recording under the key just before
    the job removes its source."""

    async def delete(self, bucket: str, key: str, etag: str | None = None) -> None:
        await self._client.put_object(Bucket=bucket, Key=key, Body=NEWER)
        await super().delete(bucket, key, etag=etag)


async def test_a_source_replaced_while_the_job_ran_is_kept(devstack: StackProcess) -> None:
    state: dict[str, Any] = devstack.state
    tag = uuid.uuid4().hex[:8]
    key = f"replaced-{tag}/talk.mp4"
    await seed_s3(state, {"objects": [{"key": key, "size": 1_000_003}]})
    async with aws_client(aws_settings_from_state(state), "s3") as s3, client(state) as dracoon:
        request = TransferRequest(
            job_id=f"acme.example/{tag}",
            instance="acme.example",
            meeting_type="talk",
            bucket="recordings",
            keys=[key],
            targets=[Target(f"Replaced {tag}")],
            parent_room_id=state["dracoon_parent_room_id"],
        )
        transferer = Transferer(Replacing(s3), 8 * 1024 * 1024, remove_after_transferring=True)
        report = await transferer.run(request, DracoonDestination(dracoon))
        assert [uploaded[0] for uploaded in report.uploaded] == [key]
        assert report.sources_removed == []
        kept = await S3Store(s3).head("recordings", key)
    assert kept.size == len(NEWER)  # the recording no target holds is still in S3
