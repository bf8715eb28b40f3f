"""The house rules a reader relies on to find things that the import contracts
(``lint-imports``, pyproject.toml) cannot state."""

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
