"""A pass-through proxy in front of moto's S3 that can fail on purpose, and that adds the
archive tiers of Intelligent-Tiering, which moto does not model.

moto has no switch for outages, so reliability tests point ``aws.s3EndpointUrl`` at this proxy
instead and drive it through ``/_devstack/faults`` like every stand-in: S3-style ``503
ServiceUnavailable``/``SlowDown`` answers, latency, dropped connections, bodies cut off mid-way.
Requests and answers are streamed through unchanged (moto does not check signatures, so the Host
may differ), unless the plan damages a request's body (``damage_at``: one byte flipped in
flight, as a faulty network card or proxy would, which only a checksum can tell).

``POST /_devstack/tiering`` ``{"bucket", "key", "tier", "restoreLookups"}`` moves an object
(path-style addressing) into ``ARCHIVE_ACCESS`` or ``DEEP_ARCHIVE_ACCESS``, as S3 does with an
``INTELLIGENT_TIERING`` object nobody read for months. From then on, as on S3 (its user guide,
"Restoring an archived object"): a HEAD says ``x-amz-archive-status``, a GET is refused with
``InvalidObjectState``, and a restore request brings it back to the Frequent Access tier for
good, so it must not carry ``Days`` (this proxy refuses one with ``InvalidArgument``; S3 only
documents that such a request fails). Nor is the ``Expedited`` tier offered for
``DEEP_ARCHIVE_ACCESS`` (refused the same way). The restore runs for ``restoreLookups`` HEADs
(default 1), saying ``x-amz-restore: ongoing-request="true"``; then the object is readable again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from recstore.devstack.faults import ADMIN_PREFIX, FaultInjector

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
    "host",
}
#: S3's error code for each status a fault injects (Amazon S3 API Reference, "Error responses":
#: 501 is NotImplemented, which botocore and recstore do not retry; InternalError is retried).
S3_CODES = {
    503: "ServiceUnavailable",
    501: "NotImplemented",
    500: "InternalError",
    429: "SlowDown",
    403: "AccessDenied",
}


ARCHIVE_TIERS = ("ARCHIVE_ACCESS", "DEEP_ARCHIVE_ACCESS")
#: Query keys of a GET that reads what S3 keeps beside an object's bytes, not the bytes.
SUBRESOURCES = frozenset({"acl", "attributes", "legal-hold", "retention", "tagging", "torrent"})


def s3_error(status: int, code: str | None = None, message: str = "injected fault") -> web.Response:
    code = code or S3_CODES.get(status, "InternalError")
    body = (
        "<?xml version='1.0' encoding='UTF-8'?>"
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    )
    return web.Response(status=status, body=body.encode(), content_type="application/xml")


def _replaces(request: web.Request) -> bool:
    """Whether the request puts a new object (or none) in the key's place: a delete, a PUT or
    copy, or a multipart upload's completion (not its parts)."""
    query = request.query.keys()
    if query & SUBRESOURCES:
        return False
    return (
        request.method == "DELETE"
        or (request.method == "PUT" and "uploadId" not in query)
        or (request.method == "POST" and "uploadId" in query)
    )


@dataclass
class ArchivedObject:
    """An Intelligent-Tiering object in an archive tier, and its restore once asked for."""

    tier: str
    restore_lookups: int
    restoring: bool = False


async def _damaged(content: aiohttp.StreamReader, at: int) -> AsyncIterator[bytes]:
    """The body as it comes, with the byte at offset ``at`` flipped (same length)."""
    seen = 0
    async for piece in content.iter_chunked(1024 * 1024):
        if seen <= at < seen + len(piece):
            flipped = bytearray(piece)
            flipped[at - seen] ^= 0xFF
            piece = bytes(flipped)
        seen += len(piece)
        yield piece


def aws_operation(request: web.Request) -> str:
    """The S3 or SQS operation a request through the proxy is, for counting: SQS's from its
    ``X-Amz-Target`` (the JSON protocol botocore speaks), S3's from method and query."""
    target = request.headers.get("X-Amz-Target", "")
    if target:
        return f"SQS {target.rsplit('.', 1)[-1]}"
    query = request.query.keys()
    if "uploadId" in query:
        steps = {
            "PUT": "UploadPart",
            "POST": "CompleteMultipartUpload",
            "DELETE": "AbortMultipartUpload",
            "GET": "ListParts",
        }
        return f"S3 {steps.get(request.method, request.method)}"
    if "uploads" in query:
        return "S3 CreateMultipartUpload"
    names = {"GET": "GetObject", "HEAD": "HeadObject", "PUT": "PutObject", "DELETE": "DeleteObject"}
    return f"S3 {names.get(request.method, request.method)}"


class S3FaultProxy:
    name = "s3proxy"

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.faults = FaultInjector(error_body=s3_error, endpoint=aws_operation)
        self.base_url = ""
        self._session: aiohttp.ClientSession | None = None
        self.archived: dict[tuple[str, str], ArchivedObject] = {}

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=1024**3)
        self.faults.install(app)
        app.router.add_post(ADMIN_PREFIX + "tiering", self.set_tier)
        app.router.add_route("*", "/{tail:.*}", self.serve)
        app.on_cleanup.append(self._close)
        return app

    def set_base_url(self, base_url: str) -> None:
        self.base_url = base_url

    def state_entries(self) -> dict[str, Any]:
        return {"s3_proxy_url": self.base_url}

    async def _close(self, app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    async def set_tier(self, request: web.Request) -> web.Response:
        doc = await request.json()
        tier = doc.get("tier")
        if tier not in ARCHIVE_TIERS or not doc.get("bucket") or not doc.get("key"):
            error = f"needs bucket, key and a tier of {', '.join(ARCHIVE_TIERS)}"
            return web.json_response({"error": error}, status=400)
        where = (str(doc["bucket"]), str(doc["key"]))
        self.archived[where] = ArchivedObject(tier, int(doc.get("restoreLookups", 1)))
        return web.json_response({"bucket": where[0], "key": where[1], "tier": tier})

    async def serve(self, request: web.Request) -> web.StreamResponse:
        """Answer for an object in an archive tier where S3 would differ from moto; else
        forward."""
        bucket, _, key = request.path.lstrip("/").partition("/")  # path-style, decoded
        archived = self.archived.get((bucket, key))
        if archived is None:
            return await self.forward(request)
        if request.method == "POST" and "restore" in request.query:
            return await self._restore(request, archived)
        if request.method == "GET" and not request.query.keys() & SUBRESOURCES:
            message = "The operation is not valid for the object's access tier"
            return s3_error(403, "InvalidObjectState", message)
        if request.method != "HEAD":
            if _replaces(request):
                del self.archived[(bucket, key)]  # a new object, or none, in its place
            return await self.forward(request)
        headers = {"x-amz-archive-status": archived.tier}
        if archived.restoring:
            archived.restore_lookups -= 1
            if archived.restore_lookups < 0:  # back in the Frequent Access tier
                del self.archived[(bucket, key)]
                return await self.forward(request)
            headers["x-amz-restore"] = 'ongoing-request="true"'
        return await self.forward(request, headers)

    async def _restore(self, request: web.Request, archived: ArchivedObject) -> web.Response:
        body = await request.read()
        if b"<Days>" in body:
            message = "Days is not accepted for objects in an Intelligent-Tiering archive tier"
            return s3_error(400, "InvalidArgument", message)
        if archived.tier == "DEEP_ARCHIVE_ACCESS" and b"<Tier>Expedited</Tier>" in body:
            message = "Expedited retrieval is not offered for the Deep Archive Access tier"
            return s3_error(400, "InvalidArgument", message)
        if archived.restoring:
            message = "Object restore is already in progress"
            return s3_error(409, "RestoreAlreadyInProgress", message)
        archived.restoring = True
        return web.Response(status=202)

    async def forward(
        self, request: web.Request, extra_headers: dict[str, str] | None = None
    ) -> web.StreamResponse:
        if self._session is None:
            self._session = aiohttp.ClientSession(auto_decompress=False)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        body: Any = request.content if request.body_exists else None
        damage = self.faults.damage_point(request)
        if body is not None and damage is not None:
            body = _damaged(request.content, damage)
        async with self._session.request(
            request.method,
            self.upstream + request.raw_path,
            headers=headers,
            data=body,
            allow_redirects=False,
        ) as upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for key, value in upstream.headers.items():
                if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                    response.headers[key] = value
            response.headers.update(extra_headers or {})
            if upstream.content_length is not None:
                response.content_length = upstream.content_length
            await response.prepare(request)
            sent, cut = 0, self.faults.cut_point(request, upstream.content_length)
            async for piece in upstream.content.iter_chunked(1024 * 1024):
                if cut is not None and sent + len(piece) >= cut:
                    await response.write(piece[: cut - sent])
                    self.faults.cut(request)
                await response.write(piece)
                sent += len(piece)
            await response.write_eof()
            return response
