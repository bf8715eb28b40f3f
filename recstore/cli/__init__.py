"""The ``recstore`` command line: one module per command group, all reachable from :data:`main`.

``main.py`` holds the group and the daemon, config, dev stack, queue and transfer commands;
each other module adds one group (``kaltura``, ``vidyo``, ``ldap-status``) to it on import,
which ``main`` does when one of them is asked for (``_Recstore.ELSEWHERE``), so a command
does not pay for the others' imports. Only this package imports click; the commands parse,
call into the package, print and exit.
"""

from recstore.cli.main import main

__all__ = ["main"]
