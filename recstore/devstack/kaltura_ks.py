"""Kaltura sessions (KS) as the real server makes and checks them.

Clients mostly build a KS locally from the admin secret instead of calling ``session.start``
(the archiver and the syncer both do), so the stand-in must read exactly that format: v2 is
``urlsafe_b64("v2|<pid>|" + AES-128-CBC(sha1(fields) + fields))`` with the key
``sha1(secret)[:16]``, a zero IV and zero padding, where ``fields`` is 16 random bytes and the
url-encoded privileges plus ``_e`` (expiry), ``_t`` (type) and ``_u`` (user). v1 KS (``sha1 hex
signature|pid;pid;expiry;type;rand;user;privileges``, base64) is read too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import time
import urllib.parse
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

RANDOM_SIZE = 16
SHA1_SIZE = 20

#: ks.php error codes, reported in the ``ERR_CODE``/``ERR_DESC`` args of ``INVALID_KS``.
INVALID_STR = (-1, "INVALID_STR")
INVALID_PARTNER = (-2, "INVALID_PARTNER")
EXPIRED = (-5, "EXPIRED")


class KsError(Exception):
    """Why a KS was refused, as ``(code, description)`` of the real server."""

    def __init__(self, reason: tuple[int, str]) -> None:
        super().__init__(reason[1])
        self.code, self.desc = reason


@dataclass
class Session:
    partner_id: int
    user_id: str
    type: int
    expiry: int
    privileges: dict[str, str] = field(default_factory=dict)

    @property
    def is_admin(self) -> bool:
        return self.type == 2


def _sha1(data: bytes) -> bytes:
    return hashlib.sha1(data).digest()  # noqa: S324 (the KS format is SHA-1, not our choice)


def _cipher(secret: str) -> Cipher[modes.CBC]:
    return Cipher(algorithms.AES(_sha1(secret.encode())[:16]), modes.CBC(b"\0" * 16))


def make_ks(
    secret: str,
    partner_id: int,
    user_id: str = "",
    type_: int = 2,
    expiry: int = 86400,
    privileges: str = "",
    now: float | None = None,
) -> str:
    """A KS v2 exactly as ``KalturaClient.generateSessionV2`` builds it (``expiry`` seconds)."""
    fields: dict[str, str] = {}
    for privilege in privileges.split(","):
        privilege = privilege.strip()
        if not privilege:
            continue
        if privilege == "*":
            privilege = "all:*"
        name, _, value = privilege.partition(":")
        fields[name] = value
    fields["_e"] = str(int(now if now is not None else time.time()) + expiry)
    fields["_t"] = str(type_)
    fields["_u"] = user_id
    plain = os.urandom(RANDOM_SIZE) + urllib.parse.urlencode(fields).encode()
    plain = _sha1(plain) + plain
    if len(plain) % 16:
        plain += b"\0" * (16 - len(plain) % 16)
    encryptor = _cipher(secret).encryptor()
    encrypted = encryptor.update(plain) + encryptor.finalize()
    return base64.urlsafe_b64encode(f"v2|{partner_id}|".encode() + encrypted).decode()


def parse_ks(ks: str, partner_id: int, secret: str, now: float | None = None) -> Session:
    """The session a KS carries, or :class:`KsError` (malformed, other partner, expired)."""
    try:
        raw = base64.urlsafe_b64decode(ks + "=" * (-len(ks) % 4))
    except (binascii.Error, ValueError):
        raise KsError(INVALID_STR) from None
    if raw.startswith(b"v2|"):
        session = _parse_v2(raw, partner_id, secret)
    else:
        session = _parse_v1(raw, partner_id, secret)
    if session.expiry < (now if now is not None else time.time()):
        raise KsError(EXPIRED)
    return session


def _parse_v2(raw: bytes, partner_id: int, secret: str) -> Session:
    parts = raw.split(b"|", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        raise KsError(INVALID_STR)
    if int(parts[1]) != partner_id:
        raise KsError(INVALID_PARTNER)
    encrypted = parts[2]
    if not encrypted or len(encrypted) % 16:
        raise KsError(INVALID_STR)
    decryptor = _cipher(secret).decryptor()
    plain = (decryptor.update(encrypted) + decryptor.finalize()).rstrip(b"\0")
    digest, fields = plain[:SHA1_SIZE], plain[SHA1_SIZE:]
    if len(fields) < RANDOM_SIZE or _sha1(fields) != digest:  # wrong secret or tampered
        raise KsError(INVALID_STR)
    try:
        values = dict(urllib.parse.parse_qsl(fields[RANDOM_SIZE:].decode(), keep_blank_values=True))
        expiry = int(values.pop("_e"))
        type_ = int(values.pop("_t", "0"))
    except (UnicodeDecodeError, KeyError, ValueError):
        raise KsError(INVALID_STR) from None
    user = values.pop("_u", "")
    return Session(partner_id, user, type_, expiry, values)


def _parse_v1(raw: bytes, partner_id: int, secret: str) -> Session:
    signature, sep, info = raw.partition(b"|")
    if not sep:
        raise KsError(INVALID_STR)
    expected = binascii.hexlify(_sha1(secret.encode() + info))
    if signature != expected:
        raise KsError(INVALID_STR)
    try:
        fields = info.decode().split(";")
        pid, expiry, type_ = int(fields[0]), int(fields[2]), int(fields[3])
        user = fields[5] if len(fields) > 5 else ""
        privileges = fields[6] if len(fields) > 6 else ""
    except (UnicodeDecodeError, IndexError, ValueError):
        raise KsError(INVALID_STR) from None
    if pid != partner_id:
        raise KsError(INVALID_PARTNER)
    privs = dict(p.partition(":")[::2] for p in privileges.split(",") if p)
    return Session(pid, user, type_, expiry, privs)
