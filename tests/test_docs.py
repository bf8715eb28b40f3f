"""The operator's documentation is generated from the code, and the committed copies match it.

docs/configuration.md and the README's event code and metrics tables are output of
``recstore config reference``; when a key, an event code or a metric changes, regenerate them.
"""

from __future__ import annotations

import re

from prometheus_client.metrics import MetricWrapperBase

from recstore.common import events, metrics
from recstore.settings.reference import events_table, metrics_table, settings_reference
from tests.conftest import ROOT, run_cli

README = (ROOT / "README.md").read_text()


def test_configuration_reference_is_the_generated_one() -> None:
    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == settings_reference(), (
        "run `recstore config reference > docs/configuration.md`"
    )


def test_readme_tables_are_the_generated_ones() -> None:
    for part, table in (("events", events_table()), ("metrics", metrics_table())):
        assert table in README, (
            f"paste the output of `recstore config reference --part {part}` over its table "
            "in README.md"
        )


def test_the_tables_name_every_event_code_metric_and_key() -> None:
    for event in events.ALL_EVENTS:
        assert f"\n| {event.code} | {event.severity} |" in events_table()
    declared = [
        family.name
        for value in vars(metrics).values()
        if isinstance(value, MetricWrapperBase)
        for family in value.describe()
    ]
    assert len(declared) >= 15
    for name in declared:
        assert f"| `{name}" in metrics_table()
    reference = settings_reference()
    for key in ("workers.FileTransferer.count", "s3.chunkSize", "http.statusPassword"):
        assert f"| `{key}` |" in reference
    secret_row = next(line for line in reference.splitlines() if "`dracoon.password`" in line)
    assert "| secret, optional | (secret) |" in secret_row


def test_config_reference_command_prints_each_part() -> None:
    for part, expected in (
        ("settings", settings_reference()),
        ("events", events_table()),
        ("metrics", metrics_table()),
    ):
        result = run_cli("config", "reference", "--part", part)
        assert result.returncode == 0, result.stderr
        assert result.stdout == expected


def test_readme_keeps_its_first_screen_and_links_the_operations_docs() -> None:
    first_block = re.search(r"```sh\n(.*?)```", README, flags=re.S)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands[:2] == ["make demo", "make test"]
    assert README.index("make demo") < README.index("## ")  # before the first section
    operating = README[README.index("## Operating recstore") :]
    for needed in (
        "docs/configuration.md",
        "conf/recstore.service",
        "Dockerfile",
        "### The /status dashboard",
        "http.statusUser",
        "### Runbook",
        "recstore dlq list",
        "recstore status",
        "recstore kaltura health --config F --id",
        "log/YYYY/MM/",
    ):
        assert needed in operating, needed
