"""A stand-in for the configurator service: instance configuration by domain.

Seed schema (``recstore devstack seed configurator --file F``)::

    {"instances": {"acme.example.com": {"recordings": {"storage": "dracoon",
        "dracoon": {"parent-room-id": 1, "login": "...", "password": "...",
                    "encryption-password": "...",
                    "targets": [{"meetingTypeId": "*any*",
                                 "copyTo": [{"path": "$instance", "expiration": "1 year"}]}]}}}}}

A document may also use the seed's flat dotted keys; it is served back exactly as seeded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from recstore.devstack.faults import ADMIN_PREFIX, FaultInjector


class ConfiguratorStandIn:
    name = "configurator"

    def __init__(self, data_dir: Path) -> None:
        self.instances: dict[str, Any] = {}
        self.requests = 0
        self.faults = FaultInjector()
        self._base_url = ""

    def make_app(self) -> web.Application:
        app = web.Application()
        self.faults.install(app)
        app.router.add_get("/instances/{domain}", self._instance)
        app.router.add_post(ADMIN_PREFIX + "seed", self._seed)
        app.router.add_get(ADMIN_PREFIX + "state", self._state)
        return app

    def set_base_url(self, base_url: str) -> None:
        self._base_url = base_url

    def state_entries(self) -> dict[str, Any]:
        return {"configurator_url": self._base_url}

    async def _instance(self, request: web.Request) -> web.Response:
        self.requests += 1
        domain = request.match_info["domain"]
        if domain not in self.instances:
            return web.json_response({"error": f"unknown instance {domain}"}, status=404)
        return web.json_response(self.instances[domain])

    async def _seed(self, request: web.Request) -> web.Response:
        document = await request.json()
        instances = document.get("instances") if isinstance(document, dict) else None
        if not isinstance(instances, dict):
            return web.json_response({"error": '"instances" must be an object'}, status=400)
        self.instances.update(instances)
        return web.json_response({"instances": sorted(self.instances)})

    async def _state(self, request: web.Request) -> web.Response:
        return web.json_response({"instances": self.instances, "requests": self.requests})
