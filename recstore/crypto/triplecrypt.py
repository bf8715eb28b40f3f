"""DRACOON client-side encryption ("TripleCrypt"), compatible with the official SDKs.

Pure functions and two small cipher classes: no I/O, no logging. The facts are in
``docs/design/dracoon.md``; in short:

* a file is AES-256-GCM with a fresh 32-byte key and 12-byte IV, no AAD; the ciphertext is as
  long as the plaintext and the 16-byte tag travels in the file key, not in the file;
* a file key is given to a user by RSA-OAEP over the 32 raw key bytes (IV and tag copied):
  key pair ``"A"`` (RSA-2048) uses OAEP SHA-256 with MGF1 **SHA-1** (encrypted file key version
  ``"A"``), ``"RSA-4096"`` uses SHA-256 with MGF1 SHA-256 (``"RSA-4096/AES-256-GCM"``);
* a private key is PKCS#8 PBES2: PBKDF2-HMAC-SHA1, 1,300,000 iterations (older keys 10,000),
  20-byte salt, AES-256-CBC. ``cryptography`` can read these but not write them with a SHA-1
  PRF, and reports wrong passwords only through message text, so the small PBES2 structure is
  parsed and built here (:mod:`recstore.crypto.der`), which also gives each failure its own error.

Every failure raises a :class:`CryptoError` subclass whose message never holds a password or
key material.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from recstore.common.errors import RecstoreError
from recstore.crypto import der as _der

KEY_SIZE = 32
IV_SIZE = 12
TAG_SIZE = 16
#: What the official SDKs use for new private keys.
PBKDF2_ITERATIONS = 1_300_000
PBKDF2_SALT_SIZE = 20
#: The plain file key versions the SDKs write ("A": Java/C#, "AES-256-GCM": JS).
PLAIN_FILE_KEY_VERSIONS = frozenset({"A", "AES-256-GCM"})


class CryptoError(RecstoreError):
    """Base of every encryption failure."""


class WrongPasswordError(CryptoError):
    """The password does not open the private key."""


class MalformedKeyError(CryptoError):
    """A key is not valid PEM, not valid ASN.1, or not the kind of key expected."""


class UnknownVersionError(CryptoError):
    """A key or file key carries a version this code does not know, or a mismatched one."""


class InvalidBase64Error(CryptoError):
    """A field that must be standard base64 is not."""


class KeyLengthError(CryptoError):
    """A key, IV, tag or RSA modulus has the wrong size for its version."""


class TagMismatchError(CryptoError):
    """The file's authentication tag does not verify: wrong key, IV, tag, or altered data."""


class DecryptionError(CryptoError):
    """RSA decryption of a file key failed: it was made for another key pair, or is corrupt."""


@dataclass(frozen=True)
class _KeyPairVersion:
    bits: int
    file_key_version: str
    mgf_hash: type[hashes.HashAlgorithm]


_KEY_PAIRS = {
    "A": _KeyPairVersion(2048, "A", hashes.SHA1),
    "RSA-4096": _KeyPairVersion(4096, "RSA-4096/AES-256-GCM", hashes.SHA256),
}
_KEY_PAIR_OF_FILE_KEY = {v.file_key_version: name for name, v in _KEY_PAIRS.items()}


def key_pair_of_file_key(file_key_version: str) -> str | None:
    """The user key pair version an encrypted file key of this version was made for
    (``"RSA-4096/AES-256-GCM"`` → ``"RSA-4096"``); None for a version we do not know."""
    return _KEY_PAIR_OF_FILE_KEY.get(file_key_version)


def _b64decode(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise InvalidBase64Error(f"{what} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidBase64Error(f"{what} is not valid standard base64") from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _key_pair_version(version: object, what: str) -> _KeyPairVersion:
    spec = _KEY_PAIRS.get(str(version))
    if spec is None:
        raise UnknownVersionError(f"{what} has unknown version {version!r}")
    return spec


def _oaep(spec: _KeyPairVersion) -> OAEP:
    return OAEP(mgf=MGF1(algorithm=spec.mgf_hash()), algorithm=hashes.SHA256(), label=None)


# -- file keys and file encryption ---------------------------------------------------------


@dataclass(frozen=True)
class PlainFileKey:
    """The symmetric key of one file. ``tag`` is None until the file has been encrypted."""

    key: bytes = field(repr=False)
    iv: bytes
    tag: bytes | None
    version: str = "A"

    def __post_init__(self) -> None:
        if self.version not in PLAIN_FILE_KEY_VERSIONS:
            raise UnknownVersionError(f"plain file key has unknown version {self.version!r}")
        if len(self.key) != KEY_SIZE:
            raise KeyLengthError(f"a file key must be {KEY_SIZE} bytes, not {len(self.key)}")
        if len(self.iv) != IV_SIZE:
            raise KeyLengthError(f"a file key IV must be {IV_SIZE} bytes, not {len(self.iv)}")
        if self.tag is not None and len(self.tag) != TAG_SIZE:
            raise KeyLengthError(f"a file key tag must be {TAG_SIZE} bytes, not {len(self.tag)}")

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PlainFileKey:
        tag = data.get("tag")
        return cls(
            key=_b64decode(data.get("key"), "file key"),
            iv=_b64decode(data.get("iv"), "file key IV"),
            tag=None if tag in (None, "") else _b64decode(tag, "file key tag"),
            version=str(data.get("version")),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "key": _b64(self.key),
            "iv": _b64(self.iv),
            "tag": None if self.tag is None else _b64(self.tag),
            "version": self.version,
        }


def generate_file_key(version: str = "A") -> PlainFileKey:
    """A fresh random key and IV for one file (never reuse one for two files)."""
    return PlainFileKey(os.urandom(KEY_SIZE), os.urandom(IV_SIZE), None, version)


class FileEncryptor:
    """Streams a file through AES-256-GCM; ``finalize()`` returns the key with its tag."""

    def __init__(self, plain_file_key: PlainFileKey) -> None:
        self._file_key = plain_file_key
        self._cipher = Cipher(
            algorithms.AES(plain_file_key.key), modes.GCM(plain_file_key.iv)
        ).encryptor()

    def update(self, data: bytes | bytearray | memoryview) -> bytes:
        return self._cipher.update(data)

    def update_into(self, data: bytes | bytearray | memoryview, out: bytearray | memoryview) -> int:
        """Encrypt into ``out`` without allocating; ``out`` needs ``len(data) + 15`` bytes."""
        return self._cipher.update_into(data, out)

    def finalize(self) -> PlainFileKey:
        self._cipher.finalize()
        key = self._file_key
        return PlainFileKey(key.key, key.iv, self._cipher.tag, key.version)


class FileDecryptor:
    """Streams a file back; ``finalize()`` raises :class:`TagMismatchError` if it was altered.

    Decrypted bytes must not be trusted (or kept) before ``finalize()`` has returned.
    """

    def __init__(self, plain_file_key: PlainFileKey) -> None:
        if plain_file_key.tag is None:
            raise KeyLengthError("decryption needs the file key's tag, and it has none")
        self._cipher = Cipher(
            algorithms.AES(plain_file_key.key), modes.GCM(plain_file_key.iv, plain_file_key.tag)
        ).decryptor()

    def update(self, data: bytes | bytearray | memoryview) -> bytes:
        return self._cipher.update(data)

    def finalize(self) -> None:
        try:
            self._cipher.finalize()
        except InvalidTag:
            raise TagMismatchError(
                "the file does not match its file key (wrong key, IV or tag, or altered data)"
            ) from None


# -- user key pairs --------------------------------------------------------------------------


@dataclass(frozen=True)
class UserPrivateKey:
    """An unlocked private key and its key pair version."""

    version: str
    key: rsa.RSAPrivateKey = field(repr=False)

    def public_key_container(self) -> dict[str, Any]:
        pem = self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return {"version": self.version, "publicKey": pem.decode("ascii")}


def new_rsa_key(version: str) -> rsa.RSAPrivateKey:
    """A fresh RSA key of the size key pair ``version`` takes (an RSA-4096 one costs about
    half a second of CPU, some far more)."""
    spec = _key_pair_version(version, "key pair")
    return rsa.generate_private_key(public_exponent=65537, key_size=spec.bits)


def generate_user_keypair(
    version: str,
    password: str,
    *,
    iterations: int = PBKDF2_ITERATIONS,
    key: rsa.RSAPrivateKey | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(privateKeyContainer, publicKeyContainer)`` as the API's JSON, as the SDKs make them.

    ``iterations`` exists for tests, which cannot spend a second per key; production keys
    keep the SDKs' 1,300,000. ``key`` (from :func:`new_rsa_key`) is the RSA key to wrap
    instead of a new one: the dev stack's stand-ins reuse the keys of their process.
    """
    spec = _key_pair_version(version, "key pair")
    if key is None:
        key = new_rsa_key(version)
    elif key.key_size != spec.bits:
        raise KeyLengthError(f"key pair {version!r} needs RSA-{spec.bits}, not {key.key_size}")
    pkcs8 = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    salt, iv = os.urandom(PBKDF2_SALT_SIZE), os.urandom(16)
    aes_key = _pbkdf2(password.encode("utf-8"), salt, iterations)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(pkcs8) + padder.finalize()
    encryptor = Cipher(algorithms.AES(aes_key), modes.CBC(iv)).encryptor()
    encrypted = encryptor.update(padded) + encryptor.finalize()
    der = _der.encrypted_private_key_info(salt, iterations, iv, encrypted)
    private = {"version": version, "privateKey": _der.pem("ENCRYPTED PRIVATE KEY", der)}
    return private, UserPrivateKey(version, key).public_key_container()


def _pbkdf2(password: bytes, salt: bytes, iterations: int, prf: str = "sha1") -> bytes:
    """PBKDF2 as the SDKs use it: HMAC-SHA1 unless the key names another PRF."""
    algorithm: hashes.HashAlgorithm = hashes.SHA256() if prf == "sha256" else hashes.SHA1()  # noqa: S303 (the SDKs' PRF)
    return PBKDF2HMAC(algorithm=algorithm, length=32, salt=salt, iterations=iterations).derive(
        password
    )


def _password_encodings(password: str) -> list[bytes]:
    """UTF-8 first; legacy keys were made from ISO-8859-1 bytes."""
    encodings = [password.encode("utf-8")]
    try:
        latin = password.encode("iso-8859-1")
    except UnicodeEncodeError:
        return encodings
    if latin != encodings[0]:
        encodings.append(latin)
    return encodings


def decrypt_private_key(private_key_container: Mapping[str, Any], password: str) -> UserPrivateKey:
    """Unlock a private key (about a second for 1.3M iterations: do it once and keep it)."""
    version = str(private_key_container.get("version"))
    spec = _key_pair_version(version, "private key")
    text = private_key_container.get("privateKey")
    if not isinstance(text, str):
        raise MalformedKeyError("private key container has no privateKey string")
    try:
        der = _der.unpem("ENCRYPTED PRIVATE KEY", text)
        params = _der.parse_encrypted_private_key_info(der)
    except _der.DerError as exc:
        raise MalformedKeyError(f"private key is malformed: {exc}") from None
    for secret in _password_encodings(password):
        aes_key = _pbkdf2(secret, params.salt, params.iterations, params.prf)
        decryptor = Cipher(algorithms.AES(aes_key), modes.CBC(params.iv)).decryptor()
        padded = decryptor.update(params.encrypted) + decryptor.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        try:
            pkcs8 = unpadder.update(padded) + unpadder.finalize()
        except ValueError:
            continue  # wrong key: the padding check fails (almost always)
        if not _der.is_one_sequence(pkcs8):
            continue  # the padding passed by chance; the rest is noise: wrong key
        # Valid padding around one well-formed DER SEQUENCE: the password was right.
        try:
            key = serialization.load_der_private_key(pkcs8, password=None)
        except ValueError:
            raise MalformedKeyError("private key opens, but the key inside is corrupt") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise MalformedKeyError("private key is not an RSA key")
        if key.key_size != spec.bits:
            raise KeyLengthError(f"key pair {version!r} needs RSA-{spec.bits}, not {key.key_size}")
        return UserPrivateKey(version, key)
    raise WrongPasswordError("the encryption password does not open this private key")


def _public_key(
    public_key_container: Mapping[str, Any],
) -> tuple[_KeyPairVersion, rsa.RSAPublicKey]:
    spec = _key_pair_version(public_key_container.get("version"), "public key")
    text = public_key_container.get("publicKey")
    if not isinstance(text, str):
        raise MalformedKeyError("public key container has no publicKey string")
    try:
        der = _der.unpem("PUBLIC KEY", text)
    except _der.DerError as exc:
        raise MalformedKeyError(f"public key is malformed: {exc}") from None
    try:
        key = serialization.load_der_public_key(der)
    except ValueError:
        raise MalformedKeyError("public key is malformed: not a valid ASN.1 public key") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise MalformedKeyError("public key is not an RSA key")
    if key.key_size != spec.bits:
        raise KeyLengthError(f"public key needs RSA-{spec.bits}, not RSA-{key.key_size}")
    return spec, key


# -- file keys for users ---------------------------------------------------------------------


def encrypt_file_key(
    plain: PlainFileKey, public_key_container: Mapping[str, Any]
) -> dict[str, Any]:
    """The encrypted file key JSON ``{"key","iv","version","tag"}`` for one public key."""
    if plain.tag is None:
        raise KeyLengthError("the file key has no tag yet: finish encrypting the file first")
    spec, public_key = _public_key(public_key_container)
    encrypted = public_key.encrypt(plain.key, _oaep(spec))
    return {
        "key": _b64(encrypted),
        "iv": _b64(plain.iv),
        "version": spec.file_key_version,
        "tag": _b64(plain.tag),
    }


def decrypt_file_key(encrypted: Mapping[str, Any], private_key: UserPrivateKey) -> PlainFileKey:
    """The plain file key from an encrypted one made for ``private_key``'s key pair."""
    version = str(encrypted.get("version"))
    pair = _KEY_PAIR_OF_FILE_KEY.get(version)
    if pair is None:
        raise UnknownVersionError(f"encrypted file key has unknown version {version!r}")
    if pair != private_key.version:
        raise UnknownVersionError(
            f"file key version {version!r} is not for key pair {private_key.version!r}"
        )
    sealed = _b64decode(encrypted.get("key"), "encrypted file key")
    try:
        key = private_key.key.decrypt(sealed, _oaep(_KEY_PAIRS[pair]))
    except ValueError:
        raise DecryptionError(
            "the file key was not made for this key pair, or is corrupt"
        ) from None
    tag = encrypted.get("tag")
    return PlainFileKey(
        key=key,
        iv=_b64decode(encrypted.get("iv"), "file key IV"),
        tag=None if tag in (None, "") else _b64decode(tag, "file key tag"),
        version="A",
    )
