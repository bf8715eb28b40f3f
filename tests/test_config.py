"""Configuration: YAML + environment + *_FILE secrets, validated once, problems named."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from recstore.common.errors import ConfigError
from recstore.settings import Settings
from recstore.settings.reference import render_defaults
from recstore.workers.registry import enabled, load_settings
from tests.conftest import ROOT, clean_env, run_cli, run_cli_process

OFF = {"workers": {"FileTransferer": {"enabled": False}, "DracoonGlobalSharer": {"count": 0}}}


def write(tmp_path: Path, doc: object, name: str = "app.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc) if not isinstance(doc, str) else doc)
    return path


def problems_of(path: Path | None, environ: dict[str, str] | None = None) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ or {})
    return dict(caught.value.problems)


def test_seed_keys_load_with_their_types(tmp_path: Path) -> None:
    doc = {
        "logger": {"level": "debug", "format": "json"},
        "configurator": {"url": "http://configurator.local"},
        "queues": {"jobs": "https://sqs.example/1/jobs", "dead": "https://sqs.example/1/dead"},
        "workers": {
            "FileTransferer": {
                "enabled": False,
                "count": 8,
                "reportLevel": "error",
                "queue": "jobs",
                "deadLetterQueue": "dead",
                "source": {"type": "s3"},
                "destination": {"type": "dracoon"},
            },
            "DracoonGlobalSharer": {"count": 0, "jobDelayMinutes": 5},
        },
        "s3": {"chunkSize": "32MiB", "removeAfterTransferring": False},
        "dracoon": {
            "baseUrl": "https://dracoon.example",
            "login": "svc",
            "password": "pw-one",
            "encryptionPassword": "pw-two",
            "parentRoomId": 42,
        },
        "daemon": {"gracePeriod": "2m"},
    }
    settings = load_settings(write(tmp_path, doc), {})
    assert settings.workers.file_transferer.count == 8
    assert settings.workers.file_transferer.report_level == "error"
    assert settings.workers.dracoon_global_sharer.job_delay_minutes == 5
    assert settings.s3.chunk_size == 32 * 1024 * 1024
    assert settings.s3.remove_after_transferring is False
    assert settings.dracoon.parent_room_id == 42
    assert settings.dracoon.password is not None
    assert settings.dracoon.password.get_secret_value() == "pw-one"
    assert settings.daemon.grace_period == 120.0
    assert settings.queue_url("jobs") == "https://sqs.example/1/jobs"
    assert settings.logger.format == "json"


@pytest.mark.parametrize(
    ("doc", "key", "fragment"),
    [
        (
            {"workers": {"DracoonGlobalSharer": {"count": 2}}},
            "workers.DracoonGlobalSharer.count",
            "less than or equal to 1",
        ),
        (
            {"workers": {"DracoonGlobalSharer": {"jobDelayMinutes": 0}}},
            "workers.DracoonGlobalSharer.jobDelayMinutes",
            "greater than or equal to 1",
        ),
        ({"s3": {"chunkSize": "20 parsecs"}}, "s3.chunkSize", "is not a size"),
        ({"s3": {"chunkSize": 1000}}, "s3.chunkSize", "greater than or equal to"),
        ({"s3": {"chunkSise": "20MB"}}, "s3.chunkSise", "unknown key"),
        ({"http": {"port": 70000}}, "http.port", "less than or equal to 65535"),
        ({"logger": {"format": "xml"}}, "logger.format", "'text' or 'json'"),
        ({"daemon": {"gracePeriod": "soon"}}, "daemon.gracePeriod", "is not a duration"),
        (
            {"workers": {"ArchiveActions": {"retryDelay": 60, "retryDelayMax": 30}}},
            "workers.ArchiveActions.retryDelayMax",
            "shorter than retryDelay (60)",
        ),
        (
            {"workers": {"FileTransferer": {"retryDelay": 1000}}},  # the default max is 900
            "workers.FileTransferer.retryDelayMax",
            "shorter than retryDelay (1000)",
        ),
        (
            {"workers": {"FileTransferer": {"source": {"type": "ftp"}}}},
            "workers.FileTransferer.source.type",
            "'s3'",
        ),
    ],
)
def test_each_bad_key_is_named(
    tmp_path: Path, doc: dict[str, object], key: str, fragment: str
) -> None:
    problems = problems_of(write(tmp_path, doc))
    assert key in problems
    assert fragment in problems[key]


def test_aws_keys_come_in_pairs(tmp_path: Path) -> None:
    problems = problems_of(write(tmp_path, {**OFF, "aws": {"accessKeyId": "AKIA123"}}))
    assert "aws.secretAccessKey" in problems


def test_singleton_workers_need_a_lease_bucket_unless_leases_are_off(tmp_path: Path) -> None:
    doc: dict[str, object] = {
        "workers": {"FileTransferer": {"enabled": False}, "DracoonGlobalSharer": {"count": 1}}
    }
    assert "leases.bucket" in problems_of(write(tmp_path, doc))
    off = problems_of(write(tmp_path, {**doc, "leases": {"enabled": False}}), {})
    assert "leases.bucket" not in off


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    doc = {"s3": {"chunkSize": "x"}, "http": {"port": -1}, "bogus": 1}
    problems = problems_of(write(tmp_path, doc), {"RECSTORE_NO_SUCH_KEY": "1"})
    assert set(problems) >= {"s3.chunkSize", "http.port", "bogus", "RECSTORE_NO_SUCH_KEY"}


def test_transferer_needs_a_pool_and_known_queues(tmp_path: Path) -> None:
    doc = {
        "queues": {"recordings": "https://sqs.eu-central-1.amazonaws.com/1/recordings"},
        "workers": {"FileTransferer": {"count": 0, "deadLetterQueue": "no-such-queue"}},
    }
    problems = problems_of(write(tmp_path, doc))
    assert "workers.FileTransferer.count" in problems
    assert (
        "'no-such-queue' is not a key of `queues`"
        in problems["workers.FileTransferer.deadLetterQueue"]
    )
    assert "workers.FileTransferer.queue" not in problems  # a key of `queues`: fine


def test_configured_target_templates_and_expirations_are_checked_on_load(tmp_path: Path) -> None:
    copies = [
        {"path": "$instance/$meetingTyp"},
        {"path": "ok/$meetingType", "expiration": "2 yeers"},
        {"path": "/Recordings/$instance"},
        {"path": "$instance/$meetingType", "expiration": "4 years 3 months"},
    ]
    dracoon = {
        "parent-room-id": 1,
        "login": "svc",
        "password": "p",
        "encryption-password": "e",
        "targets": [{"meetingTypeId": "*any*", "copyTo": copies}],
    }
    doc = {**OFF, "instances": {"acme.example": {"recordings": {"dracoon": dracoon}}}}
    problems = problems_of(write(tmp_path, doc))
    key = "instances.acme.example.recordings.dracoon.targets.0.copyTo"
    assert "unknown variable $meetingTyp" in problems[f"{key}.0.path"]
    assert "'2 yeers'" in problems[f"{key}.1.expiration"]
    assert "relative to the parent room" in problems[f"{key}.2.path"]
    assert not [k for k in problems if k.startswith(f"{key}.3")]


def test_environment_overrides_yaml_case_insensitively(tmp_path: Path) -> None:
    path = write(tmp_path, {**OFF, "s3": {"chunkSize": "8MB"}})
    settings = load_settings(
        path,
        {
            "RECSTORE_S3__CHUNKSIZE": "16MiB",
            "recstore_ignored_lowercase": "1",
            "RECSTORE_workers__dracoonGlobalSharer__JOBDELAYMINUTES": "7",
            "RECSTORE_DRACOON__PARENTROOMID": "99",
            "RECSTORE_QUEUES__EXTRA": "https://sqs.example/1/extra",
        },
    )
    assert settings.s3.chunk_size == 16 * 1024 * 1024
    assert settings.workers.dracoon_global_sharer.job_delay_minutes == 7
    assert settings.dracoon.parent_room_id == 99
    assert settings.queues["extra"] == "https://sqs.example/1/extra"


def test_secrets_from_files_in_yaml_and_environment(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("from-yaml-file\n")
    (tmp_path / "enc").write_text("from-env-file\n")
    path = write(
        tmp_path,
        {**OFF, "dracoon": {"password_FILE": str(tmp_path / "pw"), "encryptionPassword": "inline"}},
    )
    settings = load_settings(
        path, {"RECSTORE_DRACOON__ENCRYPTIONPASSWORD_FILE": str(tmp_path / "enc")}
    )
    assert settings.dracoon.password is not None
    assert settings.dracoon.password.get_secret_value() == "from-yaml-file"
    assert settings.dracoon.encryption_password is not None
    assert settings.dracoon.encryption_password.get_secret_value() == "from-env-file"


def test_unreadable_secret_file_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, {**OFF, "dracoon": {"password_FILE": str(tmp_path / "missing")}})
    problems = problems_of(path)
    assert "dracoon.password_FILE" in problems
    assert "cannot read" in problems["dracoon.password_FILE"]


def test_instances_section_in_the_configurators_key_names(tmp_path: Path) -> None:
    doc = yaml.safe_load(
        """
        instances:
          acme.example.com:
            recordings:
              storage: dracoon
              dracoon:
                parent-room-id: 42
                login: svc-recordings
                password: p1-secret
                encryption-password: p2-secret
                targets:
                  - meetingTypeId: 14
                    copyTo:
                      - {path: "$instance/$meetingType", expiration: "4 years 3 months"}
                  - meetingTypeId: "*any*"
                    copyTo: [{path: "all"}]
        """
    )
    settings = load_settings(write(tmp_path, {**OFF, **doc}), {})
    dracoon = settings.instances["acme.example.com"].recordings.dracoon
    assert dracoon.parent_room_id == 42
    assert dracoon.targets[0].copy_to[0].expiration == "4 years 3 months"
    assert dracoon.targets[1].meeting_type_id == "*any*"
    assert "p1-secret" not in repr(settings)


def test_config_check_exits_2_naming_each_key(tmp_path: Path) -> None:
    path = write(
        tmp_path, {"s3": {"chunkSize": "huge"}, "workers": {"DracoonGlobalSharer": {"count": 3}}}
    )
    result = run_cli("config", "check", "--config", str(path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert any(line.startswith("recstore: configuration error: s3.chunkSize:") for line in lines)
    assert any("workers.DracoonGlobalSharer.count:" in line for line in lines)


@pytest.mark.e2e
def test_run_with_bad_config_exits_2_before_starting(tmp_path: Path) -> None:
    path = write(tmp_path, "s3: [not, a, mapping\n")
    result = run_cli_process("run", "--config", str(path))  # the status the shell sees
    assert result.returncode == 2
    assert "is not valid YAML at line" in result.stderr


def test_config_show_masks_every_secret(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("file-secret-value")
    doc = {
        **OFF,
        "aws": {"accessKeyId": "AKIA-visible", "secretAccessKey": "aws-secret-value"},
        "dracoon": {
            "password": "yaml-secret-value",
            "encryptionPassword_FILE": str(tmp_path / "secret"),
        },
    }
    env = clean_env(RECSTORE_DRACOON__CLIENTSECRET="env-secret-value")
    result = run_cli("config", "show", "--config", str(write(tmp_path, doc)), env=env)
    assert result.returncode == 0, result.stderr
    for secret in (
        "aws-secret-value",
        "yaml-secret-value",
        "file-secret-value",
        "env-secret-value",
    ):
        assert secret not in result.stdout
    shown = yaml.safe_load(result.stdout)
    assert shown["dracoon"]["password"] == "**********"
    assert shown["dracoon"]["encryptionPassword"] == "**********"
    assert shown["aws"]["secretAccessKey"] == "**********"


def test_config_error_never_echoes_a_secret(tmp_path: Path) -> None:
    doc = {**OFF, "dracoon": {"password": {"nested": "s3cr3t-value"}}}
    problems = problems_of(write(tmp_path, doc))
    assert "dracoon.password" in problems
    assert "s3cr3t-value" not in str(problems)


def test_documented_defaults_are_the_models_defaults() -> None:
    """conf/app.yaml is generated from the model and holds exactly its defaults."""
    shipped = (ROOT / "conf" / "app.yaml").read_text()
    assert shipped == render_defaults(), "run `recstore config defaults > conf/app.yaml`"
    doc = yaml.safe_load(shipped)
    assert Settings.model_validate(doc) == Settings.model_validate({"queues": doc["queues"]})


def test_test_configuration_is_valid() -> None:
    settings = load_settings(ROOT / "conf" / "app.test.yaml", {})
    assert settings.http.port == 0


#: A full configuration: the pool and two singletons on, each with what it needs.
FULL = {
    "queues": {
        "recordings": "https://sqs.example/1/rec",
        "recordings-dlq": "https://sqs.example/1/d",
    },
    "workers": {
        "FileTransferer": {"enabled": True, "sourceBuckets": ["recordings"]},
        "DracoonGlobalSharer": {"count": 1},
        "VidyoSync": {"enabled": True},
    },
    "dracoon": {"baseUrl": "https://dracoon.example", "login": "svc", "password": "pw-one"},
    "vidyo": {"url": "https://replay.example", "user": "admin", "password": "pw-vidyo"},
    "kaltura": {"serviceUrl": "https://kaltura.example", "partnerId": 1, "adminSecret": "s-3"},
    "leases": {"bucket": "leases"},
}


def test_workers_option_runs_only_the_named_workers(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    on = [spec.name for spec in enabled(load_settings(path, {}))]
    assert on == ["FileTransferer", "DracoonGlobalSharer", "VidyoSync"]
    pool = load_settings(path, {}, workers="FileTransferer")
    assert [spec.name for spec in enabled(pool)] == ["FileTransferer"]
    singletons = load_settings(path, {}, workers=" VidyoSync,DracoonGlobalSharer ")
    assert [spec.name for spec in enabled(singletons)] == ["DracoonGlobalSharer", "VidyoSync"]
    assert singletons.workers.vidyo_sync.interval_minutes == 15  # the rest of the section kept


def test_a_replica_is_only_asked_for_what_its_workers_need(tmp_path: Path) -> None:
    doc = {**FULL, "leases": {}, "vidyo": {}}
    assert {"leases.bucket", "vidyo.url"} <= problems_of(write(tmp_path, doc)).keys()
    pool = load_settings(write(tmp_path, doc), {}, workers="FileTransferer")
    assert pool.workers.vidyo_sync.enabled is False


@pytest.mark.parametrize(
    ("workers", "key", "message"),
    [
        (
            "FileTransferer,Transferer",
            "workers (--workers, RECSTORE_WORKERS)",
            "'Transferer' is no",
        ),
        ("ArchiveActions", "workers.ArchiveActions.enabled", "off in the configuration"),
        (" , ", "workers (--workers, RECSTORE_WORKERS)", "names no worker"),
    ],
)
def test_workers_option_refuses_unknown_and_unconfigured_names(
    tmp_path: Path, workers: str, key: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, FULL), {}, workers=workers)
    assert message in dict(caught.value.problems)[key]


def test_config_check_says_what_the_replica_runs_and_needs(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    result = run_cli("config", "check", "--config", str(path), "--workers", "FileTransferer")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "configuration is valid"
    assert "  runs: FileTransferer (pool: any number of replicas)" in lines
    assert (
        "  consumes: https://sqs.example/1/rec (dead letters to https://sqs.example/1/d)" in lines
    )
    assert "  reaches: DRACOON" in lines
    assert (
        "  reads and removes: the recordings' source objects named in each job, only under "
        "s3://recordings (workers.FileTransferer.sourceBuckets)" in lines
    )
    assert not any("leases" in line for line in lines)
    env = clean_env(RECSTORE_WORKERS="VidyoSync,DracoonGlobalSharer")
    result = run_cli("config", "check", "--config", str(path), env=env)
    assert result.returncode == 0, result.stderr
    assert "  leases: s3://leases/recstore/leases/ (held by DracoonGlobalSharer, VidyoSync)" in (
        result.stdout.splitlines()
    )
    assert "  reaches: DRACOON, Kaltura, VidyoReplay" in result.stdout.splitlines()


def test_config_check_and_run_exit_2_naming_a_worker_not_configured(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    for command in (("config", "check"), ("run",)):
        result = run_cli(*command, "--config", str(path), "--workers", "Archiver,Bogus")
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert any("workers.Archiver.enabled: named in --workers but off" in line for line in lines)
        assert any("'Bogus' is no worker: one of FileTransferer," in line for line in lines)


def test_the_seeds_dracoon_test_keys_are_an_alias_of_the_account(tmp_path: Path) -> None:
    seed_test = {
        "baseUrl": "https://dracoon.team/api/v4",
        "login": "svc-test",
        "password": "pw-test-1",
        "encryptionPassword": "pw-test-2",
        "parentRoomId": 42,
    }
    settings = load_settings(write(tmp_path, {**OFF, "dracoon": {"test": seed_test}}), {})
    assert settings.dracoon.login == "svc-test"
    assert settings.dracoon.base_url == "https://dracoon.team"
    assert settings.dracoon.encryption_password is not None
    assert settings.dracoon.encryption_password.get_secret_value() == "pw-test-2"
    assert settings.dracoon.parent_room_id == 42
    both = {**OFF, "dracoon": {"login": "svc", "test": {"login": "other"}}}
    assert (
        "dracoon.test.login and dracoon.login differ"
        in problems_of(write(tmp_path, both))["dracoon"]
    )


def test_the_seeds_topics_yml_names_the_queues(tmp_path: Path) -> None:
    work, dead = "https://sqs.example/1/recordings", "https://sqs.example/1/recordings-dlq"
    topics = write(tmp_path, {"recordings": work, "recordings-dlq": dead}, "topics.yml")
    no_sharer = {  # FileTransferer: on
        "workers": {
            "DracoonGlobalSharer": {"count": 0},
            "FileTransferer": {"sourceBuckets": "recordings"},
        }
    }
    doc = {
        **no_sharer,
        "queuesFile": str(topics),
        "queues": {"recordings-dlq": "https://sqs.example/1/mine"},
    }
    settings = load_settings(write(tmp_path, doc), {})
    assert settings.queue_url("recordings") == work  # the FileTransferer's queue is found
    assert settings.queue_url("recordings-dlq") == "https://sqs.example/1/mine"  # queues win
    nested = write(tmp_path, {"topics": {"recordings": work, "recordings-dlq": dead}}, "t2.yml")
    assert load_settings(write(tmp_path, {**no_sharer, "queuesFile": str(nested)}), {}).queues == {
        "recordings": work,
        "recordings-dlq": dead,
    }
    bad = write(tmp_path, {"recordings": [work]}, "bad.yml")
    assert (
        "must map queue names to queue URLs"
        in problems_of(write(tmp_path, {"queuesFile": str(bad)}))["queuesFile"]
    )


SEED_004 = next((ROOT / "tests" / "data" / "seeds").glob("004_*.txt")).read_text()


def test_every_setting_the_seed_documents_loads_with_the_seeds_values(tmp_path: Path) -> None:
    """Seed 004's configuration keys, found in its own text, each given a value as the seed
    describes it (its baseUrl, its test account, its topics.yml). What recstore adds to such a
    file: the dead-letter queue's URL and leases off (or a lease bucket) for the sharer."""
    found = re.finditer(
        r"(?<!/)(?<!recordings\.)(?<!extra\.)(?:workers|s3|dracoon|configurator|logger)\.[A-Za-z.*]*[A-Za-z*]",
        SEED_004,
    )
    named = {m.group(0) for m in found if not m.group(0).endswith(".*")}
    values: dict[str, object] = {
        "configurator.url": "http://configurator.local",
        "workers.FileTransferer.count": 1,
        "workers.FileTransferer.reportLevel": "info",
        "workers.FileTransferer.queue": "recordings",
        "workers.FileTransferer.source.type": "s3",
        "workers.FileTransferer.destination.type": "dracoon",
        "workers.DracoonGlobalSharer.count": 1,
        "workers.DracoonGlobalSharer.jobDelayMinutes": 60,
        "s3.chunkSize": 20_000_000,
        "s3.removeAfterTransferring": True,
        "dracoon.baseUrl": "https://dracoon.team/api/v4",
        "dracoon.login": "svc",
        "dracoon.password": "pw-seed-1",
        "dracoon.encryptionPassword": "pw-seed-2",
        "dracoon.parentRoomId": 42,
    }
    assert named == set(values)  # the seed's keys, no more, no fewer
    doc: dict[str, Any] = {}
    for key, value in values.items():
        *path, last = key.split(".")
        node = doc
        for part in path:
            node = node.setdefault(part, {})
        node[last] = value
    doc["dracoon"]["test"] = {k: doc["dracoon"][k] for k in ("login", "password")}  # seed's alias
    doc["logger"] = {"level": "info"}
    topics = write(
        tmp_path,
        {"recordings": "https://sqs.example/1/rec", "recordings-dlq": "https://sqs.example/1/dlq"},
        "topics.yml",
    )
    doc["queuesFile"] = str(topics)
    doc["leases"] = {"enabled": False}
    assert problems_of(write(tmp_path, doc)) == {
        "workers.FileTransferer.sourceBuckets": "required while the FileTransferer runs: list "
        "the buckets (or bucket/prefix) that job messages may name as their source, e.g. "
        "[recordings]"
    }
    doc["workers"]["FileTransferer"]["sourceBuckets"] = ["recordings"]
    settings = load_settings(write(tmp_path, doc), {})
    assert settings.dracoon.base_url == "https://dracoon.team"
    assert settings.queue_url(settings.workers.file_transferer.queue) == "https://sqs.example/1/rec"
    assert settings.s3.chunk_size == 20_000_000


def test_the_file_transferer_starts_only_with_its_sources_listed_none_of_them_recstores_own(
    tmp_path: Path,
) -> None:
    """Issue 33 §1: a message names its bucket, so the daemon refuses to start a transferer that
    would take any bucket; the archive and lease buckets are never a source."""
    doc: dict[str, Any] = json.loads(json.dumps(FULL))
    doc["archive"] = {"bucket": "kaltura-archive"}
    del doc["workers"]["FileTransferer"]["sourceBuckets"]
    assert (
        "required while the FileTransferer runs"
        in problems_of(write(tmp_path, doc))["workers.FileTransferer.sourceBuckets"]
    )
    listed = ["recordings", "leases/x/", "kaltura-archive"]
    doc["workers"]["FileTransferer"]["sourceBuckets"] = listed
    problems = problems_of(write(tmp_path, doc))
    assert problems["workers.FileTransferer.sourceBuckets"] == (
        "'kaltura-archive' is archive.bucket: never a source"
    )
    doc["workers"]["FileTransferer"]["sourceBuckets"] = ["recordings", "leases/x/"]
    assert (
        "'leases' is leases.bucket"
        in problems_of(write(tmp_path, doc))["workers.FileTransferer.sourceBuckets"]
    )
    doc["workers"]["FileTransferer"]["sourceBuckets"] = ["recordings\n"]
    assert (
        "not a valid S3 bucket name"
        in problems_of(write(tmp_path, doc))["workers.FileTransferer.sourceBuckets"]
    )
    env = {"RECSTORE_WORKERS__FILETRANSFERER__SOURCEBUCKETS": "recordings, other/in/"}
    del doc["workers"]["FileTransferer"]["sourceBuckets"]
    settings = load_settings(write(tmp_path, doc), env)
    assert settings.workers.file_transferer.source_buckets == ("recordings", "other/in/")


def test_an_invalid_aws_region_is_a_configuration_error_naming_the_key(tmp_path: Path) -> None:
    for region in ("eu central 1", "eu-central-1\n", "-eu", "12", ""):
        assert "not an AWS region name" in problems_of(
            write(tmp_path, {"aws": {"region": region}})
        ).get("aws.region", ""), region
    job = {
        "storage": {"type": "dracoon", "extra": {"aws.s3": {"bucket": "recs", "keys": ["a.mp4"]}}},
        "meeting": {"id": 5, "type": {"name": "cli"}},
        "instance": {"domain": "acme.example.com"},
    }
    config = {"aws": {"region": "eu central 1"}, "instances": {}}
    result = run_cli(
        "transfer",
        "--config",
        str(write(tmp_path, config)),
        "--file",
        str(write(tmp_path, job, "job.json")),
    )
    assert result.returncode == 2, result.stderr
    assert "aws.region: is not an AWS region name" in result.stderr
    assert "Traceback" not in result.stderr
