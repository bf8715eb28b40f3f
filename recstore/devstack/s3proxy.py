"""A pass-through proxy in front of moto's S3 that can fail on purpose.

moto has no switch for outages, so reliability tests point ``aws.s3EndpointUrl`` at this proxy
instead and drive it through ``/_devstack/faults`` like every stand-in: S3-style ``503
ServiceUnavailable``/``SlowDown`` answers, latency, dropped connections, bodies cut off mid-way.
Requests and answers are streamed through unchanged (moto does not check signatures, so the Host
may differ).
"""

from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp import web

from recstore.devstack.faults import FaultInjector

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
S3_CODES = {503: "ServiceUnavailable", 500: "InternalError", 429: "SlowDown"}


def s3_error(status: int) -> web.Response:
    code = S3_CODES.get(status, "InternalError")
    body = (
        "<?xml version='1.0' encoding='UTF-8'?>"
        f"<Error><Code>{code}</Code><Message>injected fault</Message></Error>"
    )
    return web.Response(status=status, body=body.encode(), content_type="application/xml")


class S3FaultProxy:
    name = "s3proxy"

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.faults = FaultInjector(error_body=s3_error)
        self.base_url = ""
        self._session: aiohttp.ClientSession | None = None

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=1024**3)
        self.faults.install(app)
        app.router.add_route("*", "/{tail:.*}", self.forward)
        app.on_cleanup.append(self._close)
        return app

    def set_base_url(self, base_url: str) -> None:
        self.base_url = base_url

    def state_entries(self) -> dict[str, Any]:
        return {"s3_proxy_url": self.base_url}

    async def _close(self, app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    async def forward(self, request: web.Request) -> web.StreamResponse:
        if self._session is None:
            self._session = aiohttp.ClientSession(auto_decompress=False)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        body = request.content if request.body_exists else None
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
            if upstream.content_length is not None:
                response.content_length = upstream.content_length
            await response.prepare(request)
            sent, cut = 0, self.faults.cut_point(request)
            async for piece in upstream.content.iter_chunked(1024 * 1024):
                if cut is not None and sent + len(piece) >= cut:
                    await response.write(piece[: cut - sent])
                    self.faults.cut(request)
                await response.write(piece)
                sent += len(piece)
            await response.write_eof()
            return response
