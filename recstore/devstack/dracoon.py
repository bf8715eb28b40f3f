"""A DRACOON stand-in: the API subset recstore uses, with the server's JSON shapes, status
codes and error bodies (``tests/data/specs/dracoon-api-v4.26.7.json``; tests validate against it).

OAuth under ``/oauth``, the API under ``/api``: password and refresh-token grants, the user's
account and key pairs, rooms (nested, encrypted or not, inherited members), node listing, both
upload channels (S3 direct upload with presigned part URLs served here, and the legacy
``Content-Range`` channel), expiration, resolution strategies, missing file keys, file keys,
downloads; and what other DRACOON tools ask (the Python SDK's login: ``/config/info/*``, the
auth provider lists, ``/user/ping``; node search; room encryption). Every endpoint is in
``docs/fidelity.md`` with the spec's operation and the checks it applies. Uploaded bytes are
kept on disk. Fault injection through ``/_devstack/faults``.

Seed document (``recstore devstack seed dracoon --file F``)::

    {"users": [{"login": "alice", "password": "...", "firstName": "Alice", "lastName": "A",
                "keyPairs": [{"version": "A" | "RSA-4096", "encryptionPassword": "..."}]}],
     "rooms": [{"path": "Recordings/Sales", "encrypted": true,
                "members": [{"login": "alice", "permissions": ["read", "create", "manage"]}]}]}

Rooms on a path are created as needed (sub-rooms inherit their parent's members). Key pairs
are generated with 10,000 PBKDF2 iterations (the SDKs' older count) around RSA keys made
ahead (:mod:`recstore.devstack.seed_keys`; distinct within a stand-in, shared by the
stand-ins of a process), so seeding is quick. The answer lists the ids of what was created.
Other admin routes: ``GET /_devstack/state`` (users,
nodes, file keys, tokens granted per login, and each upload with its S3 steps in the order
they arrived), ``POST /_devstack/settings`` (``useS3Storage``, ``tokenLifetime`` seconds,
``quotaBytes``, ``finishSeconds``: how long a completed S3 upload stays "finishing";
``failFinishing``: names whose next S3 assembly ends in "error" (504 -90027, S3 unreachable);
``expireTokens``: every token issued so far is refused from now on).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import hashlib
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web
from cryptography.hazmat.primitives.asymmetric import rsa

from recstore.crypto import generate_user_keypair, new_rsa_key
from recstore.devstack import seed_keys
from recstore.devstack.dracoon_model import (
    ALL_PERMISSIONS,
    KEY_PAIR_OF,
    Model,
    Node,
    Upload,
    User,
    iso,
)
from recstore.devstack.faults import ADMIN_PREFIX, FaultInjector

CLIENT_ID = "recstore-devstack"
CLIENT_SECRET = "devstack-client-secret"  # noqa: S105 (a stand-in's published test secret)
SERVICE_LOGIN = "recstore-svc"
SEED_ITERATIONS = 10_000
#: The RSA keys of seeded key pairs in this process, by key pair version: the bundled ones
#: (:mod:`recstore.devstack.seed_keys`), then those made here. The n-th key pair of a version
#: seeded into a stand-in wraps the n-th key: distinct within a stand-in, made at most once
#: per process (a test session starts a stand-in per test), as an RSA-4096 key costs 0.2-1.5
#: CPU-s to make and the three default users took one to three seconds per stand-in.
_SEED_KEYS: dict[str, list[rsa.RSAPrivateKey]] = {}
MIN_PART = 5 * 1024 * 1024
MAX_PAGE_MISSING_KEYS = 100
#: Upload states of a channel still open (or still being finished); "done" and "error" end one.
OPEN = ("transfer", "finishing")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_body(status: int, message: str, error_code: int | None = None) -> dict[str, Any]:
    """DRACOON's ``ErrorResponse``: an error answer's body, and an upload's ``errorDetails``."""
    body: dict[str, Any] = {"code": status, "message": message, "debugInfo": message}
    if error_code is not None:
        body["errorCode"] = error_code
    return body


def error(status: int, message: str, error_code: int | None = None) -> web.Response:
    return web.json_response(error_body(status, message, error_code), status=status)


class ApiError(Exception):
    def __init__(self, status: int, message: str, error_code: int | None = None) -> None:
        super().__init__(message)
        self.details = error_body(status, message, error_code)
        self.response = web.json_response(self.details, status=status)


#: Names DRACOON refuses, with or without an extension (spec, "Node naming convention").
RESERVED_NAMES = frozenset(
    ["CON", "PRN", "AUX", "NUL"]
    + [f"COM{i}" for i in range(1, 10)]
    + [f"LPT{i}" for i in range(1, 10)]
)
MAX_NOTES = 255


def check_name(name: object) -> str:
    """A node name as DRACOON takes it (spec, "Node naming convention" of createRoom,
    createFileUploadChannel and the completions): at most 150 characters, none of
    ``\\ < > : " | ? * /``, no leading ``-`` or trailing ``.``, not a reserved device name;
    else 400 -40755 "Bad node name"."""
    if (
        not isinstance(name, str)
        or not name.strip()
        or len(name) > 150
        or re.search(r'[\\<>:"|?*/]', name)
        or name.startswith("-")
        or name.endswith(".")
        or name.split(".", 1)[0].upper() in RESERVED_NAMES
    ):
        raise ApiError(400, "Bad node name", -40755)
    return name


def check_notes(notes: object) -> str:
    """Notes are limited to 255 characters (spec); longer ones are 400 -80007."""
    text = "" if notes is None else str(notes)
    if len(text) > MAX_NOTES:
        raise ApiError(400, "Maximum allowed length is exceeded", -80007)
    return text


def check_expiration(expire_at: object) -> None:
    """An expiration must be a date-time in the future: -80006 "Expiration date is in the
    past" (spec, createFileUploadChannel); one that is not a date, -80000."""
    try:
        when = datetime.fromisoformat(str(expire_at).replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, "Mandatory fields cannot be empty: expireAt", -80000) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if when <= datetime.now(UTC):
        raise ApiError(400, "Expiration date is in the past", -80006)


def range_of(query: Mapping[str, str], default_limit: int, most: int) -> tuple[int, int]:
    """``offset`` and ``limit`` of a listing: not numbers, or negative, are 400 -80024
    "Invalid range parameters" (spec, requestNodes and requestMissingFileKeys)."""
    try:
        offset = int(query.get("offset") or 0)
        limit = int(query.get("limit") or default_limit)
    except ValueError:
        raise ApiError(400, "Invalid range parameters", -80024) from None
    if offset < 0 or limit < 0:
        raise ApiError(400, "Invalid range parameters", -80024)
    return offset, min(limit or default_limit, most)


def _part_signature(upload: Upload, number: int, size: int) -> str:
    """What a presigned part URL carries: like S3's, valid for one part of one size only."""
    return hashlib.sha256(f"{upload.token}:{number}:{size}".encode()).hexdigest()[:16]


class DracoonStandIn:
    name = "dracoon"

    def __init__(self, data_dir: Path) -> None:
        self.model = Model(data_dir)
        self.faults = FaultInjector(error_body=lambda status: error(status, "injected fault"))
        self.base_url = ""
        self.use_s3_storage = True
        self.finish_seconds = 0.05  # a real server takes a moment; clients must poll
        #: Names whose next S3 assembly ends in "error" (S3 unreachable while DRACOON
        #: assembles); by name, so an assembly left running by another test takes none.
        self.failing_finishes: set[str] = set()
        self.token_lifetime = 3600.0
        self.tokens: dict[str, tuple[int, float]] = {}
        #: Tokens granted per login, for ``/_devstack/state``: how often a client logged in.
        self.tokens_issued: collections.Counter[str] = collections.Counter()
        self.refresh_tokens: dict[str, int] = {}
        self.download_tokens: dict[str, int] = {}
        self.passwords: dict[str, str] = {}
        #: Key pairs seeded so far, by version: the index of the next one in ``_SEED_KEYS``.
        self._seeded_keys: collections.Counter[str] = collections.Counter()
        self._seed_defaults()

    # -- contract with the dev stack --

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=1024**3, middlewares=[self._errors])
        self.faults.install(app)
        r = app.router
        r.add_post("/oauth/token", self.oauth_token)
        r.add_post("/oauth/revoke", self.oauth_revoke)
        api = "/api/v4"
        r.add_get(f"{api}/public/system/info", self.system_info)
        r.add_get(f"{api}/public/system/info/auth/ad", self.no_auth_providers)
        r.add_get(f"{api}/public/system/info/auth/openid", self.no_auth_providers)
        r.add_get(f"{api}/config/info/defaults", self.config_defaults)
        r.add_get(f"{api}/config/info/general", self.config_general)
        r.add_get(f"{api}/config/info/infrastructure", self.config_infrastructure)
        r.add_get(f"{api}/config/info/policies/algorithms", self.config_algorithms)
        r.add_get(f"{api}/user/ping", self.ping)
        r.add_get(f"{api}/user/account", self.account)
        r.add_get(f"{api}/user/account/keypair", self.get_keypair)
        r.add_post(f"{api}/user/account/keypair", self.set_keypair)
        r.add_get(f"{api}/user/account/keypairs", self.get_keypairs)
        r.add_get(f"{api}/nodes", self.list_nodes)
        r.add_get(f"{api}/nodes/missingFileKeys", self.missing_file_keys)
        r.add_get(f"{api}/nodes/search", self.search_nodes)
        r.add_post(f"{api}/nodes/rooms", self.create_room)
        r.add_put(f"{api}/nodes/rooms/{{room_id}}/encrypt", self.encrypt_room)
        r.add_get(f"{api}/nodes/rooms/{{room_id}}/users", self.room_users)
        r.add_post(f"{api}/nodes/files/uploads", self.create_upload)
        r.add_get(f"{api}/nodes/files/uploads/{{upload_id}}", self.upload_status)
        r.add_delete(f"{api}/nodes/files/uploads/{{upload_id}}", self.cancel_upload)
        r.add_post(f"{api}/nodes/files/uploads/{{upload_id}}/s3_urls", self.s3_urls)
        r.add_put(f"{api}/nodes/files/uploads/{{upload_id}}/s3", self.complete_s3)
        r.add_post(f"{api}/uploads/{{token}}", self.legacy_chunk)
        r.add_put(f"{api}/uploads/{{token}}", self.legacy_complete)
        r.add_post(f"{api}/nodes/files/keys", self.set_file_keys)
        r.add_get(f"{api}/nodes/files/{{file_id}}/user_file_key", self.user_file_key)
        r.add_post(f"{api}/nodes/files/{{file_id}}/downloads", self.create_download)
        r.add_get(f"{api}/nodes/{{node_id}}", self.get_node)
        r.add_delete(f"{api}/nodes/{{node_id}}", self.remove_node)
        r.add_put("/_s3/{upload_id}/{part}", self.s3_put_part)
        r.add_get("/_download/{token}", self.download)
        r.add_post(ADMIN_PREFIX + "seed", self.seed)
        r.add_get(ADMIN_PREFIX + "state", self.state)
        r.add_post(ADMIN_PREFIX + "settings", self.settings)
        return app

    def set_base_url(self, base_url: str) -> None:
        self.base_url = base_url

    def state_entries(self) -> dict[str, Any]:
        service = self.model.user_by_login(SERVICE_LOGIN)
        assert service is not None
        parent = next(n for n in self.model.nodes.values() if n.name == "Recordings")
        members = [
            {
                "login": u.login,
                "password": self.passwords[u.login],
                "encryption_password": self.passwords[u.login + ":enc"],
                "key_pairs": sorted(u.key_pairs),
            }
            for u in self.model.users.values()
            if u.login != SERVICE_LOGIN
        ]
        return {
            "dracoon_url": self.base_url,
            "dracoon_client_id": CLIENT_ID,
            "dracoon_client_secret": CLIENT_SECRET,
            "dracoon_login": SERVICE_LOGIN,
            "dracoon_password": self.passwords[SERVICE_LOGIN],
            "dracoon_encryption_password": self.passwords[SERVICE_LOGIN + ":enc"],
            "dracoon_parent_room_id": parent.id,
            "dracoon_members": members,
        }

    # -- seeding --

    def _seed_defaults(self) -> None:
        self.apply_seed(
            {
                "users": [
                    {
                        "login": SERVICE_LOGIN,
                        "password": "svc-" + secrets.token_hex(8),
                        "firstName": "recstore",
                        "lastName": "service",
                        "keyPairs": [
                            {
                                "version": "RSA-4096",
                                "encryptionPassword": "svc-enc-" + secrets.token_hex(6),
                            }
                        ],
                    },
                    {
                        "login": "alice",
                        "password": "alice-" + secrets.token_hex(6),
                        "keyPairs": [
                            {
                                "version": "A",
                                "encryptionPassword": "alice-enc-" + secrets.token_hex(6),
                            }
                        ],
                    },
                    {
                        "login": "bob",
                        "password": "bob-" + secrets.token_hex(6),
                        "keyPairs": [
                            {
                                "version": "RSA-4096",
                                "encryptionPassword": "bob-enc-" + secrets.token_hex(6),
                            }
                        ],
                    },
                ],
                "rooms": [
                    {
                        "path": "Recordings",
                        "encrypted": True,
                        "members": [
                            {"login": SERVICE_LOGIN, "permissions": list(ALL_PERMISSIONS)},
                            {"login": "alice", "permissions": ["read"]},
                            {"login": "bob", "permissions": ["read"]},
                        ],
                    }
                ],
            }
        )

    def _seed_key(self, version: str) -> rsa.RSAPrivateKey:
        """The RSA key for this stand-in's next seeded key pair of ``version`` (``_SEED_KEYS``)."""
        made = _SEED_KEYS.setdefault(version, list(seed_keys.bundled(version)))
        index = self._seeded_keys[version]
        self._seeded_keys[version] += 1
        if index == len(made):
            made.append(new_rsa_key(version))
        return made[index]

    def apply_seed(self, document: dict[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = {"users": {}, "rooms": {}}
        for spec in document.get("users", []):
            login = spec["login"]
            user = self.model.user_by_login(login) or self.model.add_user(
                login, spec["password"], spec.get("firstName", ""), spec.get("lastName", "")
            )
            user.password = spec["password"]
            self.passwords[login] = spec["password"]
            for pair in spec.get("keyPairs", []):
                private, public = generate_user_keypair(
                    pair["version"],
                    pair["encryptionPassword"],
                    iterations=SEED_ITERATIONS,
                    key=self._seed_key(pair["version"]),
                )
                user.key_pairs[pair["version"]] = (private, public)
                self.passwords[login + ":enc"] = pair["encryptionPassword"]
            created["users"][login] = user.id
        admin = self.model.user_by_login(SERVICE_LOGIN)
        for spec in document.get("rooms", []):
            parent: Node | None = None
            for name in [s for s in spec["path"].split("/") if s]:
                existing = next(
                    (
                        n
                        for n in self.model.children(parent.id if parent else None)
                        if n.name == name
                    ),
                    None,
                )
                parent = existing or self.model.add_room(
                    name, parent, admin.id if admin else 0, bool(spec.get("encrypted")), True
                )
            assert parent is not None
            if spec.get("encrypted"):
                parent.encrypted = True
            for member in spec.get("members", []):
                found = self.model.user_by_login(member["login"])
                if found is None:
                    raise ValueError(f"room {spec['path']}: unknown member {member['login']}")
                parent.members[found.id] = set(member.get("permissions", ["read"]))
            created["rooms"][spec["path"]] = parent.id
        return created

    # -- plumbing --

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """API errors become their answers. A field missing from a body or a value of the
        wrong type (what a handler's ``body["x"]`` or ``int(...)`` trips on) is the client's
        error, answered as DRACOON does, 400 -80000, never a 500."""
        try:
            return await handler(request)
        except ApiError as exc:
            return exc.response
        except (KeyError, ValueError, TypeError) as exc:
            if not request.path.startswith("/api/"):
                raise
            reason = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            return error(400, f"Bad request: {reason}", -80000)

    def _user(self, request: web.Request) -> User:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip() or request.headers.get(
            "X-Sds-Auth-Token", ""
        )
        entry = self.tokens.get(token)
        if entry is None or entry[1] < time.time():
            raise ApiError(401, "Unauthorized: invalid or expired token", -10006)
        return self.model.users[entry[0]]

    def _node(self, node_id: Any, kind: str | None = None) -> Node:
        try:
            node = self.model.nodes[int(node_id)]
        except (KeyError, ValueError, TypeError):
            raise ApiError(404, "Node not found", -41000) from None
        if kind and node.type != kind:
            raise ApiError(404, f"{kind.capitalize()} not found", -41000)
        return node

    def _require(self, room: Node | None, user: User, permission: str) -> None:
        if permission not in self.model.permissions(room, user.id):
            raise ApiError(403, f"Forbidden: {permission} permission needed", -40000)

    async def _json(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "Bad request: body is not JSON", -80000) from None
        if not isinstance(body, dict):
            raise ApiError(400, "Bad request: body must be an object", -80000)
        return body

    def node_json(self, node: Node, user: User | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "id": node.id,
            "type": node.type,
            "name": node.name,
            "parentId": node.parent_id if node.parent_id is not None else 0,
            "parentPath": self.model.path_of(self.model.nodes[node.parent_id]) + "/"
            if node.parent_id
            else "/",
            "createdAt": iso(node.created_at),
            "updatedAt": iso(node.created_at),
            "isEncrypted": node.encrypted,
            "size": node.size,
            "inheritPermissions": node.inherit,
        }
        if node.type == "file":
            doc["notes"] = node.notes
            doc["hash"] = ""
            if node.expire_at:
                doc["expireAt"] = node.expire_at
        if user is not None:
            perms = self.model.permissions(self.model.room_of(node), user.id)
            doc["permissions"] = {p: p in perms for p in ALL_PERMISSIONS}
        return doc

    # -- OAuth and account -----------------------------------------------------------------

    @staticmethod
    def _client_refused(request: web.Request, form: Mapping[str, Any]) -> web.Response | None:
        """The OAuth client authenticates with HTTP Basic or with ``client_id`` and
        ``client_secret`` in the form body (RFC 6749 2.3.1 allows both; the Python SDK's login,
        refresh and logout send them in the body); else 401 ``invalid_client``."""
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                client = base64.b64decode(auth.removeprefix("Basic ")).decode()
            except ValueError:
                client = ""
        else:
            client = f"{form.get('client_id', '')}:{form.get('client_secret', '')}"
        if client == f"{CLIENT_ID}:{CLIENT_SECRET}":
            return None
        return web.json_response(
            {"error": "invalid_client", "error_description": "Bad client credentials"},
            status=401,
        )

    async def oauth_revoke(self, request: web.Request) -> web.Response:
        """RFC 7009: the token (access or refresh) stops working; 200 whether or not it was
        valid, as 2.2 says; the Python SDK's logout (``client/__init__.py`` ``logout``)."""
        form = await request.post()
        if (refused := self._client_refused(request, form)) is not None:
            return refused
        token = str(form.get("token", ""))
        self.tokens.pop(token, None)
        self.refresh_tokens.pop(token, None)
        return web.Response(status=200)

    async def oauth_token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if (refused := self._client_refused(request, form)) is not None:
            return refused
        grant = form.get("grant_type")
        if grant == "password":
            user = self.model.user_by_login(str(form.get("username", "")))
            if user is None or user.password != form.get("password"):
                return web.json_response(
                    {"error": "invalid_grant", "error_description": "Bad credentials"}, status=400
                )
        elif grant == "refresh_token":
            user_id = self.refresh_tokens.pop(str(form.get("refresh_token", "")), None)
            if user_id is None:
                return web.json_response(
                    {"error": "invalid_grant", "error_description": "Invalid refresh token"},
                    status=400,
                )
            user = self.model.users[user_id]
        else:
            return web.json_response(
                {"error": "unsupported_grant_type", "error_description": str(grant)}, status=400
            )
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        self.tokens[access] = (user.id, time.time() + self.token_lifetime)
        self.refresh_tokens[refresh] = user.id
        self.tokens_issued[user.login] += 1
        return web.json_response(
            {
                "access_token": access,
                "token_type": "bearer",
                "refresh_token": refresh,
                "expires_in": int(self.token_lifetime),
                "scope": "all",
            }
        )

    async def system_info(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "languageDefault": "en",
                "hideLoginInputFields": False,
                "s3Hosts": [],
                "s3EnforceDirectUpload": False,
                "useS3Storage": self.use_s3_storage,
                "authMethods": [
                    {"name": "basic", "isEnabled": True, "isDefault": True, "priority": 1}
                ],
            }
        )

    # -- what an ordinary DRACOON client asks at login (the Python SDK's DRACOON.connect) --

    async def no_auth_providers(self, request: web.Request) -> web.Response:
        """``requestActiveDirectoryAuthInfo`` / ``requestOpenIdAuthInfo``: none configured."""
        return web.json_response({"items": []})

    async def config_defaults(self, request: web.Request) -> web.Response:
        """``requestSystemDefaultsInfo`` (authenticated)."""
        self._user(request)
        return web.json_response(
            {
                "languageDefault": "en",
                "downloadShareDefaultExpirationPeriod": 0,
                "uploadShareDefaultExpirationPeriod": 0,
                "fileDefaultExpirationPeriod": 0,
                "nonmemberViewerDefault": False,
                "hideLoginInputFields": False,
            }
        )

    async def config_general(self, request: web.Request) -> web.Response:
        """``requestGeneralSettingsInfo``: client-side encryption on, the storage in use."""
        self._user(request)
        return web.json_response(
            {
                "sharePasswordSmsEnabled": False,
                "cryptoEnabled": True,
                "emailNotificationButtonEnabled": False,
                "eulaEnabled": False,
                "weakPasswordEnabled": False,
                "useS3Storage": self.use_s3_storage,
                "s3TagsEnabled": False,
                "homeRoomsActive": False,
                "mediaServerEnabled": False,
            }
        )

    async def config_infrastructure(self, request: web.Request) -> web.Response:
        """``requestInfrastructurePropertiesInfo``."""
        self._user(request)
        return web.json_response(
            {
                "smsConfigEnabled": False,
                "mediaServerConfigEnabled": False,
                "s3DefaultRegion": "eu-central-1",
                "s3EnforceDirectUpload": False,
                "isDracoonCloud": False,
                "tenantUuid": "00000000-0000-4000-8000-000000000000",
            }
        )

    async def config_algorithms(self, request: web.Request) -> web.Response:
        """``requestAlgorithms``: the versions the stand-in's crypto knows, RSA-4096 preferred
        (a server moving its customers to 4096-bit keys marks ``A`` DISCOURAGED)."""
        self._user(request)

        def info(version: str, description: str, status: str) -> dict[str, str]:
            return {"version": version, "description": description, "status": status}

        return web.json_response(
            {
                "fileKeyAlgorithms": [
                    info("RSA-4096/AES-256-GCM", "RSA-4096 with AES-256-GCM", "REQUIRED"),
                    info("A", "RSA-2048 with AES-256-GCM", "DISCOURAGED"),
                ],
                "keyPairAlgorithms": [
                    info("RSA-4096", "RSA-4096", "REQUIRED"),
                    info("A", "RSA-2048", "DISCOURAGED"),
                ],
            }
        )

    async def ping(self, request: web.Request) -> web.Response:
        """``pingUser``: 200 text/plain while the token is good, 401 otherwise."""
        user = self._user(request)
        return web.Response(text=f"{iso(time.time())}|{user.login}", content_type="text/plain")

    async def account(self, request: web.Request) -> web.Response:
        user = self._user(request)
        return web.json_response(
            {
                "id": user.id,
                "customerId": 1,
                "userName": user.login,
                "login": user.login,
                "firstName": user.first_name,
                "lastName": user.last_name,
                "isLocked": False,
                "hasManageableRooms": True,
                "userRoles": {"items": []},
                "language": "en",
                "authData": {"method": "basic", "login": user.login},
                "lockStatus": 2,
                "needsToChangePassword": False,
                "isEncryptionEnabled": bool(user.key_pairs),
            }
        )

    async def get_keypair(self, request: web.Request) -> web.Response:
        user = self._user(request)
        version = request.query.get("version") or next(iter(sorted(user.key_pairs)), None)
        if version not in user.key_pairs:
            raise ApiError(404, "Key pair not found", -70020)
        private, public = user.key_pairs[version]
        return web.json_response({"privateKeyContainer": private, "publicKeyContainer": public})

    async def get_keypairs(self, request: web.Request) -> web.Response:
        user = self._user(request)
        return web.json_response(
            [
                {"privateKeyContainer": p, "publicKeyContainer": q}
                for p, q in user.key_pairs.values()
            ]
        )

    async def set_keypair(self, request: web.Request) -> web.Response:
        user = self._user(request)
        body = await self._json(request)
        private, public = body.get("privateKeyContainer"), body.get("publicKeyContainer")
        if not isinstance(private, dict) or not isinstance(public, dict):
            raise ApiError(400, "Bad request: key pair containers required", -80000)
        version = str(public.get("version"))
        if version in user.key_pairs:
            raise ApiError(409, "Key pair already exists", -70021)
        user.key_pairs[version] = (private, public)
        return web.Response(status=204)

    # -- nodes and rooms --

    async def get_node(self, request: web.Request) -> web.Response:
        user = self._user(request)
        node = self._node(request.match_info["node_id"])
        self._require(self.model.room_of(node), user, "read")
        return web.json_response(self.node_json(node, user))

    async def remove_node(self, request: web.Request) -> web.Response:
        """``removeNode``: a file needs ``delete`` in its room; a room, ``manage`` above it."""
        user = self._user(request)
        node = self._node(request.match_info["node_id"])
        if node.type == "room":
            parent = self.model.nodes.get(node.parent_id) if node.parent_id is not None else None
            self._require(parent or node, user, "manage")
        else:
            self._require(self.model.room_of(node), user, "delete")
        self.model.remove(node)
        return web.Response(status=204)

    async def list_nodes(self, request: web.Request) -> web.Response:
        user = self._user(request)
        wanted_parent = request.query.get("parent_id") or "0"
        parent_id = 0 if wanted_parent == "0" else self._node(wanted_parent).id
        offset, limit = range_of(request.query, 500, 500)
        wanted = request.query.get("filter", "")
        nodes = [
            n
            for n in sorted(
                self.model.children(parent_id or None), key=lambda n: (n.type != "room", n.name)
            )
            if self.model.permissions(self.model.room_of(n), user.id)
            and self._matches(n, user, wanted)
        ]
        page = nodes[offset : offset + limit]
        return web.json_response(
            {
                "range": {"offset": offset, "limit": limit, "total": len(nodes)},
                "items": [self.node_json(n, user) for n in page],
            }
        )

    def _matches(self, node: Node, user: User, expression: str) -> bool:
        """``FIELD:OP:VALUE[:VALUE...]`` filters joined by ``|`` (all must hold); several
        values of ``eq`` are alternatives (spec, ``requestNodes``: ``type:eq:room:folder``).
        Fields the stand-in does not model are passed over."""
        for clause in filter(None, expression.split("|")):
            field_name, _, rest = clause.partition(":")
            operator, _, value = rest.partition(":")
            if field_name == "name":  # a name holds no ':', so the value is the rest
                values = [value]
                actual = node.name
            elif field_name in ("type", "encrypted", "perm"):
                values = value.split(":")
                actual = ""
            else:
                continue
            if field_name == "type":
                actual = node.type
            elif field_name == "encrypted":
                actual = str(node.encrypted).lower()
            elif field_name == "perm":
                perms = self.model.permissions(self.model.room_of(node), user.id)
                if operator == "eq" and not perms & set(values):
                    return False
                continue
            if operator == "eq" and actual not in values:
                return False
            if operator == "cn" and not any(v.lower() in actual.lower() for v in values):
                return False
        return True

    async def create_room(self, request: web.Request) -> web.Response:
        """``createRoom``: a bad name is -40755, notes over 255 characters -80007; a name
        taken is 409 with no errorCode ("Node already exists"). A top-level room cannot
        inherit (-40017); a room that does not inherit needs an admin in ``adminIds``
        (-40006), who are its admins (the creator is not, unless listed)."""
        user = self._user(request)
        body = await self._json(request)
        name = check_name(body.get("name"))
        check_notes(body.get("notes"))
        parent = self._node(body["parentId"], "room") if body.get("parentId") else None
        if parent is not None:
            self._require(parent, user, "manage")
        inherit = body.get("inheritPermissions")
        inherit = parent is not None if inherit is None else bool(inherit)
        if parent is None and inherit:
            raise ApiError(
                400, "Inheritance of permissions cannot be enabled for top level rooms", -40017
            )
        admins = [self._user_by_id(uid) for uid in body.get("adminIds") or []]
        if not inherit and not admins and not body.get("adminGroupIds"):
            raise ApiError(400, "At least one non-expiring admin user / group required", -40006)
        if any(n.name == name for n in self.model.children(parent.id if parent else None)):
            raise ApiError(409, "Node already exists")
        room = self.model.add_room(name, parent, user.id, False, inherit, [a.id for a in admins])
        return web.json_response(self.node_json(room, user), status=201)

    async def search_nodes(self, request: web.Request) -> web.Response:
        """``searchNodes``: nodes below ``parent_id`` (0: every room the user sees) down to
        ``depth_level`` (0: children only, -1: all), whose names contain ``search_string``
        (``*`` a wildcard; ``*`` alone matches all), with the same filters as listing. The
        stand-in compares names case-insensitively; ``sort`` is not modelled (name order)."""
        user = self._user(request)
        query = request.query
        search = query.get("search_string")
        if not search:
            raise ApiError(400, "Mandatory fields cannot be empty: search_string", -80000)
        offset, limit = range_of(query, 500, 500)
        try:
            depth = int(query.get("depth_level") or 0)
        except ValueError:
            raise ApiError(400, "Invalid number: depth_level", -80002) from None
        wanted_parent = query.get("parent_id") or "0"
        start = None if wanted_parent == "0" else self._node(wanted_parent, "room").id
        pattern = re.compile(
            ".*".join(re.escape(part) for part in search.lower().split("*"))
            if "*" in search
            else f".*{re.escape(search.lower())}.*"
        )
        found: list[Node] = []
        level = [(start, 0)]
        while level:
            parent_id, at = level.pop(0)
            for node in sorted(self.model.children(parent_id), key=lambda n: n.name):
                if not self.model.permissions(self.model.room_of(node), user.id):
                    continue
                if pattern.fullmatch(node.name.lower()) and self._matches(
                    node, user, query.get("filter", "")
                ):
                    found.append(node)
                if node.type == "room" and (depth < 0 or at < depth):
                    level.append((node.id, at + 1))
        page = found[offset : offset + limit]
        return web.json_response(
            {
                "range": {"offset": offset, "limit": limit, "total": len(found)},
                "items": [self.node_json(n, user) for n in page],
            }
        )

    async def encrypt_room(self, request: web.Request) -> web.Response:
        """``encryptRoom``: a room administrator (manage) turns client-side encryption on or
        off for an empty top-level room; its (empty) sub-rooms follow. A room holding files
        is -40008 (on) or -40003 (off); a user without a key pair turning it on, -70020; a
        sub-room (the spec: "only empty rooms at the top level"; it names no code) 400 -80000.
        """
        user = self._user(request)
        room = self._node(request.match_info["room_id"], "room")
        self._require(room, user, "manage")
        body = await self._json(request)
        if not isinstance(body.get("isEncrypted"), bool):
            raise ApiError(400, "Mandatory fields cannot be empty: isEncrypted", -80000)
        on = body["isEncrypted"]
        if room.parent_id is not None:
            raise ApiError(400, "Only rooms at the top level can be encrypted", -80000)
        below = self._below(room)
        if any(n.type == "file" for n in below):
            if on:
                raise ApiError(400, "Room with files cannot be encrypted", -40008)
            raise ApiError(400, "Room with files cannot be unencrypted", -40003)
        if on and not user.key_pairs:
            raise ApiError(403, "User does not have a keypair", -70020)
        for node in [room, *below]:
            node.encrypted = on
        return web.json_response(self.node_json(room, user))

    def _below(self, room: Node) -> list[Node]:
        nodes = []
        for child in self.model.children(room.id):
            nodes.append(child)
            if child.type == "room":
                nodes.extend(self._below(child))
        return nodes

    def _user_by_id(self, user_id: Any) -> User:
        try:
            return self.model.users[int(user_id)]
        except (KeyError, ValueError, TypeError):
            raise ApiError(404, "User not found", -70501) from None

    async def room_users(self, request: web.Request) -> web.Response:
        user = self._user(request)
        room = self._node(request.match_info["room_id"], "room")
        self._require(room, user, "read")
        items = []
        for uid, perms in sorted(self.model.members(room).items()):
            member = self.model.users[uid]
            item: dict[str, Any] = {
                "userInfo": member.info(),
                "isGranted": True,
                "permissions": {p: p in perms for p in ALL_PERMISSIONS},
                "id": member.id,
                "login": member.login,
                "displayName": f"{member.first_name} {member.last_name}",
                "email": f"{member.login}@devstack.invalid",
            }
            if member.key_pairs:
                item["publicKeyContainer"] = member.key_pairs[sorted(member.key_pairs)[0]][1]
            items.append(item)
        return web.json_response(
            {"range": {"offset": 0, "limit": len(items), "total": len(items)}, "items": items}
        )

    # -- uploads --

    async def create_upload(self, request: web.Request) -> web.Response:
        user = self._user(request)
        body = await self._json(request)
        parent = self._node(body.get("parentId"), "room")
        self._require(parent, user, "create")
        name = check_name(body.get("name"))
        notes = check_notes(body.get("notes"))
        size = body.get("size")
        quota = self.model.quota_bytes
        if quota is not None and self.model.used_bytes() + int(size or 0) > quota:
            raise ApiError(507, "Insufficient storage: quota exceeded", -40200)
        expiration = body.get("expiration") or {}
        if expiration.get("enableExpiration"):
            check_expiration(expiration.get("expireAt"))
        upload_id = secrets.token_hex(12)
        token = secrets.token_urlsafe(18)
        upload = Upload(
            id=upload_id,
            token=token,
            user_id=user.id,
            parent_id=parent.id,
            name=name,
            size=None if size is None else int(size),
            expire_at=expiration.get("expireAt") if expiration.get("enableExpiration") else None,
            notes=notes,
            direct_s3=bool(body.get("directS3Upload")),
            path=self.model.data_dir / "uploads" / upload_id,
        )
        upload.path.touch()
        self.model.uploads[upload_id] = upload
        return web.json_response(
            {
                "uploadUrl": f"{self.base_url}/api/v4/uploads/{token}",
                "uploadId": upload_id,
                "token": token,
            },
            status=201,
        )

    def _upload(self, upload_id: str, user: User | None = None) -> Upload:
        upload = self.model.uploads.get(upload_id)
        if upload is None or (user is not None and upload.user_id != user.id):
            raise ApiError(404, "Upload not found", -20501)
        return upload

    def _upload_by_token(self, token: str) -> Upload:
        upload = next((u for u in self.model.uploads.values() if u.token == token), None)
        if upload is None:
            raise ApiError(404, "Upload not found", -20501)
        return self._open(upload)

    @staticmethod
    def _open(upload: Upload) -> Upload:
        """The upload, while its channel takes data: a completion closes it, and DRACOON
        refuses parts, part URLs and a second completion from then on (-20503, "Upload
        channel is closed"; the spec's error tables for these operations)."""
        if upload.status != "transfer":
            raise ApiError(400, "Upload channel is closed", -20503)
        return upload

    async def upload_status(self, request: web.Request) -> web.Response:
        user = self._user(request)
        upload = self._upload(request.match_info["upload_id"], user)
        doc: dict[str, Any] = {"status": upload.status}
        if upload.node_id is not None:
            doc["node"] = self.node_json(self.model.nodes[upload.node_id], user)
        if upload.error is not None:
            doc["errorDetails"] = upload.error
        return web.json_response(doc)

    async def cancel_upload(self, request: web.Request) -> web.Response:
        user = self._user(request)
        upload = self._upload(request.match_info["upload_id"], user)
        self._discard(upload)
        return web.Response(status=204)

    def _discard(self, upload: Upload) -> None:
        self.model.uploads.pop(upload.id, None)
        self._free(upload)

    @staticmethod
    def _free(upload: Upload) -> None:
        """Remove the bytes an upload received (its file, or its S3 parts)."""
        upload.path.unlink(missing_ok=True)
        for path, _ in upload.parts.values():
            path.unlink(missing_ok=True)

    async def s3_urls(self, request: web.Request) -> web.Response:
        user = self._user(request)
        upload = self._open(self._upload(request.match_info["upload_id"], user))
        body = await self._json(request)
        first, last = int(body["firstPartNumber"]), int(body["lastPartNumber"])
        if not 1 <= first <= last <= 10000:
            raise ApiError(400, "Invalid part numbers", -80000)
        size = int(body["size"])
        urls = [
            {
                "url": f"{self.base_url}/_s3/{upload.id}/{n}"
                f"?X-Amz-Signature={_part_signature(upload, n, size)}",
                "partNumber": n,
            }
            for n in range(first, last + 1)
        ]
        upload.steps.extend(f"url {n}" for n in range(first, last + 1))
        return web.json_response({"urls": urls}, status=201)

    async def s3_put_part(self, request: web.Request) -> web.Response:
        upload = self.model.uploads.get(request.match_info["upload_id"])
        if upload is None:
            return web.Response(status=404, text="<Error><Code>NoSuchUpload</Code></Error>")
        number = int(request.match_info["part"])
        signed = _part_signature(upload, number, request.content_length or 0)
        if request.query.get("X-Amz-Signature") != signed:
            # S3 signs a presigned part URL for the Content-Length it was asked for
            error = "<Error><Code>SignatureDoesNotMatch</Code></Error>"
            return web.Response(status=403, text=error)
        path = upload.path.with_name(f"{upload.id}.part{number}")
        # S3's ETag of a part is opaque to clients, who only hand it back at completion: a
        # random one keeps that contract without hashing every byte (the stand-in is the sink
        # of the transfer benchmarks, and an MD5 per part made it the slowest link).
        etag = secrets.token_hex(16)
        with path.open("wb") as out:
            async for chunk in request.content.iter_any():
                out.write(chunk)
        upload.parts[number] = (path, etag)
        upload.steps.append(f"part {number}")
        return web.Response(status=200, headers={"ETag": f'"{etag}"'})

    async def complete_s3(self, request: web.Request) -> web.Response:
        user = self._user(request)
        upload = self._open(self._upload(request.match_info["upload_id"], user))
        body = await self._json(request)
        parts = sorted(body.get("parts") or [], key=lambda p: int(p["partNumber"]))
        if not parts:  # S3 completes no multipart upload without a part; an empty file has one
            raise ApiError(400, "Mandatory fields cannot be empty: parts", -80000)
        for index, part in enumerate(parts):
            stored = upload.parts.get(int(part["partNumber"]))
            if stored is None or stored[1] != str(part["partEtag"]).strip('"'):
                raise ApiError(400, "Invalid ETag", -80045)
            if index < len(parts) - 1 and stored[0].stat().st_size < MIN_PART:
                raise ApiError(
                    400, "Part too small (all but the last part must be at least 5 MB)", -80045
                )
        self._prepare_completion(upload, user, body)  # a conflict known now is answered now
        upload.status = "finishing"
        asyncio.get_running_loop().create_task(
            self._assemble(upload, [int(p["partNumber"]) for p in parts], user, body)
        )
        return web.Response(status=202)

    async def _assemble(
        self, upload: Upload, numbers: list[int], user: User, body: dict[str, Any]
    ) -> None:
        """Finish in the background, as DRACOON does; the status then reads "done" or "error".

        The name is resolved when the file is made: another upload may have finished under
        the same name meanwhile, and a room never holds two files of one name.
        """
        await asyncio.sleep(self.finish_seconds)
        if upload.name in self.failing_finishes:  # spec, completeS3FileUpload: 504 -90027
            self.failing_finishes.discard(upload.name)
            upload.status = "error"
            upload.error = error_body(504, "S3 connection failed", -90027)
            self._free(upload)
            return
        try:
            name, replace = self._prepare_completion(upload, user, body)
        except ApiError as exc:  # the channel is closed; its status stays readable
            upload.status, upload.error = "error", exc.details
            self._free(upload)
            return
        parts = [upload.parts[number][0] for number in numbers]
        self._finish(upload, user, name, replace, body, parts)

    def _prepare_completion(
        self, upload: Upload, user: User, body: dict[str, Any]
    ) -> tuple[str, Node | None]:
        parent = self.model.nodes[upload.parent_id]
        name = check_name(body.get("fileName") or upload.name)
        if parent.encrypted and not body.get("fileKey"):
            raise ApiError(400, "File key required for an encrypted room", -40763)
        strategy = body.get("resolutionStrategy", "autorename")
        siblings = {n.name: n for n in self.model.children(parent.id)}
        replace = None
        if name in siblings:
            if strategy == "fail":
                raise ApiError(409, "File with the same name already exists", -40010)
            if strategy == "overwrite":
                replace = siblings[name]
            else:
                stem, dot, ext = name.rpartition(".")
                stem, ext = (stem, dot + ext) if dot else (name, "")
                counter = 1
                while f"{stem} ({counter}){ext}" in siblings:
                    counter += 1
                name = f"{stem} ({counter}){ext}"
        return name, replace

    def _finish(
        self,
        upload: Upload,
        user: User,
        name: str,
        replace: Node | None,
        body: dict[str, Any],
        parts: list[Path] | None = None,
    ) -> Node:
        parent = self.model.nodes[upload.parent_id]
        if replace is not None:
            self.model.nodes.pop(replace.id, None)
            for key in [k for k in self.model.file_keys if k[0] == replace.id]:
                del self.model.file_keys[key]
        node = Node(self.model.next_id(), "file", name, parent.id, parent.encrypted, user.id)
        node.notes, node.expire_at = upload.notes, upload.expire_at
        node.data = self.model.data_dir / "files" / str(node.id)
        if parts is None:
            node.size = upload.path.stat().st_size
            upload.path.replace(node.data)
        else:
            node.data.mkdir(parents=True, exist_ok=True)
            for index, part in enumerate(parts):
                node.parts.append(part.replace(node.data / f"{index:05d}"))
            node.size = sum(part.stat().st_size for part in node.parts)
            upload.path.unlink(missing_ok=True)
        self.model.nodes[node.id] = node
        file_key = body.get("fileKey")
        if parent.encrypted and isinstance(file_key, dict):
            version = KEY_PAIR_OF.get(str(file_key.get("version")), "")
            self.model.file_keys[(node.id, user.id, version)] = file_key
        upload.node_id, upload.status = node.id, "done"  # the status stays readable
        return node

    async def legacy_chunk(self, request: web.Request) -> web.Response:
        upload = self._upload_by_token(request.match_info["token"])
        if self.use_s3_storage and upload.direct_s3:
            raise ApiError(400, "S3 direct upload is enforced", -90033)
        start = 0
        content_range = request.headers.get("Content-Range", "")
        match = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", content_range)
        if match:
            start = int(match.group(1))
        # uploadFileByTokenAsBinary_1: multipart/form-data with a field "file", or the raw
        # bytes under any other Content-Type (or none).
        source: Callable[[int], Awaitable[bytes]]
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            field_part = await reader.next()
            if not isinstance(field_part, BodyPartReader) or field_part.name != "file":
                raise ApiError(400, "Bad request: multipart field 'file' required", -80000)
            source = field_part.read_chunk
        else:
            source = request.content.read
        digest = hashlib.md5()  # noqa: S324 (the API's chunk hash)
        written = 0
        with upload.path.open("r+b") as out:
            out.seek(start)
            while chunk := await source(1024 * 1024):
                digest.update(chunk)
                out.write(chunk)
                written += len(chunk)
        upload.received = max(upload.received, start + written)
        return web.json_response({"size": written, "hash": digest.hexdigest()}, status=201)

    async def legacy_complete(self, request: web.Request) -> web.Response:
        upload = self._upload_by_token(request.match_info["token"])
        user = self._user(request)
        body = await self._json(request)
        name, replace = self._prepare_completion(upload, user, body)
        node = self._finish(upload, user, name, replace, body)
        return web.json_response(self.node_json(node, user), status=201)

    # -- file keys --

    async def missing_file_keys(self, request: web.Request) -> web.Response:
        user = self._user(request)
        query = request.query

        def number(name: str) -> int | None:
            try:
                return int(query[name]) if query.get(name) else None
            except ValueError:
                raise ApiError(400, f"Invalid number: {name}", -80002) from None

        missing = self.model.missing_keys(
            user, number("room_id"), number("file_id"), number("user_id")
        )
        pairs: list[tuple[int, int]] = []
        for uid, fid, _ in missing:
            if (uid, fid) not in pairs:
                pairs.append((uid, fid))
        offset, limit = range_of(query, 500, MAX_PAGE_MISSING_KEYS)
        page = pairs[offset : offset + limit]
        wanted = {(u, f) for u, f in page}
        users = []
        for uid, fid, version in missing:
            if (uid, fid) in wanted:
                entry = {
                    "id": uid,
                    "publicKeyContainer": self.model.users[uid].key_pairs[version][1],
                }
                if entry not in users:
                    users.append(entry)
        # One entry per file key the requester holds of a listed file: an account with two key
        # pairs may hold two, and only one of them may open with the key its client has.
        files = [
            {"id": fid, "fileKeyContainer": key}
            for fid in sorted({f for _, f in page})
            for (kfid, kuid, _), key in sorted(self.model.file_keys.items(), key=lambda e: e[0])
            if kfid == fid and kuid == user.id
        ]
        return web.json_response(
            {
                "range": {"offset": offset, "limit": limit, "total": len(pairs)},
                "items": [{"userId": u, "fileId": f} for u, f in page],
                "users": users,
                "files": files,
            }
        )

    async def set_file_keys(self, request: web.Request) -> web.Response:
        """``setUserFileKeys``: "The users who already have a file key are ignored and keep
        the distributed file key" (spec). A file outside an encrypted room is -40001; a user
        unknown, -70501; a key of a version the user holds no key pair of, -70020; the whole
        batch is checked before any key is stored."""
        user = self._user(request)
        body = await self._json(request)
        items = body.get("items")
        if not isinstance(items, list) or not items:
            raise ApiError(400, "Mandatory fields cannot be empty: items", -80000)
        accepted: list[tuple[tuple[int, int, str], dict[str, Any]]] = []
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("fileKey"), dict):
                raise ApiError(400, "Mandatory fields cannot be empty: fileKey", -80000)
            node = self._node(item.get("fileId"), "file")
            self._require(self.model.room_of(node), user, "read")
            if not node.encrypted:
                raise ApiError(400, "(Target) room is not encrypted", -40001)
            target = self._user_by_id(item.get("userId"))
            key = item["fileKey"]
            version = KEY_PAIR_OF.get(str(key.get("version")))
            if version is None or version not in target.key_pairs:
                raise ApiError(403, "User does not have a keypair", -70020)
            accepted.append(((node.id, target.id, version), key))
        for slot, key in accepted:
            self.model.file_keys.setdefault(slot, key)
        return web.Response(status=204)

    async def user_file_key(self, request: web.Request) -> web.Response:
        user = self._user(request)
        node = self._node(request.match_info["file_id"], "file")
        version = request.query.get("version")
        for (fid, uid, key_version), key in self.model.file_keys.items():
            if fid == node.id and uid == user.id and (version is None or version == key_version):
                return web.json_response(key)
        raise ApiError(404, "File key not found", -40761)

    # -- downloads --

    async def create_download(self, request: web.Request) -> web.Response:
        user = self._user(request)
        node = self._node(request.match_info["file_id"], "file")
        self._require(self.model.room_of(node), user, "read")
        token = secrets.token_urlsafe(18)
        self.download_tokens[token] = node.id
        return web.json_response(
            {"downloadUrl": f"{self.base_url}/_download/{token}", "token": token}
        )

    async def download(self, request: web.Request) -> web.StreamResponse:
        node_id = self.download_tokens.get(request.match_info["token"])
        node = self.model.nodes.get(node_id or -1)
        if node is None or node.data is None:
            return web.Response(status=404)
        if not node.parts:
            return web.FileResponse(node.data)
        response = web.StreamResponse(
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(node.size)}
        )
        await response.prepare(request)
        for part in node.parts:
            with part.open("rb") as source:
                while chunk := source.read(1024 * 1024):
                    await response.write(chunk)
        await response.write_eof()
        return response

    # -- admin --

    async def seed(self, request: web.Request) -> web.Response:
        document = await request.json()
        try:
            created = await asyncio.to_thread(self.apply_seed, document)
        except (KeyError, ValueError, TypeError) as exc:
            return web.json_response({"error": f"bad seed document: {exc}"}, status=400)
        return web.json_response(created)

    async def settings(self, request: web.Request) -> web.Response:
        body = await request.json()
        if "useS3Storage" in body:
            self.use_s3_storage = bool(body["useS3Storage"])
        if "tokenLifetime" in body:
            self.token_lifetime = float(body["tokenLifetime"])
        if "quotaBytes" in body:
            self.model.quota_bytes = None if body["quotaBytes"] is None else int(body["quotaBytes"])
        if "finishSeconds" in body:
            self.finish_seconds = float(body["finishSeconds"])
        if "failFinishing" in body:
            self.failing_finishes = {str(name) for name in body["failFinishing"]}
        if body.get("expireTokens"):
            self.tokens.clear()
        return web.json_response(
            {
                "useS3Storage": self.use_s3_storage,
                "tokenLifetime": self.token_lifetime,
                "quotaBytes": self.model.quota_bytes,
                "finishSeconds": self.finish_seconds,
            }
        )

    async def state(self, request: web.Request) -> web.Response:
        model = self.model
        return web.json_response(
            {
                "users": [
                    {"id": u.id, "login": u.login, "keyPairs": sorted(u.key_pairs)}
                    for u in model.users.values()
                ],
                "nodes": [
                    {
                        "id": n.id,
                        "type": n.type,
                        "name": n.name,
                        "path": model.path_of(n),
                        "parentId": n.parent_id,
                        "encrypted": n.encrypted,
                        "size": n.size,
                        "notes": n.notes,
                        "expireAt": n.expire_at,
                    }
                    for n in model.nodes.values()
                ],
                "fileKeys": [
                    {"fileId": f, "userId": u, "version": v} for f, u, v in model.file_keys
                ],
                "openUploads": sum(u.status in OPEN for u in model.uploads.values()),
                "tokensIssued": dict(self.tokens_issued),
                "uploads": [
                    {"name": u.name, "status": u.status, "steps": u.steps}
                    for u in model.uploads.values()
                ],
            }
        )
