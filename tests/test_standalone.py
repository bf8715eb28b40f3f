"""The repository stands alone: nothing it tracks reaches outside the checkout for its inputs.

A clone on its own (as anyone outside the team gets it) has no shared folder beside it, so any
file naming that path is a build, a test or a link that breaks there.
"""

from __future__ import annotations

import subprocess

from tests.conftest import ROOT

# Built from parts so that this file does not name the path it looks for.
FORBIDDEN = "../" + "shared"


def tracked_files() -> list[str]:
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    return [name for name in listing.stdout.decode().split("\0") if name]


def test_no_file_names_the_shared_folder_outside_the_repository() -> None:
    offenders = []
    for name in tracked_files():
        path = ROOT / name
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        offenders += [
            f"{name}:{number}"
            for number, line in enumerate(text.splitlines(), 1)
            if FORBIDDEN in line
        ]
    assert offenders == [], f"these lines name {FORBIDDEN}: {offenders}"


def test_the_data_the_tests_read_is_in_the_repository() -> None:
    data = ROOT / "tests" / "data"
    assert (data / "specs" / "dracoon-api-v4.26.7.json").is_file()
    assert (data / "dracoon-crypto-java" / "unit" / "data").is_dir()
    provenance = (data / "PROVENANCE.md").read_text()
    for item in ("dracoon-crypto-java", "dracoon-api-v4.26.7.json", "seeds"):
        assert item in provenance, f"PROVENANCE.md does not say where {item} comes from"
