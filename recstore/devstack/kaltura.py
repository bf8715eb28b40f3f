"""A Kaltura stand-in: the API v3 subset the archiver and the VidyoReplay syncer use.

The wire format is the real one, so the official ``kalturaapiclient`` works against it
unchanged: ``POST /api_v3/service/{service}/action/{action}`` (also ``/api_v3/`` and
``/api_v3/index.php`` with ``service``/``action`` parameters), JSON, form (``a[b]`` or ``a:b``)
or multipart bodies, ``format=1`` JSON or ``format=2`` XML answers, errors as
``KalturaAPIException`` with HTTP 200, KS v1/v2 checked against the admin secret (``INVALID_KS``
with ``ERR_DESC`` ``EXPIRED``/``INVALID_STR``/``INVALID_PARTNER``, as the server says it),
multirequests with ``{N:result:path}`` references and per-call errors, and the 10,000-row
paging cap. Actions: ``session.start``; ``media.list/count/get/add/addContent/updateContent/
updateThumbnail/update/delete/approveReplace/cancelReplace``; ``baseEntry.list/count/get/
getByIds/update/updateContent/delete/recycle/restoreRecycled``; ``flavorAsset.list/get/getUrl/
getByEntryId/delete``; ``uploadToken.add/get/list/upload/delete`` (chunked: ``resume``,
``resumeAt``, ``finalChunk``); ``metadataProfile.list/get/add/delete``;
``metadata.list/get/add/update/delete`` (XML checked against the XSD). Another action the
server has answers ``STAND_IN_ACTION_NOT_MODELLED``; one it lacks ``ACTION_DOES_NOT_EXISTS``.
Flavors are downloadable from the URL ``flavorAsset.getUrl`` returns.

Admin routes: ``POST /_devstack/seed``, ``GET /_devstack/state``, ``POST /_devstack/settings``
(``{"conversionDelay": seconds}``: how long new content "converts" before READY;
``{"entryReplacement": bool, "replacementApproval": bool}``: the partner's
FEATURE_ENTRY_REPLACEMENT (default on) and FEATURE_ENTRY_REPLACEMENT_APPROVAL (default off);
``{"conversionFails": N}``: the next N conversions end in ERROR_CONVERTING;
``{"recycleBin": bool}``: the partner's FEATURE_RECYCLE_BIN (default off);
``{"callFaults": [{"service", "action", "match", "code", "message", "count"}]}``: calls of
that action whose parameters (as JSON) contain ``match`` fail with ``code``, ``count`` times or
always, even inside a multirequest, for tests of per-call error handling),
``POST /_devstack/play`` (``{"entryId", "at"?}``: one more play, ``lastPlayedAt`` = ``at`` or
now), and ``GET/POST /_devstack/faults`` (see :mod:`recstore.devstack.faults`).

Seed document (``POST /_devstack/seed``)::

    {"entries": [{"id": "0_abc123"?,          # generated when missing
                  "name": "Lecture 1", "description": "",
                  "createdAt": 1500000000,    # unix seconds; updatedAt defaults to it
                  "lastPlayedAt": 1600000000 | null, "plays": 3, "views": 5,
                  "tags": "a,b" | ["a", "b"],
                  "categories": "MediaSpace>site>X" | ["..."],   # ">" separates levels
                  "status": 2,                # KalturaEntryStatus, default 2 (READY)
                  "moderationStatus": 6,      # default AUTO_APPROVED; 1/3 hidden by default
                  "displayInSearch": 1,       # default PARTNER_ONLY; -2 is the recycle bin
                  "dropAfterSearch": false,   # true: counted by the search, never shown
                  "userId": "alice", "creatorId": "alice", "referenceId": "guid"?,
                  "partnerSortValue": 0, "msDuration": 60000, "mediaType": 1,
                  "flavors": [{"id": "0_fl1"?, "isOriginal": true,
                               "sizeInBytes": 1048576 | "size": 1024,   # KB
                               "status": 2,   # KalturaFlavorAssetStatus, default 2
                               "content": "<base64>"?,   # else bytes synthesised from the size
                               "fileExt": "mp4", "flavorParamsId": 0,
                               "reportBytes": true}]}],   # false: only "size" (KB) answered
     "generate": {"count": 50000, "seed": 1}}

Without ``flavors`` an entry gets one READY original of 1 MiB; ``"flavors": []`` gives none.
``generate`` adds ``count`` entries, the same ones for the same ``seed`` (ids, names, tags,
plays; times are offsets into the eight years before the seed call): some never played, some
tagged ``archived_to_s3``/``flavors_deleted``, each with a READY original and a web flavor of
synthesised content. The answer is ``{"entries": [ids given explicitly], "generated": N}``.
An id seeded again replaces the entry and its flavors.

Filters read time values below ten years (315,360,000 s) as relative to now, as Kaltura does:
seed realistic unix times.
"""

from __future__ import annotations

import base64
import json
import random
import re
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from recstore.devstack.faults import ADMIN_PREFIX, FaultInjector
from recstore.devstack.kaltura_ks import KsError, Session, parse_ks
from recstore.devstack.kaltura_model import (
    DISPLAY_PARTNER_ONLY,
    ENTRY_READY,
    FLAVOR_READY,
    MODERATION_AUTO_APPROVED,
    WEB_FLAVOR_PARAMS,
    Entry,
    Flavor,
    Store,
    synthetic_chunks,
)
from recstore.devstack.kaltura_services import SERVER_ACTIONS, Services
from recstore.devstack.kaltura_wire import (
    FORMAT_JSON,
    FORMAT_XML,
    ApiError,
    as_str,
    invalid_ks,
    read_params,
    render,
)

PARTNER_ID = 1_234_567
ADMIN_SECRET = "devstack-kaltura-admin-secret"  # noqa: S105 (a stand-in's published test secret)
DEFAULT_FLAVOR_BYTES = 1 << 20
_REFERENCE = re.compile(r"\{(\d+):result(?::([^}]*))?\}")
_SERVICES = {
    "session",
    "media",
    "baseentry",
    "flavorasset",
    "uploadtoken",
    "metadata_metadata",
    "metadata_metadataprofile",
}


class KalturaStandIn:
    name = "kaltura"

    def __init__(
        self,
        data_dir: Path,
        *,
        partner_id: int = PARTNER_ID,
        admin_secret: str = ADMIN_SECRET,
        conversion_delay: float = 1.0,
    ) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(data_dir, partner_id)
        self.secret = admin_secret
        self.services = Services(self.store, admin_secret, conversion_delay)
        self.faults = FaultInjector()
        self.call_faults: list[dict[str, Any]] = []
        self.base_url = ""

    # -- contract with the dev stack --

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=1024**3)
        self.faults.install(app)
        r = app.router
        for path in (
            "/api_v3/service/{service}/action/{action}",
            "/api_v3/service/{service}",
            "/api_v3/",
            "/api_v3",
            "/api_v3/index.php",
        ):
            r.add_route("POST", path, self.api)
            r.add_route("GET", path, self.api)
        r.add_get(
            "/p/{pid}/sp/{sp}/download/entry_id/{entry_id}/flavor/{flavor_id}{tail:(/.*)?}",
            self.download,
        )
        r.add_post(ADMIN_PREFIX + "seed", self.seed)
        r.add_get(ADMIN_PREFIX + "state", self.state)
        r.add_post(ADMIN_PREFIX + "settings", self.settings)
        r.add_post(ADMIN_PREFIX + "play", self.play)
        app.on_cleanup.append(self._cancel_imports)
        return app

    def set_base_url(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.services.base_url = self.base_url

    def state_entries(self) -> dict[str, Any]:
        return {
            "kaltura_url": self.base_url,
            "kaltura_partner_id": self.store.partner_id,
            "kaltura_admin_secret": self.secret,
        }

    async def _cancel_imports(self, app: web.Application) -> None:
        for task in list(self.services.tasks):
            task.cancel()

    # -- the API --

    async def api(self, request: web.Request) -> web.Response:
        fmt = FORMAT_XML
        try:
            params = await read_params(request)
            fmt = as_str(params.get("format")) or FORMAT_XML
            service = request.match_info.get("service") or as_str(params.get("service")) or ""
            action = request.match_info.get("action") or as_str(params.get("action")) or ""
        except ApiError as exc:
            return render(exc, fmt)
        except ValueError as exc:
            return render(ApiError("INTERNAL_SERVERL_ERROR", str(exc)), fmt)
        fmt = FORMAT_JSON if fmt == FORMAT_JSON else FORMAT_XML
        if service.lower() == "multirequest":
            return render(await self.multirequest(params), fmt, multi=True)
        return render(await self.call(service, action, params), fmt)

    async def call(self, service: str, action: str, params: dict[str, Any]) -> Any:
        """One action's result, or the ``ApiError`` it ended with."""
        self.store.tick()
        try:
            key = (service.lower(), action.lower())
            if not service:
                raise ApiError(
                    "SERVICE_NOT_SPECIFIED", "Service name was not specified, please specify one"
                )
            if key[0] not in _SERVICES:
                raise ApiError(
                    "SERVICE_DOES_NOT_EXISTS",
                    f'Service "{service}" does not exists',
                    SRV_NAME=service,
                )
            if key not in self.services.table and key[1] in SERVER_ACTIONS.get(key[0], ()):
                raise ApiError(
                    "STAND_IN_ACTION_NOT_MODELLED",
                    f"{service}.{action} exists on the server; the stand-in does not model it",
                    ACTION_NAME=action,
                    SERVICE_NAME=service,
                )
            if key not in self.services.table:
                raise ApiError(
                    "ACTION_DOES_NOT_EXISTS",
                    f'Action "{action}" does not exists for service "{service}"',
                    ACTION_NAME=action,
                    SERVICE_NAME=service,
                )
            handler, admin_only = self.services.table[key]
            session = None if key == ("session", "start") else self._session(params)
            if admin_only and session is not None and not session.is_admin:
                raise ApiError(
                    "SERVICE_FORBIDDEN",
                    f"The access to service [{service}->{action}] is forbidden",
                    SERVICE=f"{service}->{action}",
                )
            self._call_fault(key, params)
            return await handler(params, session)
        except ApiError as exc:
            return exc

    def _call_fault(self, key: tuple[str, str], params: dict[str, Any]) -> None:
        """Fail this one call if a planned call fault matches it (see :meth:`settings`)."""
        if not self.call_faults:
            return
        text = json.dumps(params, default=str, ensure_ascii=False)
        for fault in self.call_faults:
            if fault["count"] is not None and fault["count"] <= 0:
                continue
            if (fault["service"], fault["action"]) != key or fault["match"] not in text:
                continue
            if fault["count"] is not None:
                fault["count"] -= 1
            raise ApiError(fault["code"], fault["message"])

    def _session(self, params: dict[str, Any]) -> Session:
        ks = as_str(params.get("ks"))
        if not ks:
            raise ApiError("MISSING_KS", "Missing KS, session not established")
        try:
            return parse_ks(ks, self.store.partner_id, self.secret)
        except KsError as exc:
            raise invalid_ks(ks, exc.code, exc.desc) from None

    async def multirequest(self, params: dict[str, Any]) -> list[Any]:
        """Run the numbered calls in order; each may fail alone (``KalturaFrontController``).

        Calls are numbered from 0 (Python client) or 1 (PHP client); ``{N:result:path}`` always
        counts executed calls from 1. A reference to a failed call or a missing field makes the
        referring call fail with ``MISSING_MANDATORY_PARAMETER``.
        """
        calls = {int(k): v for k, v in params.items() if str(k).isdigit() and isinstance(v, dict)}
        common = {k: v for k, v in params.items() if not str(k).isdigit()}
        results: list[Any] = []
        for index in range(min(calls, default=1), max(calls, default=0) + 1):
            call = calls.get(index)
            if call is None or "service" not in call or "action" not in call:
                break
            for name in ("ks", "partnerId", "clientTag"):
                if name in common and name not in call:
                    call[name] = common[name]
            try:
                resolved = _resolve(call, results)
            except ApiError as exc:
                results.append(exc)
                continue
            service = as_str(resolved.get("service")) or ""
            action = as_str(resolved.get("action")) or ""
            results.append(await self.call(service, action, resolved))
        return results

    # -- content --

    async def download(self, request: web.Request) -> web.StreamResponse:
        self.store.tick()
        flavor = self.store.flavors.get(request.match_info["flavor_id"])
        if (
            flavor is None
            or flavor.entry_id != request.match_info["entry_id"]
            or flavor.status != FLAVOR_READY
        ):
            raise web.HTTPNotFound()
        if flavor.path is not None:
            return web.FileResponse(flavor.path, headers={"Content-Type": "video/mp4"})
        response = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        response.content_length = flavor.size_bytes
        await response.prepare(request)
        if request.method != "HEAD":
            for chunk in synthetic_chunks(flavor.id, flavor.size_bytes):
                await response.write(chunk)
        await response.write_eof()
        return response

    # -- admin routes --

    async def seed(self, request: web.Request) -> web.Response:
        try:
            document = await request.json()
            specs = document.get("entries", [])
            latest: dict[
                str, tuple[Entry, dict[str, Any]]
            ] = {}  # an id given twice: the last one wins, as a re-seed would
            for spec in specs:
                entry = self._seed_entry(spec)
                latest.pop(entry.id, None)
                latest[entry.id] = (entry, spec)
            entries = [entry for entry, _ in latest.values()]
            self.store.load_bulk(entries)
            for entry, spec in latest.values():
                flavors = spec.get("flavors")
                if flavors is None:
                    flavors = [{"isOriginal": True, "sizeInBytes": DEFAULT_FLAVOR_BYTES}]
                for flavor in flavors:
                    self._seed_flavor(entry, flavor)
            created = [e.id for e in entries]
            generate = document.get("generate") or {}
            count = int(generate.get("count", 0))
            if count:
                self._generate(count, int(generate.get("seed", 0)))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"entries": created, "generated": count})

    def _seed_entry(self, data: dict[str, Any]) -> Entry:
        store = self.store
        created_at = int(data.get("createdAt", time.time()))
        tags = data.get("tags", "")
        cats = data.get("categories", [])
        entry = Entry(
            id=str(data.get("id") or store.new_entry_id()),
            name=str(data.get("name", "")),
            description=str(data.get("description", "")),
            created_at=created_at,
            updated_at=int(data.get("updatedAt", created_at)),
            seq=store.next_seq(),
            tags=",".join(tags) if isinstance(tags, list) else str(tags),
            categories=list(cats)
            if isinstance(cats, list)
            else [c.strip() for c in str(cats).split(",") if c.strip()],
            plays=int(data.get("plays", 0)),
            views=int(data.get("views", data.get("plays", 0))),
            last_played_at=None if data.get("lastPlayedAt") is None else int(data["lastPlayedAt"]),
            status=int(data.get("status", ENTRY_READY)),
            user_id=str(data.get("userId", data.get("creatorId", ""))),
            creator_id=str(data.get("creatorId", data.get("userId", ""))),
            reference_id=data.get("referenceId"),
            partner_sort_value=int(data.get("partnerSortValue", 0)),
            ms_duration=int(data.get("msDuration", 60_000)),
            media_type=int(data.get("mediaType", 1)),
            moderation_status=int(data.get("moderationStatus", MODERATION_AUTO_APPROVED)),
            display_in_search=int(data.get("displayInSearch", DISPLAY_PARTNER_ONLY)),
            drop_after_search=bool(data.get("dropAfterSearch", False)),
        )
        return entry

    def _seed_flavor(self, entry: Entry, spec: dict[str, Any]) -> None:
        content = spec.get("content")
        data = base64.b64decode(content) if content is not None else None
        if data is not None:
            size = len(data)
        elif "sizeInBytes" in spec:
            size = int(spec["sizeInBytes"])
        else:
            size = int(spec.get("size", 1024)) * 1024
        flavor = Flavor(
            id=str(spec.get("id") or self.store.new_flavor_id()),
            entry_id=entry.id,
            is_original=bool(spec.get("isOriginal", False)),
            size_bytes=size,
            status=int(spec.get("status", FLAVOR_READY)),
            created_at=entry.created_at,
            flavor_params_id=int(spec.get("flavorParamsId", 0 if spec.get("isOriginal") else 2)),
            file_ext=str(spec.get("fileExt", "mp4")),
            report_bytes=bool(spec.get("reportBytes", True)),
        )
        if data is not None:
            directory = self.store.data_dir / "content"
            directory.mkdir(parents=True, exist_ok=True)
            flavor.path = directory / flavor.id
            flavor.path.write_bytes(data)
        self.store.add_flavor(flavor)

    def _generate(self, count: int, seed: int) -> None:
        """``count`` reproducible entries, bulk-loaded (50,000 take well under a second)."""
        rng = random.Random(seed)
        store = self.store
        end = int(time.time())
        start = end - 8 * 365 * 86400
        users = [f"user{i:03d}" for i in range(200)]
        categories = [
            "MediaSpace>site>galleries>Lectures",
            "MediaSpace>site>galleries>Events",
            "MediaSpace>site>channels>Research",
        ]
        entries: list[Entry] = []
        for _ in range(count):
            created = rng.randint(start, end)
            played = None if rng.random() < 0.2 else rng.randint(created, end)
            tags = ["lecture"] if rng.random() < 0.5 else ["event"]
            if rng.random() < 0.1:
                tags.append("archived_to_s3")
                if rng.random() < 0.5:
                    tags.append("flavors_deleted")
            user = rng.choice(users)
            entry = Entry(
                id=store.new_entry_id(rng),
                name=f"Recording {rng.randint(1, 10**9)}",
                created_at=created,
                updated_at=created,
                seq=store.next_seq(),
                tags=",".join(tags),
                categories=[rng.choice(categories)],
                plays=0 if played is None else rng.randint(1, 500),
                last_played_at=played,
                user_id=user,
                creator_id=user,
                ms_duration=rng.randint(60, 7200) * 1000,
            )
            entries.append(entry)
        store.load_bulk(entries)
        for entry in entries:
            size = rng.randint(1 << 20, 1 << 31)
            for original in (True, False):
                store.add_flavor(
                    Flavor(
                        id=store.new_flavor_id(rng),
                        entry_id=entry.id,
                        is_original=original,
                        size_bytes=size if original else size // 3,
                        status=FLAVOR_READY,
                        created_at=entry.created_at,
                        flavor_params_id=0 if original else WEB_FLAVOR_PARAMS,
                    )
                )

    async def state(self, request: web.Request) -> web.Response:
        self.store.tick()
        store = self.store
        pid = store.partner_id
        return web.json_response(
            {
                "partnerId": pid,
                "entries": [
                    self.services.entry_api(store.entries[key[2]]) for key in store.by_created
                ],
                "flavors": [f.to_api(pid) for f in store.flavors.values()],
                "uploadTokens": [t.to_api(pid) for t in store.tokens.values()],
                "metadataProfiles": [p.to_api(pid) for p in store.profiles.values()],
                "metadata": [m.to_api(pid) for m in store.metadata.values()],
            }
        )

    async def settings(self, request: web.Request) -> web.Response:
        try:
            data = await request.json()
            if "conversionDelay" in data:
                self.services.conversion_delay = float(data["conversionDelay"])
            if "entryReplacement" in data:
                self.services.entry_replacement = bool(data["entryReplacement"])
            if "replacementApproval" in data:
                self.services.replacement_approval = bool(data["replacementApproval"])
            if "conversionFails" in data:
                self.services.conversion_fails = int(data["conversionFails"])
            if "recycleBin" in data:
                self.services.recycle_bin = bool(data["recycleBin"])
            if "callFaults" in data:
                self.call_faults = [_call_fault(spec) for spec in data["callFaults"] or []]
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        services = self.services
        return web.json_response(
            {
                "conversionDelay": services.conversion_delay,
                "entryReplacement": services.entry_replacement,
                "replacementApproval": services.replacement_approval,
                "conversionFails": services.conversion_fails,
                "recycleBin": services.recycle_bin,
                "callFaults": self.call_faults,
            }
        )

    async def play(self, request: web.Request) -> web.Response:
        try:
            data = await request.json()
            entry = self.store.entries[str(data["entryId"])]
            at = int(data.get("at") or time.time())
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        entry.plays += 1
        entry.views += 1
        entry.last_played_at = at
        return web.json_response(self.services.entry_api(entry))


def _call_fault(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "service": str(spec["service"]).lower(),
        "action": str(spec["action"]).lower(),
        "match": str(spec.get("match", "")),
        "code": str(spec.get("code", "INTERNAL_SERVERL_ERROR")),
        "message": str(spec.get("message", "Internal server error occurred")),
        "count": None if spec.get("count") is None else int(spec["count"]),
    }


def _resolve(call: dict[str, Any], results: list[Any]) -> dict[str, Any]:
    """``call`` with every ``{N:result:path}`` replaced by that value of result N (1-based)."""

    def value(match: re.Match[str]) -> str:
        index = int(match.group(1))
        path = [p for p in (match.group(2) or "").split(":") if p]
        found: Any = results[index - 1] if 0 < index <= len(results) else None
        for part in path:
            if isinstance(found, dict):
                found = found.get(part)
            elif isinstance(found, list) and part.isdigit() and int(part) < len(found):
                found = found[int(part)]
            else:
                found = None
        if found is None or isinstance(found, (dict, list, ApiError)) or found == "":
            raise ApiError(
                "MISSING_MANDATORY_PARAMETER",
                f'Missing parameter "{match.group(0)}"',
                PARAM_NAME=match.group(0),
            )
        return str(found)

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, str) and "{" in node:
            return _REFERENCE.sub(value, node)
        return node

    resolved: dict[str, Any] = walk(call)
    return resolved
