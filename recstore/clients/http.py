"""The HTTP connections recstore opens to a remote: DRACOON, the configurator, Kaltura, AWS,
and how a connection that fails is reported (:func:`connection_errors`).

Why not a bare ``aiohttp.ClientSession()`` (or aiobotocore's defaults): aiohttp's read timeout,
and so botocore's, does not cover writing a request body (measured: a server that reads
nothing for 6 s holds a 64 MB PUT for those 6 s, with ``sock_read`` at 1 s). A server or
proxy that stops reading an upload and keeps the connection open would hold the job, and its
worker slot, for as long as TCP keeps that connection, which is forever while the peer
answers zero-window probes. On Linux, ``TCP_USER_TIMEOUT`` makes the kernel give such a
connection up once sent data has waited ``stall_timeout`` for an acknowledgement or for room
at the peer (measured: a stalled PUT fails after 1.5 s with the option at 1 s). The write then
fails (``ClientOSError``, a transient error), and the socket is freed at once. Other systems,
and a timeout of 0 (no limit), keep TCP's own limits.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp

from recstore.common.errors import RemoteError


def http_session(
    stall_timeout: float,
    timeout: aiohttp.ClientTimeout | None = None,
    ca_file: Path | None = None,
) -> aiohttp.ClientSession:
    """A session whose connections give up on a peer that takes no data for ``stall_timeout``
    seconds; ``timeout`` as in aiohttp (its default when None). With ``ca_file``, servers
    whose certificate that CA signed are trusted too (a private CA), certificates still
    checked."""
    connector = aiohttp.TCPConnector(
        socket_factory=stall_limited_sockets(stall_timeout),
        ssl=trusting(ca_file) if ca_file is not None else True,
    )
    if timeout is None:
        return aiohttp.ClientSession(connector=connector)
    return aiohttp.ClientSession(connector=connector, timeout=timeout)


def trusting(ca_file: Path) -> ssl.SSLContext:
    """The default TLS checks, with the CA(s) in ``ca_file`` trusted beside the system's."""
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=str(ca_file))
    return context


@contextlib.contextmanager
def connection_errors(
    what: str, remote: str, error: type[RemoteError] = RemoteError
) -> Iterator[None]:
    """Raise a connection that fails inside the block (refused, reset, timed out, stalled) as
    a transient ``error``: ``what``, then the failure's type. Not its text, which may name the
    URL (a presigned one carries its signature)."""
    try:
        yield
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise error(f"{what}: {type(exc).__name__}", remote=remote, transient=True) from exc


def stall_limited_sockets(stall_timeout: float) -> Callable[[tuple[object, ...]], socket.socket]:
    """The socket factory of such connections, for aiohttp's and aiobotocore's connectors."""
    return functools.partial(_socket, stall_timeout)


#: The option's limit (a signed 32-bit count of milliseconds, about 24 days).
_LONGEST_MS = 2**31 - 1


def _socket(stall_timeout: float, addr_info: tuple[object, ...]) -> socket.socket:
    family, kind, proto = addr_info[:3]
    sock = socket.socket(family=family, type=kind, proto=proto)  # type: ignore[arg-type]
    if stall_timeout > 0 and hasattr(socket, "TCP_USER_TIMEOUT"):  # 0: no limit, as in aiohttp
        milliseconds = min(max(1, int(stall_timeout * 1000)), _LONGEST_MS)
        # A kernel that refuses the option keeps TCP's own limits rather than fail the call.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, milliseconds)
    return sock
