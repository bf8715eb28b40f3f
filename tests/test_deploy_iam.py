"""deploy/iam/: each role's policy allows what its code calls, and nothing else."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.deploy_helpers import DEPLOY
from tests.iam_helpers import (
    IAM_ACTION,
    NOT_IN_A_ROLE,
    ROLES,
    client_methods,
    client_modules,
    config_fetch_actions,
    role_actions,
    service_operations,
)


def policy_actions(role: str) -> set[str]:
    policy: dict[str, Any] = json.loads((DEPLOY / "iam" / f"{role}.json").read_text())
    actions: set[str] = set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        assert "*" not in json.dumps(statement["Action"])
        actions.update(statement["Action"])
    return actions


@pytest.mark.parametrize("role", sorted(ROLES))
def test_policy_allows_exactly_what_the_roles_code_calls(role: str) -> None:
    needed = role_actions(role)
    documented = policy_actions(role)
    missing = {action: sorted(needed[action]) for action in needed.keys() - documented}
    assert not missing, f"deploy/iam/{role}.json lacks actions the code uses: {missing}"
    assert not documented - needed.keys(), f"{role}: allowed but never called"


def test_every_botocore_call_of_the_clients_has_an_iam_action() -> None:
    for service in ("s3", "sqs"):
        called = set().union(*client_methods(service).values())
        assert called <= IAM_ACTION.keys(), (
            f"map these {service} operations: {called - set(IAM_ACTION)}"
        )
        assert called, service
    assert set(IAM_ACTION) <= service_operations("s3") | service_operations("sqs")


def test_every_module_that_handles_a_client_belongs_to_a_role() -> None:
    assigned = {module for modules in ROLES.values() for module in modules} | set(NOT_IN_A_ROLE)
    unassigned = client_modules() - assigned
    assert not unassigned, f"say which role runs these (tests/iam_helpers.ROLES): {unassigned}"


def test_the_derivation_sees_a_new_call() -> None:
    """The S3 client's delete reaches DeleteObject; the lease module needs it through it."""
    assert "delete_object" in client_methods("s3")["delete"]
    assert "workers/leases.py" in role_actions("singletons")["s3:DeleteObject"]


def test_the_configuration_fetch_policy_allows_what_config_fetch_calls() -> None:
    assert (
        policy_actions("config-fetch")
        == config_fetch_actions()
        == {
            "s3:ListBucket",
            "s3:GetObject",
        }
    )


def test_the_pool_reads_and_deletes_only_the_configured_sources() -> None:
    """Issue 33 §1: the RecordingSources statement grants exactly the example configuration's
    workers.FileTransferer.sourceBuckets (bucket/prefix → arn:aws:s3:::bucket/prefix*), and
    none of recstore's own buckets; the policy stops what the daemon's own check misses."""
    import yaml

    from recstore.common.source_rules import parse_rules

    config = yaml.safe_load((DEPLOY / "ecs" / "app.yaml").read_text())
    rules = parse_rules(config["workers"]["FileTransferer"]["sourceBuckets"])
    policy = json.loads((DEPLOY / "iam" / "pool.json").read_text())
    [sources] = [s for s in policy["Statement"] if s["Sid"] == "RecordingSources"]
    assert sorted(sources["Resource"]) == sorted(
        f"arn:aws:s3:::{rule.bucket}/{rule.prefix}*" for rule in rules
    )
    own = {config["archive"]["bucket"], config["leases"]["bucket"]}
    assert not any(rule.bucket in own for rule in rules)
