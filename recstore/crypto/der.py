"""The little DER and PEM that DRACOON private keys need, and nothing more.

An encrypted private key is PKCS#8 ``EncryptedPrivateKeyInfo`` with PBES2 (RFC 8018)::

    SEQUENCE {
      SEQUENCE { OID pbes2, SEQUENCE {
        SEQUENCE { OID pbkdf2, SEQUENCE { OCTET STRING salt, INTEGER iterations,
                                          [INTEGER keyLength], [AlgorithmIdentifier prf] } },
        SEQUENCE { OID aes256-CBC, OCTET STRING iv } } }
      OCTET STRING encryptedData }

The PRF defaults to HMAC-SHA1 when absent, which is how the official SDKs write it.
"""

from __future__ import annotations

import base64
import binascii
import textwrap
from dataclasses import dataclass

OID_PBES2 = "1.2.840.113549.1.5.13"
OID_PBKDF2 = "1.2.840.113549.1.5.12"
OID_AES256_CBC = "2.16.840.1.101.3.4.1.42"
OID_HMAC_SHA1 = "1.2.840.113549.2.7"
OID_HMAC_SHA256 = "1.2.840.113549.2.9"
PRFS = {OID_HMAC_SHA1: "sha1", OID_HMAC_SHA256: "sha256"}

SEQUENCE, INTEGER, OCTET_STRING, OID, NULL = 0x30, 0x02, 0x04, 0x06, 0x05


class DerError(ValueError):
    """The bytes are not the structure expected."""


@dataclass(frozen=True)
class Pbes2Params:
    salt: bytes
    iterations: int
    prf: str
    iv: bytes
    encrypted: bytes


# -- reading ---------------------------------------------------------------------------------


def _read(data: bytes, pos: int, tag: int) -> tuple[bytes, int]:
    """The value of the element at ``pos`` (which must have ``tag``) and the next position."""
    if pos + 2 > len(data):
        raise DerError("truncated ASN.1")
    if data[pos] != tag:
        raise DerError(f"ASN.1 tag {data[pos]:#04x} where {tag:#04x} was expected")
    length, pos = data[pos + 1], pos + 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise DerError("bad ASN.1 length")
        length, pos = int.from_bytes(data[pos : pos + count], "big"), pos + count
    if pos + length > len(data):
        raise DerError("truncated ASN.1")
    return data[pos : pos + length], pos + length


def is_one_sequence(data: bytes) -> bool:
    """True when ``data`` is exactly one DER SEQUENCE (length matching to the byte)."""
    try:
        _, end = _read(data, 0, SEQUENCE)
    except DerError:
        return False
    return end == len(data)


def _oid(value: bytes) -> str:
    if not value:
        raise DerError("empty OID")
    parts = [value[0] // 40, value[0] % 40]
    number = 0
    for byte in value[1:]:
        number = (number << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(number)
            number = 0
    return ".".join(map(str, parts))


def parse_encrypted_private_key_info(der: bytes) -> Pbes2Params:
    outer, end = _read(der, 0, SEQUENCE)
    if end != len(der):
        raise DerError("trailing bytes after the key")
    algorithm, pos = _read(outer, 0, SEQUENCE)
    encrypted, _ = _read(outer, pos, OCTET_STRING)
    oid, pos = _read(algorithm, 0, OID)
    if _oid(oid) != OID_PBES2:
        raise DerError(f"key encryption {_oid(oid)} is not PBES2")
    params, _ = _read(algorithm, pos, SEQUENCE)
    kdf, pos = _read(params, 0, SEQUENCE)
    scheme, _ = _read(params, pos, SEQUENCE)
    kdf_oid, kpos = _read(kdf, 0, OID)
    if _oid(kdf_oid) != OID_PBKDF2:
        raise DerError(f"key derivation {_oid(kdf_oid)} is not PBKDF2")
    kdf_params, _ = _read(kdf, kpos, SEQUENCE)
    salt, ppos = _read(kdf_params, 0, OCTET_STRING)
    iterations_raw, ppos = _read(kdf_params, ppos, INTEGER)
    prf = "sha1"
    if ppos < len(kdf_params) and kdf_params[ppos] == INTEGER:
        _, ppos = _read(kdf_params, ppos, INTEGER)  # keyLength: implied by the cipher
    if ppos < len(kdf_params):
        prf_seq, _ = _read(kdf_params, ppos, SEQUENCE)
        prf_oid, _ = _read(prf_seq, 0, OID)
        if _oid(prf_oid) not in PRFS:
            raise DerError(f"PBKDF2 PRF {_oid(prf_oid)} is not supported")
        prf = PRFS[_oid(prf_oid)]
    cipher_oid, spos = _read(scheme, 0, OID)
    if _oid(cipher_oid) != OID_AES256_CBC:
        raise DerError(f"cipher {_oid(cipher_oid)} is not AES-256-CBC")
    iv, _ = _read(scheme, spos, OCTET_STRING)
    iterations = int.from_bytes(iterations_raw, "big")
    if not salt or iterations < 1 or len(iv) != 16 or not encrypted or len(encrypted) % 16:
        raise DerError("implausible PBES2 parameters")
    return Pbes2Params(salt, iterations, prf, iv, encrypted)


# -- writing ---------------------------------------------------------------------------------


def _element(tag: int, value: bytes) -> bytes:
    length = len(value)
    if length < 0x80:
        header = bytes([tag, length])
    else:
        size = (length.bit_length() + 7) // 8
        header = bytes([tag, 0x80 | size]) + length.to_bytes(size, "big")
    return header + value


def _encode_oid(dotted: str) -> bytes:
    numbers = [int(part) for part in dotted.split(".")]
    body = bytearray([numbers[0] * 40 + numbers[1]])
    for number in numbers[2:]:
        chunk = [number & 0x7F]
        number >>= 7
        while number:
            chunk.append(0x80 | (number & 0x7F))
            number >>= 7
        body.extend(reversed(chunk))
    return _element(OID, bytes(body))


def _encode_int(value: int) -> bytes:
    return _element(INTEGER, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def encrypted_private_key_info(salt: bytes, iterations: int, iv: bytes, encrypted: bytes) -> bytes:
    """PBES2 with PBKDF2-HMAC-SHA1 (PRF left implicit, as the SDKs write it) and AES-256-CBC."""
    kdf = _element(
        SEQUENCE,
        _encode_oid(OID_PBKDF2)
        + _element(SEQUENCE, _element(OCTET_STRING, salt) + _encode_int(iterations)),
    )
    scheme = _element(SEQUENCE, _encode_oid(OID_AES256_CBC) + _element(OCTET_STRING, iv))
    algorithm = _element(SEQUENCE, _encode_oid(OID_PBES2) + _element(SEQUENCE, kdf + scheme))
    return _element(SEQUENCE, algorithm + _element(OCTET_STRING, encrypted))


# -- PEM -------------------------------------------------------------------------------------


def pem(label: str, der: bytes) -> str:
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode("ascii"), 64))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n"


def unpem(label: str, text: str) -> bytes:
    """The DER inside PEM armor with exactly this label; LF or CRLF line ends."""
    lines = [line.strip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    lines = [line for line in lines if line]
    if (
        len(lines) < 3
        or lines[0] != f"-----BEGIN {label}-----"
        or lines[-1] != f"-----END {label}-----"
    ):
        raise DerError(f"not a PEM {label.lower()}")
    try:
        return base64.b64decode("".join(lines[1:-1]), validate=True)
    except (binascii.Error, ValueError):
        raise DerError("PEM body is not valid base64") from None
