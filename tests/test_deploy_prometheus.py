"""deploy/prometheus/ and deploy/grafana/: promtool checks and unit-tests the alert rules (each
alert has a firing and a silent test), every query names a metric the daemon exports, the rules
cover every error-level event code, and every alert has its runbook entry."""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

from recstore.common import events, metrics
from tests.conftest import ROOT, missing_tool
from tests.deploy_helpers import DEPLOY

PROMETHEUS = DEPLOY / "prometheus"
RULES = PROMETHEUS / "recstore.rules.yml"
RULE_TESTS = PROMETHEUS / "recstore.rules.test.yml"
DASHBOARD = DEPLOY / "grafana" / "recstore.json"
OPERATIONS = ROOT / "docs" / "operations.md"
#: Series a query may name that the daemon does not export, with where they come from.
EXTERNAL = {
    "aws_sqs_approximate_age_of_oldest_message_maximum": "CloudWatch's "
    "ApproximateAgeOfOldestMessage through YACE (SQS reports the age to CloudWatch only)",
}
#: Words of PromQL that look like metric names.
PROMQL = {
    "sum", "min", "max", "avg", "count", "by", "without", "on", "ignoring", "group_left",
    "group_right", "and", "or", "unless", "offset", "bool", "rate", "increase", "irate", "delta",
    "absent", "histogram_quantile", "time", "vector", "max_over_time", "min_over_time",
    "humanizePercentage", "label_replace",
}  # fmt: skip
#: Error-level codes alerted on by a rule that does not name them: 15014 is the daemon's own
#: note that /healthcheck answers 500, which RecstoreUnhealthy watches through its gauge.
CODES_BY_GAUGE = {"15014"}


def exported() -> set[str]:
    """Every series name the daemon's /metrics can hold."""
    names = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            name, kind = value._name, value._type  # prometheus_client's own
            names |= {
                "counter": {f"{name}_total"},
                "histogram": {f"{name}_bucket", f"{name}_sum", f"{name}_count"},
            }.get(kind, {name})
    for family in REGISTRY.collect():  # the process and platform collectors
        names |= {sample.name for sample in family.samples}
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (label matchers, groupings and strings out)."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    bare = re.sub(r"\{[^}]*\}", "", bare)
    bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", bare)
    bare = re.sub(r"\[[^\]]*\]", "", bare)
    words = set(re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", bare))
    return words - PROMQL


def rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def dashboard_queries() -> list[str]:
    doc = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in doc["panels"] for target in panel["targets"]]


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        missing_tool("promtool is missing: run scripts/ensure-promtool (Debian's prometheus)")
    assert tool is not None
    return subprocess.run(
        [tool, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120, check=False
    )


def test_promtool_accepts_the_rules() -> None:
    result = promtool("check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    result = promtool("test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_silent_test() -> None:
    tested: dict[str, set[bool]] = {}
    for case in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for check in case.get("alert_rule_test", []):
            tested.setdefault(check["alertname"], set()).add(bool(check["exp_alerts"]))
    for rule in rules():
        assert tested.get(rule["alert"]) == {True, False}, rule["alert"]


@pytest.mark.parametrize("source", ["rules", "dashboard"])
def test_every_query_names_a_metric_the_daemon_exports(source: str) -> None:
    queries = [r["expr"] for r in rules()] if source == "rules" else dashboard_queries()
    known = exported() | EXTERNAL.keys()
    for expr in queries:
        names = metric_names(expr)
        assert names, expr
        assert names <= known, f"{expr}: {names - known} is not exported by the daemon"


def test_the_metric_check_catches_a_misspelled_name() -> None:
    names = metric_names('sum by (queue) (rate(recstore_job_total{worker="x"}[5m]))')
    assert names == {"recstore_job_total"}
    assert not names <= exported()


def test_the_rules_cover_every_error_level_event_code() -> None:
    severe = {str(e.code) for e in events.ALL_EVENTS if e.level >= logging.ERROR}
    named = set()
    for rule in rules():
        for matcher in re.findall(r'code=~?"([^"]+)"', rule["expr"]):
            named |= set(matcher.split("|"))
    assert named | CODES_BY_GAUGE == severe
    assert named <= {str(e.code) for e in events.ALL_EVENTS}


def test_every_alert_has_its_runbook_entry() -> None:
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in OPERATIONS.read_text().splitlines()
        if line.startswith("#")
    }
    for rule in rules():
        anchor = rule["annotations"]["runbook_url"].split("#", 1)[1]
        assert anchor == rule["alert"].lower()
        assert anchor in headings, f"docs/operations.md has no heading for {rule['alert']}"
