"""The ``recstore`` command line: one module per command group, all registered on :data:`main`.

``main.py`` holds the group and the daemon, config, dev stack, queue and transfer commands;
each other module adds one group (``kaltura``, ``vidyo``, ``ldap-status``) to it on import.
Only this package imports click; the commands parse, call into the package, print and exit.
"""

from recstore.cli import kaltura as _kaltura  # noqa: F401 (registers the group)
from recstore.cli import kaltura_actions as _kaltura_actions  # noqa: F401 (its commands)
from recstore.cli import ldap as _ldap  # noqa: F401 (the ldap-status command)
from recstore.cli import vidyo as _vidyo  # noqa: F401 (registers the group)
from recstore.cli.main import main

__all__ = ["main"]
