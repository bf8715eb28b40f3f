"""Fault injection shared by every stand-in of the dev stack.

Reliability tests need a remote that is slow, answers 5xx/429 or drops the connection, switched
on and off per test without restarting the process. Each stand-in mounts the same middleware and
the same admin route (``POST /_devstack/faults``), so a test drives every remote the same way.

Faults are chosen with a seeded random generator so a failing test can be replayed.

The same middleware counts the requests each stand-in served, by endpoint (``GET
/_devstack/requests``; ``POST`` there starts the count again): what benchmarks report as
requests per job.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

from aiohttp import web

ADMIN_PREFIX = "/_devstack/"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class FaultPlan:
    """What to do to the requests whose path matches ``path_pattern``.

    ``error_rate`` and ``drop_rate`` are probabilities in [0, 1]; ``error_status`` is one
    status or a list to draw from (``[503, 429]``: both kinds in one run; a 2xx answers success
    without the request being carried out); ``count`` limits how many
    faults are injected in all (``None``: no limit), which lets a test say "the next two uploads
    fail" deterministically with a rate of 1. ``cut_after`` lets the answer start and drops the
    connection after that many bytes of its body: a download broken off mid-way (honoured by
    the stand-ins that stream answers, see :meth:`FaultInjector.cut_point`). ``after``: the
    request is carried out first and only its answer is dropped or replaced, as when a proxy
    or the network loses the answer to a request the server did. ``damage_at`` flips one byte
    of the request's body at that offset on its way through (honoured by the S3 proxy, see
    :meth:`FaultInjector.damage_point`): a part damaged in flight, which only a checksum can
    tell.
    """

    latency_ms: int = 0
    error_rate: float = 0.0
    error_status: tuple[int, ...] = (503,)
    retry_after: int | None = None
    drop_rate: float = 0.0
    cut_after: int | None = None
    damage_at: int | None = None
    path_pattern: str = ""
    methods: frozenset[str] = frozenset()
    count: int | None = None
    seed: int = 0
    after: bool = False
    injected: int = 0
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FaultPlan:
        allowed = {
            "latency_ms",
            "error_rate",
            "error_status",
            "retry_after",
            "drop_rate",
            "cut_after",
            "damage_at",
            "path_pattern",
            "methods",
            "count",
            "seed",
            "after",
        }
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault option(s): {', '.join(sorted(unknown))}")
        plan = cls(
            latency_ms=int(data.get("latency_ms", 0)),
            error_rate=float(data.get("error_rate", 0.0)),
            error_status=_statuses(data.get("error_status", 503)),
            retry_after=None if data.get("retry_after") is None else int(data["retry_after"]),
            drop_rate=float(data.get("drop_rate", 0.0)),
            cut_after=None if data.get("cut_after") is None else int(data["cut_after"]),
            damage_at=None if data.get("damage_at") is None else int(data["damage_at"]),
            path_pattern=str(data.get("path_pattern", "")),
            methods=frozenset(m.upper() for m in data.get("methods", [])),
            count=None if data.get("count") is None else int(data["count"]),
            seed=int(data.get("seed", 0)),
            after=bool(data.get("after", False)),
        )
        re.compile(plan.path_pattern)
        for name in ("error_rate", "drop_rate"):
            if not 0.0 <= getattr(plan, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        plan._rng.seed(plan.seed)
        return plan

    def to_json(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency_ms,
            "error_rate": self.error_rate,
            "error_status": (
                self.error_status[0] if len(self.error_status) == 1 else list(self.error_status)
            ),
            "retry_after": self.retry_after,
            "drop_rate": self.drop_rate,
            "cut_after": self.cut_after,
            "damage_at": self.damage_at,
            "path_pattern": self.path_pattern,
            "methods": sorted(self.methods),
            "count": self.count,
            "seed": self.seed,
            "after": self.after,
            "injected": self.injected,
        }

    def applies_to(self, request: web.Request) -> bool:
        if request.path.startswith(ADMIN_PREFIX):
            return False
        if self.methods and request.method not in self.methods:
            return False
        if self.count is not None and self.injected >= self.count:
            return False
        return not self.path_pattern or re.search(self.path_pattern, request.path) is not None

    def draw(self, rate: float) -> bool:
        return rate > 0 and self._rng.random() < rate


def _statuses(value: Any) -> tuple[int, ...]:
    statuses = tuple(int(v) for v in (value if isinstance(value, list) else [value]))
    if not statuses:
        raise ValueError("error_status must name at least one status")
    return statuses


#: Path segments that name one object (numbers, upload ids, tokens): counted as one endpoint.
_ID_SEGMENT = re.compile(r"/(?:\d+|[0-9a-fA-F-]{16,}|[A-Za-z0-9_-]{32,})(?=/|$)")


def endpoint_of(request: web.Request) -> str:
    """``METHOD /path`` with ids in the path as ``{id}``: the endpoint a request counts for."""
    return f"{request.method} {_ID_SEGMENT.sub('/{id}', request.path)}"


class FaultInjector:
    """Holds the current plan and applies it to every non-admin request; counts them."""

    def __init__(
        self,
        error_body: Callable[[int], web.Response] | None = None,
        endpoint: Callable[[web.Request], str] = endpoint_of,
    ) -> None:
        self.plan = FaultPlan()
        self._error_body = error_body or _default_error
        self._endpoint = endpoint
        self.requests: Counter[str] = Counter()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(ADMIN_PREFIX):
            self.requests[self._endpoint(request)] += 1
        plan = self.plan
        if not plan.applies_to(request):
            return await handler(request)
        if plan.latency_ms:
            await asyncio.sleep(plan.latency_ms / 1000)
        done = await handler(request) if plan.after else None
        if plan.draw(plan.drop_rate):
            plan.injected += 1
            _drop(request)
        if plan.draw(plan.error_rate):
            plan.injected += 1
            statuses = plan.error_status
            # Only a list draws, so a seeded plan with one status replays as it always did.
            status = statuses[0] if len(statuses) == 1 else plan._rng.choice(statuses)
            # A 2xx answers success and does nothing: a server that loses what it accepted.
            response = web.Response(status=status) if status < 300 else self._error_body(status)
            if plan.retry_after is not None:
                response.headers["Retry-After"] = str(plan.retry_after)
            return response
        return done if done is not None else await handler(request)

    def cut_point(self, request: web.Request, length: int | None = None) -> int | None:
        """Body bytes to send before :meth:`cut`, when the plan cuts this answer short.

        The fault is counted here, as the answer starts, not when the cut happens: answers
        read at the same time (a client reading ahead) would otherwise all pass a ``count``
        of faults before the first of them is cut. An answer of a known ``length`` that ends
        before the cut point is not cut and not counted."""
        plan = self.plan
        if plan.cut_after is None or not plan.applies_to(request):
            return None
        if length is not None and length <= plan.cut_after:
            return None
        plan.injected += 1
        return plan.cut_after

    def damage_point(self, request: web.Request) -> int | None:
        """The offset in the request's body of the byte to flip, when the plan damages it (one
        injected fault)."""
        plan = self.plan
        if plan.damage_at is None or not plan.applies_to(request):
            return None
        plan.injected += 1
        return plan.damage_at

    def cut(self, request: web.Request) -> NoReturn:
        """Drop the connection mid-answer (at the :meth:`cut_point`, which counted it)."""
        _drop(request)

    async def handle_set(self, request: web.Request) -> web.Response:
        try:
            self.plan = FaultPlan.from_json(await request.json())
        except (ValueError, TypeError, re.error) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(self.plan.to_json())

    async def handle_get(self, request: web.Request) -> web.Response:
        return web.json_response(self.plan.to_json())

    async def requests_get(self, request: web.Request) -> web.Response:
        return web.json_response(dict(self.requests))

    async def requests_reset(self, request: web.Request) -> web.Response:
        counted, self.requests = dict(self.requests), Counter()
        return web.json_response(counted)

    def install(self, app: web.Application) -> None:
        """Mount the middleware and ``GET/POST /_devstack/faults`` on ``app``."""
        app.middlewares.append(self.middleware)
        app.router.add_get(ADMIN_PREFIX + "faults", self.handle_get)
        app.router.add_post(ADMIN_PREFIX + "faults", self.handle_set)
        app.router.add_get(ADMIN_PREFIX + "requests", self.requests_get)
        app.router.add_post(ADMIN_PREFIX + "requests", self.requests_reset)


def _drop(request: web.Request) -> NoReturn:
    """Close the socket with no more said, as a crashed proxy or a reset would."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    raise asyncio.CancelledError  # the transport is gone; stop the handler here


def _default_error(status: int) -> web.Response:
    return web.json_response({"code": status, "message": "injected fault"}, status=status)
