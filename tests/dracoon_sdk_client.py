"""The official DRACOON Python SDK (PyPI ``dracoon`` 1.13.0) as a second client of the stand-in.

Run by ``tests/test_dracoon_sdk.py`` with the interpreter of ``.venv-sdk`` (``make sdk-venv``),
not imported by the suite: the SDK pins httpx<0.28, cryptography<43 and tenacity<9 and pulls in
the obsolete ``asyncio`` package from PyPI, which recstore's own environment must not take.

Usage: ``python tests/dracoon_sdk_client.py '<json>'`` with ``url``, ``client_id``,
``client_secret``, ``login``, ``password``, ``encryption_password`` and ``action``:

- ``upload``: ``file`` (a path) into ``room_id``; prints ``{"id": <node id>}``;
- ``download``: node ``file_id`` into ``target`` (a folder); prints ``{"sha256": ...}``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from dracoon import DRACOON, OAuth2ConnectionType  # type: ignore[import-not-found]


async def main(args: dict[str, Any]) -> dict[str, Any]:
    sdk = DRACOON(
        base_url=args["url"],
        client_id=args["client_id"],
        client_secret=args["client_secret"],
        raise_on_err=True,
    )
    await sdk.connect(
        OAuth2ConnectionType.password_flow, username=args["login"], password=args["password"]
    )
    try:
        await sdk.get_keypair(secret=args["encryption_password"])
        if args["action"] == "upload":
            done = await sdk.upload(file_path=args["file"], target_parent_id=args["room_id"])
            node = getattr(done, "node", None) or done
            return {"id": node.id}
        if args["action"] == "download":
            target = Path(args["target"])
            await sdk.download(target_path=str(target), source_node_id=args["file_id"])
            (written,) = list(target.iterdir())
            return {"sha256": hashlib.sha256(written.read_bytes()).hexdigest()}
        raise ValueError(f"unknown action {args['action']!r}")
    finally:
        await sdk.logout()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.loads(sys.argv[1])))))
