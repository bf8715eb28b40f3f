"""The file-key sharing rules shared by the transferer and the global sharer."""

from __future__ import annotations

from functools import cache
from typing import Any

from recstore import crypto
from recstore.clients.dracoon_wire import MissingKeys
from recstore.transfer.keys import MissingKeyResolver, grants_for_users


@cache
def pair(name: str, version: str) -> tuple[dict[str, Any], crypto.UserPrivateKey]:
    private, public = crypto.generate_user_keypair(version, f"pw-{name}", iterations=1000)
    return public, crypto.decrypt_private_key(private, f"pw-{name}")


def sealed_file_key() -> crypto.PlainFileKey:
    encryptor = crypto.FileEncryptor(crypto.generate_file_key())
    encryptor.update(b"recording")
    return encryptor.finalize()


def test_every_key_pair_of_every_user_gets_a_copy() -> None:
    plain = sealed_file_key()
    alice_a, alice_key_a = pair("alice", "A")
    alice_4096, alice_key_4096 = pair("alice", "RSA-4096")
    bob, bob_key = pair("bob", "RSA-4096")
    result = grants_for_users(7, plain, [(1, [alice_a, alice_4096]), (2, [bob])])
    assert result.skipped == []
    assert [(g.file_id, g.user_id, g.file_key["version"]) for g in result.grants] == [
        (7, 1, "A"),
        (7, 1, "RSA-4096/AES-256-GCM"),
        (7, 2, "RSA-4096/AES-256-GCM"),
    ]
    keys = [alice_key_a, alice_key_4096, bob_key]
    for grant, key in zip(result.grants, keys, strict=True):
        assert crypto.decrypt_file_key(dict(grant.file_key), key).key == plain.key
    assert result.grants[0].to_json()["fileKey"]["tag"] == crypto.PlainFileKey.to_json(plain)["tag"]


def test_a_corrupt_public_key_skips_only_that_user() -> None:
    bob, _ = pair("bob", "RSA-4096")
    corrupt = {
        "version": "A",
        "publicKey": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
    }
    result = grants_for_users(7, sealed_file_key(), [(1, [corrupt]), (2, [bob])])
    assert [g.user_id for g in result.grants] == [2]
    assert [(s.user_id, s.reason.split(":")[0]) for s in result.skipped] == [
        (1, "public key unusable")
    ]


def test_missing_keys_page_is_resolved_with_the_accounts_private_key() -> None:
    service_public, service_key = pair("service", "RSA-4096")
    carol_public, carol_key = pair("carol", "A")
    ours, foreign = sealed_file_key(), sealed_file_key()
    stranger_public, _ = pair("stranger", "RSA-4096")
    page = MissingKeys.model_validate(
        {
            "items": [
                {"userId": 3, "fileId": 10},
                {"userId": 3, "fileId": 11},
                {"userId": 4, "fileId": 10},
            ],
            "users": [{"id": 3, "publicKeyContainer": carol_public}],
            "files": [
                {"id": 10, "fileKeyContainer": crypto.encrypt_file_key(ours, service_public)},
                {"id": 11, "fileKeyContainer": crypto.encrypt_file_key(foreign, stranger_public)},
            ],
        }
    )
    result = MissingKeyResolver({"RSA-4096": service_key}).grants_for_page(page)
    assert [(g.file_id, g.user_id) for g in result.grants] == [(10, 3)]
    assert crypto.decrypt_file_key(dict(result.grants[0].file_key), carol_key).key == ours.key
    reasons = {(s.file_id, s.user_id): s.reason for s in result.skipped}
    assert reasons[(11, 3)].startswith("file key cannot be decrypted")
    assert reasons[(10, 4)] == "the server sent no public key"


def test_a_file_listed_once_per_key_pair_opens_with_the_key_of_its_version() -> None:
    """An account with an ``A`` and an ``RSA-4096`` pair: the server lists a file once per
    file key the account holds. Here the RSA-4096 key held is damaged and the ``A`` one fine;
    the resolver tries each with the private key of its version."""
    plain = sealed_file_key()
    a_public, a_key = pair("migrating", "A")
    rsa_public, rsa_key = pair("migrating", "RSA-4096")
    carol_public, carol_key = pair("carol", "RSA-4096")
    damaged = {**crypto.encrypt_file_key(plain, rsa_public), "key": "AAAA"}
    page = MissingKeys.model_validate(
        {
            "items": [{"userId": 3, "fileId": 10}],
            "users": [{"id": 3, "publicKeyContainer": carol_public}],
            "files": [
                {"id": 10, "fileKeyContainer": crypto.encrypt_file_key(plain, a_public)},
                {"id": 10, "fileKeyContainer": damaged},
            ],
        }
    )
    keys = {"A": a_key, "RSA-4096": rsa_key}
    result = MissingKeyResolver(keys).grants_for_page(page)
    assert result.skipped == []
    assert crypto.decrypt_file_key(dict(result.grants[0].file_key), carol_key).key == plain.key
    only_4096 = MissingKeyResolver({"RSA-4096": rsa_key}).grants_for_page(page)
    assert [s.reason.split(":")[0] for s in only_4096.skipped] == [
        "file key cannot be decrypted with this account's key"
    ]
