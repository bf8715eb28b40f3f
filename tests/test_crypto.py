"""recstore.crypto against itself and against one-shot AES-GCM: round trips, chunking,
tampering, the private key format the SDKs write, and errors that name no secret."""

from __future__ import annotations

import itertools
import os
from functools import cache

import pytest
from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from recstore import _der, crypto

MiB = 1024 * 1024


@cache
def pair(version: str) -> tuple[dict[str, str], dict[str, str], crypto.UserPrivateKey]:
    private, public = crypto.generate_user_keypair(version, "pässwörd 😀", iterations=1000)
    return private, public, crypto.decrypt_private_key(private, "pässwörd 😀")


def one_shot(file_key: crypto.PlainFileKey, data: bytes) -> tuple[bytes, bytes]:
    sealed = AESGCM(file_key.key).encrypt(file_key.iv, data, None)
    return sealed[:-16], sealed[-16:]


def encrypt_in_chunks(
    file_key: crypto.PlainFileKey, data: bytes, size: int
) -> tuple[bytes, crypto.PlainFileKey]:
    encryptor = crypto.FileEncryptor(file_key)
    out = b"".join(encryptor.update(data[i : i + size]) for i in range(0, len(data), size))
    return out, encryptor.finalize()


@pytest.mark.parametrize("version", ["A", "RSA-4096"])
def test_round_trip_through_a_key_pair(version: str) -> None:
    _, public, private = pair(version)
    file_key = crypto.generate_file_key()
    ciphertext, with_tag = encrypt_in_chunks(file_key, b"recording bytes" * 1000, 4096)
    encrypted_key = crypto.encrypt_file_key(with_tag, public)
    assert encrypted_key["version"] == {"A": "A", "RSA-4096": "RSA-4096/AES-256-GCM"}[version]
    opened = crypto.decrypt_file_key(encrypted_key, private)
    decryptor = crypto.FileDecryptor(opened)
    assert decryptor.update(ciphertext) == b"recording bytes" * 1000
    decryptor.finalize()


@pytest.mark.parametrize("size", [1, 15, 17, 5 * MiB + 3])
def test_chunked_encryption_equals_one_shot(size: int) -> None:
    data = os.urandom(2 * size + 5 if size < MiB else size + 11)
    file_key = crypto.generate_file_key()
    ciphertext, with_tag = encrypt_in_chunks(file_key, data, size)
    assert (ciphertext, with_tag.tag) == one_shot(file_key, data)


def test_the_empty_file() -> None:
    file_key = crypto.generate_file_key()
    ciphertext, with_tag = encrypt_in_chunks(file_key, b"", 10)
    assert (ciphertext, with_tag.tag) == one_shot(file_key, b"")


def test_update_into_writes_the_same_bytes_without_allocating() -> None:
    data = os.urandom(3 * MiB + 1)
    file_key = crypto.generate_file_key()
    encryptor = crypto.FileEncryptor(file_key)
    out = bytearray(MiB + 15)
    pieces = []
    for i in range(0, len(data), MiB):
        n = encryptor.update_into(memoryview(data)[i : i + MiB], out)
        pieces.append(bytes(out[:n]))
    assert (b"".join(pieces), encryptor.finalize().tag) == one_shot(file_key, data)


@pytest.mark.parametrize("where", ["first", "middle", "last", "tag"])
def test_one_flipped_byte_fails_decryption(where: str) -> None:
    data = os.urandom(1000)
    file_key = crypto.generate_file_key()
    ciphertext, with_tag = encrypt_in_chunks(file_key, data, 64)
    assert with_tag.tag is not None
    body, tag = bytearray(ciphertext), bytearray(with_tag.tag)
    if where == "tag":
        tag[3] ^= 0x01
    else:
        body[{"first": 0, "middle": 500, "last": 999}[where]] ^= 0x80
    decryptor = crypto.FileDecryptor(crypto.PlainFileKey(file_key.key, file_key.iv, bytes(tag)))
    decryptor.update(bytes(body))
    with pytest.raises(crypto.TagMismatchError):
        decryptor.finalize()


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(max_size=5000),
    cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=12),
)
def test_any_chunking_gives_one_shot_bytes(data: bytes, cuts: list[int]) -> None:
    file_key = crypto.generate_file_key()
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    encryptor = crypto.FileEncryptor(file_key)
    ciphertext = b"".join(encryptor.update(data[a:b]) for a, b in itertools.pairwise(bounds))
    assert (ciphertext, encryptor.finalize().tag) == one_shot(file_key, data)
    decryptor = crypto.FileDecryptor(
        crypto.PlainFileKey(file_key.key, file_key.iv, one_shot(file_key, data)[1])
    )
    assert (
        b"".join(decryptor.update(ciphertext[a:b]) for a, b in itertools.pairwise(bounds)) == data
    )
    decryptor.finalize()


def test_new_private_keys_are_written_as_the_sdks_write_them() -> None:
    """PBES2, PBKDF2-HMAC-SHA1 (implicit PRF), 1,300,000 iterations, 20-byte salt, AES-256-CBC."""
    private, public = crypto.generate_user_keypair("A", "Qwer1234!")
    der = _der.unpem("ENCRYPTED PRIVATE KEY", private["privateKey"])
    params = _der.parse_encrypted_private_key_info(der)
    assert (params.iterations, len(params.salt), params.prf, len(params.iv)) == (
        1_300_000,
        20,
        "sha1",
        16,
    )
    assert b"\x2a\x86\x48\x86\xf7\x0d\x02\x07" not in der  # no explicit hmacWithSHA1 OID
    key = crypto.decrypt_private_key(private, "Qwer1234!")
    assert key.public_key_container()["publicKey"] == public["publicKey"]
    assert crypto._public_key(public)[1].key_size == 2048


def test_latin1_passwords_of_legacy_keys_still_open() -> None:
    """Keys made from ISO-8859-1 password bytes open with the same password typed as text."""
    private, _ = crypto.generate_user_keypair("A", "x", iterations=1000)
    params = _der.parse_encrypted_private_key_info(
        _der.unpem("ENCRYPTED PRIVATE KEY", private["privateKey"])
    )
    assert params.iterations == 1000
    legacy_password = "Grüße"
    # Re-encrypt the same key under the Latin-1 bytes of the password, as old clients did.
    key = crypto.decrypt_private_key(private, "x").key
    pkcs8 = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    padder = padding.PKCS7(128).padder()
    salt, iv = os.urandom(20), os.urandom(16)
    aes = crypto._pbkdf2(legacy_password.encode("iso-8859-1"), salt, 1000)
    enc = Cipher(algorithms.AES(aes), modes.CBC(iv)).encryptor()
    body = enc.update(padder.update(pkcs8) + padder.finalize()) + enc.finalize()
    legacy = {
        "version": "A",
        "privateKey": _der.pem(
            "ENCRYPTED PRIVATE KEY", _der.encrypted_private_key_info(salt, 1000, iv, body)
        ),
    }
    assert (
        crypto.decrypt_private_key(legacy, legacy_password).key.private_numbers()
        == key.private_numbers()
    )


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (lambda d: d.update(key="not base64!"), crypto.InvalidBase64Error),
        (lambda d: d.update(key="AAAA"), crypto.KeyLengthError),
        (lambda d: d.update(iv="AAAA"), crypto.KeyLengthError),
        (lambda d: d.update(tag="AAAA"), crypto.KeyLengthError),
        (lambda d: d.update(version="B"), crypto.UnknownVersionError),
        (lambda d: d.pop("key"), crypto.InvalidBase64Error),
    ],
)
def test_malformed_plain_file_keys(mutate: object, error: type[crypto.CryptoError]) -> None:
    data = crypto.PlainFileKey(os.urandom(32), os.urandom(12), os.urandom(16)).to_json()
    mutate(data)  # type: ignore[operator]
    with pytest.raises(error):
        crypto.PlainFileKey.from_json(data)


def test_a_public_key_of_the_wrong_size_for_its_version() -> None:
    _, public, _ = pair("A")
    with pytest.raises(crypto.KeyLengthError):
        crypto.encrypt_file_key(
            crypto.PlainFileKey(b"k" * 32, b"i" * 12, b"t" * 16), {**public, "version": "RSA-4096"}
        )


def test_a_file_key_without_tag_is_not_handed_out() -> None:
    _, public, _ = pair("A")
    with pytest.raises(crypto.KeyLengthError, match="no tag"):
        crypto.encrypt_file_key(crypto.generate_file_key(), public)


def test_key_material_stays_out_of_reprs() -> None:
    file_key = crypto.generate_file_key()
    assert file_key.key.hex() not in repr(file_key)
    assert "RSAPrivateKey" not in repr(pair("A")[2])


def test_a_key_unlocked_again_is_not_checked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading an RSA key checks its factors (a quarter CPU-second for RSA-4096); a process
    unlocks one key again and again (each client of an account), so it is checked once, and
    only the right password still opens it."""
    private, public = crypto.generate_user_keypair("A", "right", iterations=1000)
    loads: list[bytes] = []
    load = serialization.load_der_private_key

    def counted(data: bytes, password: bytes | None) -> object:
        loads.append(data)
        return load(data, password)

    monkeypatch.setattr(serialization, "load_der_private_key", counted)
    first = crypto.decrypt_private_key(private, "right")
    again = crypto.decrypt_private_key(private, "right")
    assert len(loads) == 1
    assert again.public_key_container() == first.public_key_container() == public
    with pytest.raises(crypto.WrongPasswordError):
        crypto.decrypt_private_key(private, "wrong")
