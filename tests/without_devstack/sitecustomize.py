"""Makes this interpreter one without the dev stack's extra (``recstore[devstack]``) and
without the test tools, as the daemon's image is.

Processes the tests start with this folder on ``PYTHONPATH`` cannot import moto's server or
the Flask and Werkzeug it brings, as in the daemon's image: whatever the daemon needs at run
time that only the extra provides fails there, as it would in production. Nor can they import
what only the test tools bring (rich, pygments): httpx imports its command-line module when
they are there (~60 ms per process start, which the image never pays).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

#: Top-level packages that only ``recstore[devstack]`` installs.
DEVSTACK_ONLY = frozenset({"moto", "flask", "flask_cors", "werkzeug"})
#: Top-level packages that only the test tools install (import-linter, pytest), which the
#: daemon's dependencies import when present.
TEST_TOOLS_ONLY = frozenset({"rich", "pygments"})
NOT_IN_IMAGE = DEVSTACK_ONLY | TEST_TOOLS_ONLY


class _NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.partition(".")[0] in NOT_IN_IMAGE:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


sys.meta_path.insert(0, _NotInstalled())
