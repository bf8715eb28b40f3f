"""Fetch configuration files from S3 before the daemon starts (the container entrypoint's job).

The original service kept its configuration in a bucket and its entrypoint copied it in at
start; ``RECSTORE_CONFIG_S3_URI=s3://bucket/prefix/`` does the same. Credentials and endpoint
come from the standard AWS environment (``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT_URL`` ...) since
the configuration that would name them is what is being fetched.
"""

from __future__ import annotations

import asyncio
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from recstore.clients.aws import aws_client
from recstore.clients.aws_errors import aws_errors
from recstore.common.secret_files import private_directory, write_private
from recstore.settings import AwsSettings


def parse_s3_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"{uri!r} is not an s3://bucket/prefix URI")
    return parsed.netloc, parsed.path.lstrip("/")


async def fetch(uri: str, target: Path, region: str | None = None) -> list[Path]:
    """Copy every object under the prefix into ``target``, keeping relative paths.

    The files hold secrets: ``target`` must be this user's (made 0700 when new), and each file
    is created 0600 (:mod:`recstore.common.secret_files`); UnsafeDirectory (a ValueError) otherwise.
    """
    bucket, prefix = parse_s3_uri(uri)
    private_directory(target)
    settings = AwsSettings(region=region) if region else AwsSettings()
    written: list[Path] = []
    async with aws_client(settings, "s3") as s3:
        paginator = s3.get_paginator("list_objects_v2")
        with aws_errors("s3", f"listing of {uri}"):
            async for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    relative = PurePosixPath(item["Key"][len(prefix) :].lstrip("/"))
                    if not relative.parts or ".." in relative.parts:
                        continue
                    answer = await s3.get_object(Bucket=bucket, Key=item["Key"])
                    async with answer["Body"] as body:
                        data = await body.read()
                    path = target.joinpath(*relative.parts)
                    await asyncio.to_thread(write_private, path, data)
                    written.append(path)
    return written
