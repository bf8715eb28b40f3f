"""The placeholder video recstore ships (seed 002's image shipped none): a valid MP4, part of
the package, and the default wherever ``archive.placeholderVideo`` is not set."""

from __future__ import annotations

import fnmatch
import struct
import tomllib
from pathlib import Path

from recstore.archive.actions import DEFAULT_PLACEHOLDER
from recstore.settings import Settings
from recstore.workers.archive_actions import rules_from
from tests.conftest import ROOT


def boxes(data: bytes) -> list[tuple[bytes, bytes]]:
    """The ISO BMFF boxes of ``data`` (type, payload), each size checked against the data."""
    found, offset = [], 0
    while offset < len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        assert size >= 8, (kind, size)
        assert offset + size <= len(data), (kind, size)
        found.append((kind, data[offset + 8 : offset + size]))
        offset += size
    return found


def test_the_shipped_placeholder_is_a_small_valid_mp4_of_two_seconds() -> None:
    data = DEFAULT_PLACEHOLDER.read_bytes()
    assert 1000 < len(data) < 20_000
    top = boxes(data)
    kinds = [kind for kind, _ in top]
    assert kinds[0] == b"ftyp"
    assert kinds.index(b"moov") < kinds.index(b"mdat")  # faststart: playable while it streams
    moov = dict(boxes(dict(top)[b"moov"]))
    mvhd = moov[b"mvhd"]
    assert mvhd[0] == 0  # version 0: 32-bit times
    timescale, duration = struct.unpack(">II", mvhd[12:20])
    assert duration / timescale == 2.0
    tracks = [payload for kind, payload in boxes(dict(top)[b"moov"]) if kind == b"trak"]
    assert len(tracks) == 2  # video and audio


def test_it_is_package_data_and_the_default() -> None:
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["recstore"]
    relative = DEFAULT_PLACEHOLDER.relative_to(ROOT / "recstore").as_posix()
    assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns), patterns
    assert (DEFAULT_PLACEHOLDER.parent / "PROVENANCE.md").is_file()
    rules = rules_from(Settings())
    assert rules.placeholder is not None
    assert rules.placeholder.path == DEFAULT_PLACEHOLDER
    assert rules.placeholder.size == len(DEFAULT_PLACEHOLDER.read_bytes())
    own = Path(__file__)  # any file: the configured one wins
    assert rules_from(Settings(archive={"placeholderVideo": own})).placeholder.path == own  # type: ignore[union-attr]
