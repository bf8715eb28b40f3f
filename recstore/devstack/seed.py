"""``recstore devstack seed <system>``: load test data into a running dev stack.

S3 objects are written through the S3 API; every stand-in takes its own JSON document at
``POST <url>/_devstack/seed`` (schemas in docs/devstack.md and each stand-in's
module docstring), so tests and the CLI seed the same way.

S3 seed schema::

    {"objects": [{"key": "sandbox/test-video.mp4",
                  "bucket": "recordings",          # optional, default: the stack's first bucket
                  "text": "...",                    # one of: text, base64, file, size
                  "base64": "...",
                  "file": "/path/to/local/file",
                  "size": 104857600, "seed": 7,     # synthetic, reproducible bytes
                  "content_type": "video/mp4"}]}    # optional
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr

from recstore.clients.aws import aws_client
from recstore.clients.dracoon import DracoonAccount
from recstore.settings import AwsSettings

#: Objects above this size are written by multipart upload, a part at a time.
MULTIPART_THRESHOLD = 64 * 1024 * 1024
PART_SIZE = 16 * 1024 * 1024


def synthetic_chunks(size: int, seed: int, chunk: int = PART_SIZE) -> Iterator[bytes]:
    """Reproducible pseudo-random bytes (incompressible, like video), made a chunk at a time."""
    rng = random.Random(seed)
    left = size
    while left > 0:
        n = min(chunk, left)
        yield rng.randbytes(n)
        left -= n


def synthetic_sha256(size: int, seed: int) -> str:
    digest = hashlib.sha256()
    for part in synthetic_chunks(size, seed):
        digest.update(part)
    return digest.hexdigest()


def aws_settings_from_state(state: dict[str, Any]) -> AwsSettings:
    return AwsSettings(
        region=state["region"],
        s3_endpoint_url=state["s3_endpoint"],
        sqs_endpoint_url=state["sqs_endpoint"],
        access_key_id=state["aws_access_key_id"],
        secret_access_key=SecretStr(state["aws_secret_access_key"]),
    )


def dracoon_account_from_state(
    state: dict[str, Any], login: str | None = None, timeout: float = 60.0
) -> DracoonAccount:
    """The DRACOON stand-in's service account (``login`` None), or one of its seeded members."""
    if login is None or login == state["dracoon_login"]:
        login, password, encryption = (
            state["dracoon_login"],
            state["dracoon_password"],
            state["dracoon_encryption_password"],
        )
    else:
        member = next(m for m in state["dracoon_members"] if m["login"] == login)
        password, encryption = member["password"], member["encryption_password"]
    return DracoonAccount(
        state["dracoon_url"],
        login,
        SecretStr(password),
        SecretStr(encryption),
        state["dracoon_client_id"],
        SecretStr(state["dracoon_client_secret"]),
        timeout=timeout,
    )


async def seed_s3(state: dict[str, Any], data: dict[str, Any]) -> list[dict[str, Any]]:
    """Create the objects; returns key, bucket, size and SHA-256 of each for the caller."""
    objects = data.get("objects")
    if not isinstance(objects, list):
        raise ValueError('the S3 seed needs "objects": a list')
    created = []
    async with aws_client(aws_settings_from_state(state), "s3") as s3:
        for index, spec in enumerate(objects):
            created.append(await _put(s3, state, spec, index))
    return created


async def _put(s3: Any, state: dict[str, Any], spec: dict[str, Any], index: int) -> dict[str, Any]:
    where = f"objects[{index}]"
    key = spec.get("key")
    if not isinstance(key, str) or not key:
        raise ValueError(f"{where}.key: a non-empty string is required")
    bucket = spec.get("bucket") or state["bucket"]
    extra = {"ContentType": spec["content_type"]} if spec.get("content_type") else {}
    if "size" in spec:
        size, seed = int(spec["size"]), int(spec.get("seed", index))
        chunks: Iterator[bytes] = synthetic_chunks(size, seed)
    else:
        if "text" in spec:
            body = str(spec["text"]).encode()
        elif "base64" in spec:
            body = base64.b64decode(spec["base64"])
        elif "file" in spec:
            body = await asyncio.to_thread(Path(spec["file"]).read_bytes)
        else:
            raise ValueError(f"{where}: give one of text, base64, file or size")
        size, chunks = len(body), iter([body])
    digest = hashlib.sha256()
    if size <= MULTIPART_THRESHOLD:
        body = b"".join(chunks)
        digest.update(body)
        await s3.put_object(Bucket=bucket, Key=key, Body=body, **extra)
    else:
        upload = await s3.create_multipart_upload(Bucket=bucket, Key=key, **extra)
        parts = []
        for number, part in enumerate(chunks, start=1):
            digest.update(part)
            answer = await s3.upload_part(
                Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=number, Body=part
            )
            parts.append({"PartNumber": number, "ETag": answer["ETag"]})
        await s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
        )
    return {"bucket": bucket, "key": key, "size": size, "sha256": digest.hexdigest()}


async def seed_stand_in(state: dict[str, Any], system: str, data: dict[str, Any]) -> Any:
    """POST the document to the stand-in's seed route; its answer says what was created."""
    url = state.get(f"{system}_url")
    if not url:
        raise ValueError(f"the dev stack has no {system} stand-in (no {system}_url in the state)")
    base = str(url).split("/api")[0].rstrip("/")
    body = io.BytesIO(json.dumps(data).encode())  # seeds can be large: stream, do not inline
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{base}/_devstack/seed", data=body, headers={"Content-Type": "application/json"}
        ) as response,
    ):
        answer = await response.json(content_type=None)
        if response.status >= 400:
            raise ValueError(f"{system} refused the seed ({response.status}): {answer}")
        return answer
