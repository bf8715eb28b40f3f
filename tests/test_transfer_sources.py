"""Which sources a job may name (issue 33 §1): the rules, then the daemon refusing each kind of
job to the dead-letter queue with its reason while the object stays where it was."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from recstore.clients.aws import aws_client
from recstore.clients.s3 import S3Store
from recstore.common.errors import PermanentJobError
from recstore.common.source_rules import parse_rule
from recstore.devstack.appconfig import DEMO_INSTANCE, instance_document
from recstore.devstack.seed import aws_settings_from_state, seed_s3
from recstore.transfer.sources import SourcePolicy, SourceRefused
from tests.transfer_helpers import Setup, files_in, job

OWN = {"kaltura-archive": "archive.bucket", "recstore-leases": "leases.bucket"}


def refusal(policy: SourcePolicy, bucket: str, *keys: str, instance: Any = None) -> str:
    with pytest.raises(SourceRefused) as caught:
        policy.check(bucket, keys, instance)
    assert isinstance(caught.value, PermanentJobError)  # to the dead-letter queue, not retried
    return str(caught.value)


def test_recstores_own_buckets_are_never_a_source_whatever_the_lists_say() -> None:
    policy = SourcePolicy(["recordings", "kaltura-archive", "recstore-leases/x/"], OWN)
    assert refusal(policy, "kaltura-archive", "0_abc") == (
        "source bucket 'kaltura-archive' is recstore's own (archive.bucket) and never a source"
    )
    assert "(leases.bucket)" in refusal(policy, "recstore-leases", "x/lease")
    assert "(leases.bucket)" in refusal(
        policy, "recstore-leases", "x/lease", instance=["recstore-leases"]
    )


def test_an_unset_list_allows_nothing_and_says_which_key_to_set() -> None:
    assert "workers.FileTransferer.sourceBuckets is not set" in refusal(
        SourcePolicy(None, OWN), "recordings", "a.mp4"
    )


def test_only_listed_buckets_and_keys_under_their_prefixes() -> None:
    policy = SourcePolicy(["recordings/in/", "other"], OWN)
    policy.check("recordings", ["in/a.mp4", "in/deep/b.mp4"])
    policy.check("other", ["anything.mp4"])
    assert refusal(policy, "secrets", "a.mp4") == (
        "source bucket 'secrets' is not allowed by workers.FileTransferer.sourceBuckets"
    )
    reason = refusal(policy, "recordings", "in/a.mp4", "out/private-name.mp4")
    assert reason.startswith("keys[1] of bucket 'recordings' outside the key prefixes")
    assert "private-name" not in reason  # a key may carry personal data


def test_an_instances_list_narrows_and_never_widens() -> None:
    policy = SourcePolicy(["recordings"], OWN)
    policy.check("recordings", ["acme/a.mp4"], ["recordings/acme/"])
    assert "the instance's recordings.source-buckets" in refusal(
        policy, "recordings", "other/a.mp4", instance=["recordings/acme/"]
    )
    assert "workers.FileTransferer.sourceBuckets" in refusal(
        policy, "elsewhere", "a.mp4", instance=["elsewhere"]
    )


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("recordings\n", "the bucket is not a valid S3 bucket name"),
        ("Recordings", "the bucket is not a valid"),
        ("ab", "the bucket is not a valid"),
        ("recordings/in/\u202ex", "the key prefix holds a control or invisible character"),
        ("recordings/in\n", "the key prefix holds a control"),
    ],
)
def test_entries_are_checked_in_full(entry: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_rule(entry)


def exists(state: dict[str, Any], bucket: str, key: str) -> bool:
    async def go() -> bool:
        async with aws_client(aws_settings_from_state(state), "s3") as s3:
            return await S3Store(s3).find(bucket, key) is not None

    return asyncio.run(go())


def put(state: dict[str, Any], bucket: str, key: str, create: bool = False) -> None:
    async def go() -> None:
        async with aws_client(aws_settings_from_state(state), "s3") as s3:
            if create:
                await s3.create_bucket(
                    Bucket=bucket,
                    CreateBucketConfiguration={"LocationConstraint": state["region"]},
                )
            await s3.put_object(Bucket=bucket, Key=key, Body=b"not for sharing")

    asyncio.run(go())


def seed_configurator(state: dict[str, Any], domain: str, document: dict[str, Any]) -> None:
    async def go() -> None:
        import aiohttp

        async with aiohttp.ClientSession() as session:
            await session.post(
                f"{state['configurator_url']}/_devstack/seed",
                json={"instances": {domain: document}},
            )

    asyncio.run(go())


@pytest.mark.e2e
def test_the_daemon_refuses_each_source_it_may_not_touch_and_leaves_it_in_place(
    setup: Setup,
) -> None:
    state, tag = setup.state, setup.tag
    archive, leases = state["archive_bucket"], state["lease_bucket"]
    other = f"other-{tag}"
    put(state, archive, f"0_{tag}")
    put(state, leases, f"{tag}/lease")
    put(state, other, f"{tag}/config.yaml", create=True)
    asyncio.run(
        seed_s3(
            state,
            {
                "objects": [
                    {"key": f"{tag}/in/ok.mp4", "size": 1000, "seed": 1},
                    {"key": f"{tag}/out/x.mp4", "size": 1000, "seed": 2},
                    {"key": f"{tag}/in/b/y.mp4", "size": 1000, "seed": 3},
                ]
            },
        )
    )
    narrow = f"narrow-{tag}.example.com"
    document = instance_document(state, [])
    document["recordings"]["source-buckets"] = [f"recordings/{tag}/in/a/"]
    seed_configurator(state, narrow, document)
    config = setup.config({"sourceBuckets": [f"recordings/{tag}/in/", other]})

    def body(domain: str, bucket: str, key: str, meeting: int) -> str:
        doc = job(domain, [key], [{"path": f"src-{tag}"}], meeting=meeting)
        doc["storage"]["extra"]["aws.s3"]["bucket"] = bucket
        return json.dumps(doc)

    refused = {
        body(DEMO_INSTANCE, archive, f"0_{tag}", 1): (
            f"source bucket '{archive}' is recstore's own (archive.bucket)"
        ),
        body(DEMO_INSTANCE, leases, f"{tag}/lease", 2): (
            f"source bucket '{leases}' is recstore's own (leases.bucket)"
        ),
        body(DEMO_INSTANCE, "recordings", f"{tag}/out/x.mp4", 3): (
            "keys[0] of bucket 'recordings' outside the key prefixes "
            "workers.FileTransferer.sourceBuckets allows"
        ),
        body(DEMO_INSTANCE, f"x{other}", "a.mp4", 4): (
            f"source bucket 'x{other}' is not allowed by workers.FileTransferer.sourceBuckets"
        ),
        body(narrow, "recordings", f"{tag}/in/b/y.mp4", 6): (
            "keys[0] of bucket 'recordings' outside the key prefixes the instance's "
            "recordings.source-buckets allows"
        ),
    }
    setup.send(*refused, body(DEMO_INSTANCE, "recordings", f"{tag}/in/ok.mp4", 5))
    setup.start(config)
    setup.wait(lambda: setup.depth() == (0, 0) and setup.depth(dead=True)[0] == len(refused))
    letters = {letter["body"]: letter["reason"] for letter in setup.dead_letters()}
    assert sorted(letters) == sorted(refused)
    for sent, reason in refused.items():
        assert letters[sent].startswith(reason), letters[sent]
    for bucket, key in (
        (archive, f"0_{tag}"),
        (leases, f"{tag}/lease"),
        ("recordings", f"{tag}/out/x.mp4"),
        ("recordings", f"{tag}/in/b/y.mp4"),
    ):
        assert exists(state, bucket, key), (bucket, key)
    landed = [f["name"] for f in files_in(state, f"/Recordings/src-{tag}")]
    assert landed == ["ok.mp4"]  # the allowed job went through; nothing else was shared
    assert not exists(state, "recordings", f"{tag}/in/ok.mp4")


def test_the_bucket_the_configuration_came_from_is_never_a_source() -> None:
    """Its objects hold every secret of the configuration; the entrypoint fetched them from
    RECSTORE_CONFIG_S3_URI."""
    from recstore.settings import Settings, protected_buckets

    settings = Settings.model_validate(
        {"archive": {"bucket": "kaltura-archive"}, "leases": {"bucket": "recstore-leases"}}
    )
    environ = {"RECSTORE_CONFIG_S3_URI": "s3://team-config/recstore/"}
    protected = protected_buckets(settings, environ)
    assert protected == {
        "team-config": "RECSTORE_CONFIG_S3_URI",
        "kaltura-archive": "archive.bucket",
        "recstore-leases": "leases.bucket",
    }
    assert "(RECSTORE_CONFIG_S3_URI)" in refusal(
        SourcePolicy(["team-config"], protected), "team-config", "recstore/app.yaml"
    )
    assert protected_buckets(settings, {}) == {
        "kaltura-archive": "archive.bucket",
        "recstore-leases": "leases.bucket",
    }
