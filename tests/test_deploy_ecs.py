"""deploy/ecs/: the task, service and scaling definitions are valid requests by botocore's own
service models (what `aws ecs register-task-definition --cli-input-json` sends), and agree with
the daemon: configuration, secrets, drain time, health check, logs and the pool's queue."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.session import get_session
from botocore.validate import ParamValidator

from recstore.runtime.supervisor import CANCEL_TIMEOUT
from recstore.settings import Settings
from recstore.workers.registry import enabled, load_settings
from tests.deploy_helpers import DEPLOY, KUBERNETES, by_kind, load_all

ECS = DEPLOY / "ecs"
ROLES = {
    "pool": ["FileTransferer", "ArchiveActions"],
    "singletons": ["DracoonGlobalSharer", "VidyoSync", "Archiver", "Restorer"],
}


def read(name: str) -> dict[str, Any]:
    return dict(json.loads((ECS / name).read_text()))


def problems(service: str, operation: str, params: dict[str, Any]) -> str:
    """botocore's own validation of a request: unknown or missing members, types, ranges."""
    shape = get_session().get_service_model(service).operation_model(operation).input_shape
    report = ParamValidator().validate(params, shape)
    return str(report.generate_report()) if report.has_errors() else ""


def container(role: str) -> dict[str, Any]:
    return dict(read(f"taskdef-{role}.json")["containerDefinitions"][0])


@pytest.mark.parametrize("role", sorted(ROLES))
def test_task_and_service_definitions_are_valid_requests(role: str) -> None:
    assert problems("ecs", "RegisterTaskDefinition", read(f"taskdef-{role}.json")) == ""
    assert problems("ecs", "CreateService", read(f"service-{role}.json")) == ""


def test_the_validation_catches_a_misspelled_member() -> None:
    task = read("taskdef-pool.json")
    task["containerDefinitions"][0]["stopTimeOut"] = 75
    assert "Unknown parameter in containerDefinitions[0]" in problems(
        "ecs", "RegisterTaskDefinition", task
    )


def test_scaling_requests_are_valid_and_track_the_pools_queue() -> None:
    scaling = read("autoscaling-pool.json")
    for operation, params in scaling.items():
        assert problems("application-autoscaling", operation, params) == ""
    target, policy = scaling["RegisterScalableTarget"], scaling["PutScalingPolicy"]
    service = read("service-pool.json")
    resource = f"service/{service['cluster']}/{service['serviceName']}"
    assert target["ResourceId"] == policy["ResourceId"] == resource
    assert target["MinCapacity"] == 1
    config = example_config()
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == config.workers.file_transferer.count
    queues = {
        d["Value"]
        for metric in tracking["CustomizedMetricSpecification"]["Metrics"]
        if "MetricStat" in metric and metric["MetricStat"]["Metric"]["Namespace"] == "AWS/SQS"
        for d in metric["MetricStat"]["Metric"]["Dimensions"]
    }
    assert queues == {config.queue_url(config.workers.file_transferer.queue).rsplit("/", 1)[1]}
    assert tracking["ScaleInCooldown"] >= 300
    broken = copy.deepcopy(policy)
    broken["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] = "four"
    assert problems("application-autoscaling", "PutScalingPolicy", broken) != ""


def example_config() -> Settings:
    doc = yaml.safe_load((ECS / "app.yaml").read_text())
    return Settings.model_validate({k: doc[k] for k in ("queues", "workers", "daemon", "http")})


def test_the_ecs_configuration_is_the_kubernetes_one() -> None:
    config_map = by_kind(load_all(KUBERNETES / "base" / "configmap.yaml"), "ConfigMap")
    assert yaml.safe_load((ECS / "app.yaml").read_text()) == yaml.safe_load(
        config_map["recstore-config"]["data"]["app.yaml"]
    )


@pytest.mark.parametrize("role", sorted(ROLES))
def test_each_task_loads_its_workers_with_its_secrets(role: str, tmp_path: Path) -> None:
    spec = container(role)
    env = {item["name"]: item["value"] for item in spec["environment"]}
    assert env["RECSTORE_CONFIG_S3_URI"].startswith("s3://")
    # ECS puts each secret's value into its variable; a stand-in value per secret here.
    environ = {item["name"]: f"secret-of-{item['name']}" for item in spec["secrets"]}
    assert all(item["valueFrom"].startswith("arn:aws:") for item in spec["secrets"])
    config = tmp_path / "app.yaml"
    config.write_text((ECS / "app.yaml").read_text())
    settings = load_settings(config, environ, workers=env["RECSTORE_WORKERS"])
    assert [spec.name for spec in enabled(settings)] == ROLES[role]


@pytest.mark.parametrize("role", sorted(ROLES))
def test_each_task_drains_probes_and_logs_as_the_daemon_does(role: str) -> None:
    spec, config = container(role), example_config()
    grace = config.daemon.grace_period
    assert grace + CANCEL_TIMEOUT < spec["stopTimeout"] <= min(120, grace + CANCEL_TIMEOUT + 15)
    check = spec["healthCheck"]
    assert check["command"] == ["CMD", "/app/entrypoint.sh", "healthcheck"]
    assert check["interval"] * check["retries"] >= 600  # replaced only after a long failure
    assert spec["portMappings"][0]["containerPort"] == config.http.port
    assert spec["logConfiguration"]["logDriver"] == "awslogs"
    doc = yaml.safe_load((ECS / "app.yaml").read_text())
    assert doc["logger"]["format"] == "json"
    assert spec["readonlyRootFilesystem"] is True
    assert spec["user"] != "0"
    task = read(f"taskdef-{role}.json")
    assert task["taskRoleArn"].endswith(f":role/recstore-{role}")
