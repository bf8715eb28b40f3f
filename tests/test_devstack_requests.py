"""The dev stack counts the requests each stand-in served, by endpoint (what bench/jobs.py and
bench/planner.py report as requests per job or run)."""

from __future__ import annotations

import aiohttp
from aiohttp.test_utils import make_mocked_request

from recstore.devstack.faults import endpoint_of
from recstore.devstack.s3proxy import aws_operation
from tests.conftest import StackProcess


def test_endpoints_name_ids_once_and_aws_operations_by_name() -> None:
    assert endpoint_of(make_mocked_request("GET", "/api/v4/nodes/123")) == "GET /api/v4/nodes/{id}"
    upload = "/api/v4/nodes/files/uploads/0f8fad5b-d9cb-469f-a165-70867728950e/s3"
    assert endpoint_of(make_mocked_request("PUT", upload)) == (
        "PUT /api/v4/nodes/files/uploads/{id}/s3"
    )
    sqs = make_mocked_request("POST", "/", headers={"X-Amz-Target": "AmazonSQS.ReceiveMessage"})
    assert aws_operation(sqs) == "SQS ReceiveMessage"
    part = make_mocked_request("PUT", "/recordings/a/b.mp4?uploadId=x&partNumber=2")
    assert aws_operation(part) == "S3 UploadPart"
    assert aws_operation(make_mocked_request("POST", "/recordings/k?uploads")) == (
        "S3 CreateMultipartUpload"
    )
    assert aws_operation(make_mocked_request("HEAD", "/recordings/k")) == "S3 HeadObject"


async def test_a_stand_in_counts_its_requests_until_asked_to_start_again(
    devstack: StackProcess,
) -> None:
    url = devstack.state["dracoon_url"]
    async with aiohttp.ClientSession() as http:
        await http.post(f"{url}/_devstack/requests")
        for _ in range(2):
            async with http.get(f"{url}/api/v4/public/system/info") as answer:
                assert answer.status == 200
        async with http.post(f"{url}/_devstack/requests") as answer:
            counted = await answer.json()
        async with http.get(f"{url}/_devstack/requests") as answer:
            after = await answer.json()
    assert counted == {"GET /api/v4/public/system/info": 2}  # admin calls are not counted
    assert after == {}
