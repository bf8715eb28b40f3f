"""recstore.crypto against the official DRACOON crypto SDK vectors (Java unit data, and the
C#, JS and Swift SDKs' cross-SDK data). Parametrised over what is on disk, so a new vector is
picked up; minimum counts keep an empty glob from passing silently."""

from __future__ import annotations

import base64
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from recstore import crypto
from recstore.crypto import triplecrypt
from tests.conftest import DATA

VECTORS = DATA / "dracoon-crypto-java"
UNIT = VECTORS / "unit" / "data"
ORIGINS = ["unit", "integration/csharp", "integration/js", "integration/swift"]


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def key_pairs() -> list[tuple[str, Path, Path, str]]:
    """(id, private key file, public key file, password) for every key pair on disk."""
    found = []
    general = UNIT / "kp_general"
    unit_passwords = {
        "": text(general / "pw.txt"),
        "_pw_iso_umlaut": text(general / "pw_umlaut.txt"),
        "_pw_utf8_umlaut": text(general / "pw_umlaut.txt"),
        "_pw_utf8_emoticon": text(general / "pw_emoticon.txt"),
    }
    for folder in sorted(UNIT.glob("kp_rsa*")):
        for private in sorted(folder.glob("private_key*.json")):
            suffix = private.stem.removeprefix("private_key")
            public = folder / f"public_key{suffix}.json"
            found.append((f"unit/{folder.name}{suffix}", private, public, unit_passwords[suffix]))
    for folder in sorted(VECTORS.glob("integration/*/data/kp_*")):
        origin = folder.parts[-3]
        found.append(
            (
                f"{origin}/{folder.name}",
                folder / "private_key.json",
                folder / "public_key.json",
                text(folder / "pw.txt"),
            )
        )
    return found


KEY_PAIRS = key_pairs()


@cache
def unlocked(private: Path, password: str) -> crypto.UserPrivateKey:
    return crypto.decrypt_private_key(load(private), password)


def test_the_vectors_are_there() -> None:
    assert len(KEY_PAIRS) >= 18
    assert len(list(VECTORS.glob("*/**/fk_rsa*"))) >= 8


@pytest.mark.parametrize(
    ("private", "public", "password"), [k[1:] for k in KEY_PAIRS], ids=[k[0] for k in KEY_PAIRS]
)
def test_every_key_pair_opens_and_matches_its_public_key(
    private: Path, public: Path, password: str
) -> None:
    key = unlocked(private, password)
    container = load(public)
    assert key.version == container["version"] == load(private)["version"]
    ours = key.public_key_container()
    assert triplecrypt._public_key(ours)[1].public_numbers() == (
        triplecrypt._public_key(container)[1].public_numbers()
    )


def file_key_cases() -> list[tuple[str, Path, Path, str]]:
    """(id, file key folder, private key, password) for every fk_* folder of every origin."""
    cases = []
    for origin in ORIGINS:
        data = VECTORS / origin / "data" if origin != "unit" else UNIT
        for folder in sorted(data.glob("fk_rsa*")):
            pair = "kp_rsa2048" if "rsa2048" in folder.name else "kp_rsa4096"
            password_file = data / pair / "pw.txt"
            if not password_file.exists():
                password_file = UNIT / "kp_general" / "pw.txt"
            cases.append(
                (
                    f"{origin}/{folder.name}",
                    folder,
                    data / pair / "private_key.json",
                    text(password_file),
                )
            )
    return cases


FILE_KEYS = file_key_cases()


@pytest.mark.parametrize(
    ("folder", "private", "password"), [c[1:] for c in FILE_KEYS], ids=[c[0] for c in FILE_KEYS]
)
def test_every_encrypted_file_key_opens_to_its_plain_key(
    folder: Path, private: Path, password: str
) -> None:
    key = unlocked(private, password)
    plain = crypto.decrypt_file_key(load(folder / "enc_file_key.json"), key)
    expected = crypto.PlainFileKey.from_json(load(folder / "plain_file_key.json"))
    assert (plain.key, plain.iv, plain.tag) == (expected.key, expected.iv, expected.tag)


@pytest.mark.parametrize(
    ("folder", "private", "password"), [c[1:] for c in FILE_KEYS], ids=[c[0] for c in FILE_KEYS]
)
def test_our_encrypted_file_keys_open_with_the_sdks_key_pairs(
    folder: Path, private: Path, password: str
) -> None:
    plain = crypto.PlainFileKey.from_json(load(folder / "plain_file_key.json"))
    key = unlocked(private, password)
    public = key.public_key_container()
    ours = crypto.encrypt_file_key(plain, public)
    assert ours["version"] == load(folder / "enc_file_key.json")["version"]
    assert crypto.decrypt_file_key(ours, key) == crypto.PlainFileKey(
        plain.key, plain.iv, plain.tag, "A"
    )


@pytest.mark.parametrize("origin", ORIGINS)
def test_every_sdks_file_decrypts_and_encrypts_to_the_same_bytes(origin: str) -> None:
    files = VECTORS / origin / "files"
    plain = base64.b64decode(text(files / "plain_file.b64"))
    encrypted = base64.b64decode(text(files / "aes256gcm" / "enc_file.b64"))
    data = UNIT if origin == "unit" else VECTORS / origin / "data"
    opened = 0
    for key_file in sorted(data.glob("fk_rsa*/plain_file_key.json")):
        file_key = crypto.PlainFileKey.from_json(load(key_file))
        decryptor = crypto.FileDecryptor(file_key)
        out = decryptor.update(encrypted)
        try:
            decryptor.finalize()
        except crypto.TagMismatchError:
            continue  # this origin's file was made with its other file key
        opened += 1
        assert out == plain
        encryptor = crypto.FileEncryptor(crypto.PlainFileKey(file_key.key, file_key.iv, None))
        assert encryptor.update(plain) == encrypted
        assert encryptor.finalize().tag == file_key.tag
    assert opened >= 1


def test_a_modified_file_fails_its_tag() -> None:
    file_key = crypto.PlainFileKey.from_json(
        load(UNIT / "fk_rsa2048_aes256gcm" / "plain_file_key.json")
    )
    modified = base64.b64decode(text(VECTORS / "unit/files/aes256gcm/enc_file_modified.b64"))
    decryptor = crypto.FileDecryptor(file_key)
    decryptor.update(modified)
    with pytest.raises(crypto.TagMismatchError):
        decryptor.finalize()


BAD_KEY_PAIRS = {
    "private_key_bad_asn1.json": crypto.MalformedKeyError,
    "private_key_bad_pem.json": crypto.MalformedKeyError,
    "private_key_bad_value.json": crypto.MalformedKeyError,
    "private_key_bad_version.json": crypto.UnknownVersionError,
    "public_key_bad_pem.json": crypto.MalformedKeyError,
    "public_key_bad_value.json": crypto.MalformedKeyError,
    "public_key_bad_version.json": crypto.UnknownVersionError,
}


def test_every_bad_key_vector_is_listed() -> None:
    on_disk = {p.name for p in (UNIT / "kp_general").glob("*_bad_*.json")}
    assert on_disk == set(BAD_KEY_PAIRS)


@pytest.mark.parametrize(("name", "error"), sorted(BAD_KEY_PAIRS.items()))
def test_bad_key_vectors_raise_their_error(name: str, error: type[crypto.CryptoError]) -> None:
    container = load(UNIT / "kp_general" / name)
    password = text(UNIT / "kp_general" / "pw.txt")

    def use() -> None:
        if "privateKey" in container:
            crypto.decrypt_private_key(container, password)
        else:
            crypto.encrypt_file_key(crypto.PlainFileKey(b"k" * 32, b"i" * 12, b"t" * 16), container)

    with pytest.raises(error) as caught:
        use()
    assert password not in str(caught.value)


BAD_FILE_KEYS = {
    "enc_file_key_bad_key.json": crypto.DecryptionError,
    "enc_file_key_bad_version.json": crypto.UnknownVersionError,
    "enc_file_key_bad_iv.json": crypto.TagMismatchError,
    "enc_file_key_bad_tag.json": crypto.TagMismatchError,
    "plain_file_key_bad_key.json": crypto.TagMismatchError,
    "plain_file_key_bad_iv.json": crypto.TagMismatchError,
    "plain_file_key_bad_tag.json": crypto.TagMismatchError,
    "plain_file_key_bad_version.json": crypto.UnknownVersionError,
}


def test_every_bad_file_key_vector_is_listed() -> None:
    assert {p.name for p in (UNIT / "fk_general").glob("*_bad_*.json")} == set(BAD_FILE_KEYS)


@pytest.mark.parametrize(("name", "error"), sorted(BAD_FILE_KEYS.items()))
def test_bad_file_keys_fail_where_they_are_used(name: str, error: type[crypto.CryptoError]) -> None:
    """A bad key or version fails when opened; a bad IV or tag when the file is decrypted."""
    data = load(UNIT / "fk_general" / name)
    encrypted = base64.b64decode(text(VECTORS / "unit/files/aes256gcm/enc_file.b64"))
    private = unlocked(UNIT / "kp_rsa2048" / "private_key.json", text(UNIT / "kp_general/pw.txt"))

    def use() -> None:
        if name.startswith("enc_"):
            file_key = crypto.decrypt_file_key(data, private)
        else:
            file_key = crypto.PlainFileKey.from_json(data)
        decryptor = crypto.FileDecryptor(file_key)
        decryptor.update(encrypted)
        decryptor.finalize()

    with pytest.raises(error):
        use()


def test_wrong_password_is_its_own_error() -> None:
    private = load(UNIT / "kp_rsa2048" / "private_key.json")
    wrong = text(UNIT / "kp_general" / "pw_invalid.txt")
    with pytest.raises(crypto.WrongPasswordError) as caught:
        crypto.decrypt_private_key(private, wrong)
    assert wrong not in str(caught.value)


def test_crlf_pem_is_accepted() -> None:
    private = load(UNIT / "kp_rsa2048" / "private_key.json")
    private["privateKey"] = private["privateKey"].replace("\n", "\r\n")
    public = load(UNIT / "kp_rsa2048" / "public_key.json")
    public["publicKey"] = public["publicKey"].replace("\n", "\r\n")
    key = crypto.decrypt_private_key(private, text(UNIT / "kp_general" / "pw.txt"))
    plain = crypto.generate_file_key()
    plain = crypto.PlainFileKey(plain.key, plain.iv, b"t" * 16)
    assert crypto.decrypt_file_key(crypto.encrypt_file_key(plain, public), key).key == plain.key


def test_a_file_key_for_another_key_pair_version_is_refused() -> None:
    folder = UNIT / "fk_rsa4096_aes256gcm"
    rsa2048 = unlocked(UNIT / "kp_rsa2048" / "private_key.json", text(UNIT / "kp_general/pw.txt"))
    with pytest.raises(crypto.UnknownVersionError, match="not for key pair"):
        crypto.decrypt_file_key(load(folder / "enc_file_key.json"), rsa2048)
