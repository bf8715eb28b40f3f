"""The house rules of docs/design/DESIGN.md that a reader relies on to find things."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, clean_env, run_cli_process

PACKAGE = ROOT / "recstore"


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_only_cli_imports_the_cli_library() -> None:
    offenders = [p for p in modules() if "cli" not in p.parts and "click" in imports_of(p)]
    assert offenders == []


def test_nothing_but_the_cli_and_the_devstack_imports_the_devstack() -> None:
    offenders = [
        p.relative_to(ROOT)
        for p in modules()
        if "devstack" not in p.parts
        and "cli" not in p.parts
        and any(m.startswith("recstore.devstack") for m in imports_of(p))
    ]
    assert offenders == []


def test_domain_packages_open_no_sockets() -> None:
    network = {"aiohttp", "aiobotocore", "botocore", "zeep", "httpx", "socket", "ldap3"}
    domain = [
        *(PACKAGE / "transfer").rglob("*.py"),
        *(PACKAGE / "archive").rglob("*.py"),
        *(PACKAGE / "sync").rglob("*.py"),
    ]
    domain.append(PACKAGE / "crypto.py")
    offenders = {
        str(p.relative_to(ROOT)): sorted(m for m in imports_of(p) if m.split(".")[0] in network)
        for p in domain
        if p.exists()
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_rules_settings_check_at_load_are_leaves() -> None:
    # config.py checks the YAML's target paths and expirations with these two parsers, so they
    # may not depend on anything of recstore's: an import cycle through config would follow.
    for name in ("paths", "expiration"):
        path = PACKAGE / "transfer" / f"{name}.py"
        assert [m for m in imports_of(path) if m.startswith("recstore")] == [], path


def opens_a_client_session(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name == "ClientSession":
                return True
    return False


def test_sessions_to_remotes_are_opened_in_one_place() -> None:
    """Every HTTP session to a remote gives up on a peer that stops taking an upload
    (clients/http.py); a bare aiohttp session would not. The stand-ins are not remotes."""
    offenders = [
        p.relative_to(ROOT)
        for p in modules()
        if "devstack" not in p.parts
        and p != PACKAGE / "clients" / "http.py"
        and opens_a_client_session(p)
    ]
    assert offenders == []


def test_a_command_imports_only_its_own_group() -> None:
    """Every process the image starts (``run``, the ``healthcheck`` probe, ``ldap-status``)
    pays for the imports of the commands it reaches: not for the Kaltura, Vidyo and LDAP
    groups' (about 0.3 CPU-s per start), while ``--help`` still lists every command."""
    heavy = {"recstore.cli.kaltura", "recstore.cli.vidyo", "recstore.clients.kaltura", "ldap3"}
    for command, wanted in (
        (["healthcheck", "--help"], set()),
        (["config", "check", "--help"], set()),
        (["ldap-status", "--help"], {"ldap3"}),
    ):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "recstore", *command],
            capture_output=True,
            text=True,
            env=clean_env(),
            cwd=ROOT,
            check=True,
        )
        imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
        assert imported & heavy == wanted, command
    listed = run_cli_process("--help").stdout
    assert {"kaltura", "vidyo", "ldap-status", "run"} <= set(listed.split())
