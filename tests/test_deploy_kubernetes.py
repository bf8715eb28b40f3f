"""deploy/kubernetes/: the base and the example overlay are valid Kubernetes and KEDA objects,
and agree with the daemon: each role's configuration loads for its workers, probes, drain time,
ports, queues and labels line up. No cluster: schemas and the daemon's own config loader."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from recstore.runtime.supervisor import CANCEL_TIMEOUT
from recstore.settings import Settings
from recstore.workers.registry import enabled, load_settings
from tests.conftest import ROOT
from tests.deploy_helpers import KUBERNETES, Manifest, by_kind, containers, kustomize_build

#: Kubernetes versions the manifests must be valid for: the oldest with every field used
#: (PodDisruptionBudget's unhealthyPodEvictionPolicy is GA in 1.31) and the newest known.
VERSIONS = ["1.31.0", kubernetes_validate.utils.latest_version()]
KEDA_SCHEMAS = ROOT / "tests" / "data" / "keda"
BUILDS = {"base": KUBERNETES / "base", "overlay": KUBERNETES / "overlays" / "example"}


@pytest.fixture(scope="module", params=sorted(BUILDS))
def manifests(request: pytest.FixtureRequest) -> list[Manifest]:
    return kustomize_build(BUILDS[request.param])


@pytest.fixture(scope="module")
def overlay() -> list[Manifest]:
    return kustomize_build(BUILDS["overlay"])


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container["env"]}


def app_config(manifests: list[Manifest]) -> dict[str, Any]:
    return dict(
        yaml.safe_load(by_kind(manifests, "ConfigMap")["recstore-config"]["data"]["app.yaml"])
    )


def role_settings(manifests: list[Manifest], role: str, tmp_path: Path) -> Settings:
    """What the daemon in the role's pod loads: the ConfigMap's file, the Secret's files at the
    paths its *_FILE variables name, and RECSTORE_WORKERS."""
    deployment = by_kind(manifests, "Deployment")[f"recstore-{role}"]
    container = containers(deployment)[0]
    env = env_of(container)
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    secret_dir = next(
        mounts[name]
        for name, volume in volumes.items()
        if volume.get("secret", {}).get("secretName")
    )
    config_dir = next(mounts[name] for name, volume in volumes.items() if "configMap" in volume)
    assert env["RECSTORE_CONFIG"] == f"{config_dir}/app.yaml"
    config = tmp_path / "app.yaml"
    config.write_text(yaml.safe_dump(app_config(manifests)))
    secret = by_kind(manifests, "Secret").get("recstore-secrets", {"stringData": {}})
    environ = {}
    for name, value in env.items():
        if name.endswith("_FILE"):
            assert value.startswith(secret_dir + "/"), f"{name} is not a file of the Secret"
            key = value.removeprefix(secret_dir + "/")
            if secret["stringData"]:
                assert key in secret["stringData"], f"{name} names {key}, not in the Secret"
            (tmp_path / key).write_text(secret["stringData"].get(key, "a-secret") + "\n")
            environ[name] = str(tmp_path / key)
        elif name not in ("RECSTORE_CONFIG", "RECSTORE_WORKERS"):
            environ[name] = value
    return load_settings(config, environ, workers=env["RECSTORE_WORKERS"])


def test_builtin_objects_are_valid_kubernetes(manifests: list[Manifest]) -> None:
    checked = set()
    for manifest in manifests:
        if manifest["apiVersion"].startswith(("keda.sh/", "monitoring.coreos.com/")):
            continue
        for version in VERSIONS:
            kubernetes_validate.validate(manifest, version, strict=True)
        checked.add(manifest["kind"])
    assert {
        "Deployment",
        "ConfigMap",
        "Service",
        "ServiceAccount",
        "PodDisruptionBudget",
    } <= checked


def test_a_wrong_field_fails_the_validation(manifests: list[Manifest]) -> None:
    deployment = copy.deepcopy(by_kind(manifests, "Deployment")["recstore-pool"])
    deployment["spec"]["template"]["spec"]["terminationGracePeriod"] = 75  # misspelled
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[-1], strict=True)


@pytest.mark.parametrize(
    ("kind", "schema"),
    [
        ("ScaledObject", "scaledobject-v1alpha1.json"),
        ("TriggerAuthentication", "triggerauthentication-v1alpha1.json"),
    ],
)
def test_keda_objects_match_keda_schema(manifests: list[Manifest], kind: str, schema: str) -> None:
    document = json.loads((KEDA_SCHEMAS / schema).read_text())
    objects = list(by_kind(manifests, kind).values())
    assert objects
    for manifest in objects:
        jsonschema.validate(manifest, document)
    broken = copy.deepcopy(objects[0])
    broken["spec"]["unknownField"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, document)


def test_a_scaled_object_without_a_queue_fails_keda_schema(overlay: list[Manifest]) -> None:
    document = json.loads((KEDA_SCHEMAS / "scaledobject-v1alpha1.json").read_text())
    scaled = copy.deepcopy(by_kind(overlay, "ScaledObject")["recstore-pool"])
    del scaled["spec"]["triggers"][0]["metadata"]["queueURL"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(scaled, document)


@pytest.mark.parametrize(
    ("role", "workers"),
    [
        ("pool", ["FileTransferer", "ArchiveActions"]),
        ("singletons", ["DracoonGlobalSharer", "VidyoSync", "Archiver", "Restorer"]),
    ],
)
def test_each_role_loads_its_workers_from_the_one_configuration(
    overlay: list[Manifest], role: str, workers: list[str], tmp_path: Path
) -> None:
    settings = role_settings(overlay, role, tmp_path)
    assert [spec.name for spec in enabled(settings)] == workers


def test_the_roles_share_out_every_configured_worker_once(overlay: list[Manifest]) -> None:
    full = load_settings_from(app_config(overlay))
    named = []
    for deployment in by_kind(overlay, "Deployment").values():
        named += env_of(containers(deployment)[0])["RECSTORE_WORKERS"].split(",")
    assert sorted(named) == sorted(spec.name for spec in enabled(full))


def load_settings_from(doc: dict[str, Any]) -> Settings:
    """The full configuration's switches only (secrets are not needed to read them)."""
    return Settings.model_validate({"workers": doc["workers"]})


def test_pods_get_the_drain_time_the_daemon_takes(manifests: list[Manifest]) -> None:
    grace = load_settings_from_daemon(app_config(manifests))
    for deployment in by_kind(manifests, "Deployment").values():
        seconds = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        # The supervisor drains for gracePeriod, then gives cancelled jobs CANCEL_TIMEOUT to be
        # handed back; the kubelet's SIGKILL must come after both, and not minutes later.
        assert grace + CANCEL_TIMEOUT < seconds <= grace + CANCEL_TIMEOUT + 15


def load_settings_from_daemon(doc: dict[str, Any]) -> float:
    return Settings.model_validate({"daemon": doc["daemon"]}).daemon.grace_period


def test_probes_restart_late_and_take_out_of_rotation_early(manifests: list[Manifest]) -> None:
    port = Settings.model_validate({"http": app_config(manifests)["http"]}).http.port
    for deployment in by_kind(manifests, "Deployment").values():
        container = containers(deployment)[0]
        assert [p["containerPort"] for p in container["ports"] if p["name"] == "http"] == [port]
        ready, live = container["readinessProbe"], container["livenessProbe"]
        assert ready["httpGet"] == live["httpGet"] == {"path": "/healthcheck", "port": "http"}
        assert container["startupProbe"]["httpGet"]["path"] == "/metrics"
        ready_after = ready["periodSeconds"] * ready["failureThreshold"]
        live_after = live["periodSeconds"] * live["failureThreshold"]
        # A blip does not take a pod out (>= 1 min); only a long failure restarts it.
        assert 60 <= ready_after < live_after
        assert live_after >= 600


def test_pods_run_unprivileged_with_a_read_only_root(manifests: list[Manifest]) -> None:
    uid = int(re.search(r"--uid (\d+)", (ROOT / "Dockerfile").read_text()).group(1))  # type: ignore[union-attr]
    for deployment in by_kind(manifests, "Deployment").values():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == uid
        for container in containers(deployment):
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert {"cpu", "memory"} <= container["resources"]["requests"].keys()


def test_selectors_find_the_pods_they_are_for(manifests: list[Manifest]) -> None:
    deployments = by_kind(manifests, "Deployment")
    labels = {name: d["spec"]["template"]["metadata"]["labels"] for name, d in deployments.items()}

    def selected(selector: dict[str, str]) -> set[str]:
        return {name for name, have in labels.items() if selector.items() <= have.items()}

    for name, deployment in deployments.items():
        assert selected(deployment["spec"]["selector"]["matchLabels"]) == {name}
    pdb = by_kind(manifests, "PodDisruptionBudget")["recstore-singletons"]
    assert selected(pdb["spec"]["selector"]["matchLabels"]) == {"recstore-singletons"}
    assert deployments["recstore-singletons"]["spec"]["replicas"] > pdb["spec"]["minAvailable"]
    service = by_kind(manifests, "Service")["recstore"]
    assert selected(service["spec"]["selector"]) == set(deployments)
    monitor = by_kind(manifests, "PodMonitor")["recstore"]
    assert selected(monitor["spec"]["selector"]["matchLabels"]) == set(deployments)
    ports = {p["name"] for d in deployments.values() for p in containers(d)[0]["ports"]}
    assert {e["port"] for e in monitor["spec"]["podMetricsEndpoints"]} <= ports
    assert all(e["path"] == "/metrics" for e in monitor["spec"]["podMetricsEndpoints"])


def test_keda_scales_the_pool_on_its_own_queues(manifests: list[Manifest]) -> None:
    doc = app_config(manifests)
    settings = Settings.model_validate({k: doc[k] for k in ("queues", "workers", "archive")})
    scaled = by_kind(manifests, "ScaledObject")["recstore-pool"]["spec"]
    assert scaled["scaleTargetRef"]["name"] in by_kind(manifests, "Deployment")
    assert scaled["minReplicaCount"] == 1
    assert scaled["maxReplicaCount"] > 1
    assert "cooldownPeriod" in scaled
    down = scaled["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
    assert down["stabilizationWindowSeconds"] >= 300
    workers = settings.workers
    expected = {
        settings.queue_url(workers.file_transferer.queue): workers.file_transferer.count,
        settings.queue_url(settings.archive.queue): workers.archive_actions.count,
    }
    triggers = scaled["triggers"]
    assert {t["type"] for t in triggers} == {"aws-sqs-queue"}
    assert {t["metadata"]["queueURL"]: int(t["metadata"]["queueLength"]) for t in triggers} == (
        expected
    )
    auth = by_kind(manifests, "TriggerAuthentication")
    assert all(t["authenticationRef"]["name"] in auth for t in triggers)


def test_each_role_has_its_own_service_account(overlay: list[Manifest]) -> None:
    accounts = by_kind(overlay, "ServiceAccount")
    for name, deployment in by_kind(overlay, "Deployment").items():
        account = accounts[deployment["spec"]["template"]["spec"]["serviceAccountName"]]
        role = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
        assert role.endswith(f":role/{name}")
