"""An LDAP directory (OpenLDAP, 389, AD): who an id is, and whether the account is active.

What it does: for a batch of ids, three searches under ``ldap.baseDn`` on one connection —
``(|(uid=a)(uid=b)…)`` for the entries and their name and org-unit attributes, then the
configured "active" and "going away" filter templates OR-ed over the same ids — and answers,
per id found, a :class:`DirectoryUser` with the two verdicts. What the verdicts *mean* (the
``ldap_status`` column) is the archive domain's business (:mod:`recstore.archive.ldap_report`).

Why it is built this way:

* ldap3 is synchronous, so every network step runs in a worker thread (``asyncio.to_thread``).
  A small pool holds at most ``ldap.concurrency`` bound connections, each used by one thread at
  a time; a connection that failed is closed and replaced, never reused.
* Every id is escaped as RFC 4515 says before it enters a filter (:func:`escape_filter_value`):
  ``*)(uid=*`` is a literal id that matches nothing, never a wider search. As a second line,
  answers are mapped back by value: an entry counts for an id only when its user attribute
  equals the id (ignoring case, as ``uid`` matching does), and the filter verdicts only by the
  DN of that entry.
* TLS is verified by default: ``ldaps://`` or StartTLS (``ldap.startTls``) use a standard
  :class:`ssl.SSLContext` that checks the chain (system CAs or ``ldap.caFile``) and the host
  name during the handshake. ldap3's own host-name check calls the deprecated
  ``ssl.match_hostname``, so :class:`_VerifiedTls` hands ldap3 an already checked socket.
* Errors become :class:`LdapError` (a :class:`RemoteError`) at this boundary: connection trouble,
  timeouts and busy/unavailable answers are transient and retried by the one retry helper;
  bad credentials, a missing base DN or a certificate that does not verify are not. A result
  code that names a kind is raised as that kind too (:data:`KIND_OF_RESULT`: bad credentials
  :class:`Unauthorised`, a missing base DN :class:`NotFound`). Messages name the server and
  the bind DN, never the password.
"""

from __future__ import annotations

import asyncio
import logging
import math
import ssl
import warnings
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from recstore.common.aio import ordered_map
from recstore.common.errors import (
    ConfigError,
    NotFound,
    RemoteError,
    Throttled,
    Unauthorised,
    remote_error,
)
from recstore.common.retry import RetryPolicy, call_with_retry
from recstore.settings import LdapSettings

with warnings.catch_warnings():
    # ldap3 2.9 imports names that pyasn1 >= 0.6 marks deprecated; harmless, and not ours.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ldap3\.")
    warnings.filterwarnings("ignore", message=r".*(tagMap|typeMap) is deprecated")
    from ldap3 import ANONYMOUS, SIMPLE, SUBTREE, Connection, Server, Tls
    from ldap3.core.exceptions import (
        LDAPCommunicationError,
        LDAPException,
        LDAPStartTLSError,
    )

REMOTE = "ldap"
#: LDAP result codes worth another try: timeLimitExceeded, busy, unavailable.
TRANSIENT_RESULTS = frozenset({3, 51, 52})
#: What LDAP result codes (RFC 4511, 4.1.9) mean as kinds: noSuchObject (the base DN is not
#: there), inappropriateAuthentication, invalidCredentials, insufficientAccessRights, busy.
KIND_OF_RESULT: dict[int, type[RemoteError]] = {
    32: NotFound,
    48: Unauthorised,
    49: Unauthorised,
    50: Unauthorised,
    51: Throttled,
}
#: Few quick tries: a directory that is down should fail a report in seconds, not minutes.
DEFAULT_POLICY = RetryPolicy(attempts=3, base_delay=0.2, max_delay=2.0, deadline=60.0)

T = TypeVar("T")
log = logging.getLogger(__name__)


class LdapError(RemoteError):
    """The directory could not be reached, refused the bind, or failed a search."""


@dataclass(frozen=True)
class DirectoryUser:
    """What the directory holds about one id: its entry, and which configured filters match."""

    dn: str
    name: str
    org_unit: str
    active: bool
    going_away: bool


@dataclass(frozen=True)
class _Link:
    """A bound connection and the configured URL it goes to (for messages)."""

    url: str
    connection: Connection


def escape_filter_value(value: str) -> str:
    """Escape ``value`` for use inside a filter's assertion value (RFC 4515, section 3).

    ``*``, ``(``, ``)``, ``\\`` and NUL become ``\\2a``, ``\\28``, ``\\29``, ``\\5c``, ``\\00``;
    everything else (UTF-8 included) is allowed as it is.
    """
    return "".join(f"\\{ord(char):02x}" if char in "*()\\\0" else char for char in value)


def fill_template(template: str, value: str) -> str:
    """The filter ``template`` with every ``{id}`` replaced by the escaped ``value``."""
    return template.replace("{id}", escape_filter_value(value))


def any_of(filters: Sequence[str]) -> str:
    """One filter matching what any of ``filters`` matches."""
    return filters[0] if len(filters) == 1 else "(|" + "".join(filters) + ")"


class _VerifiedTls(Tls):
    """ldap3's TLS settings object, wrapping sockets with a verifying :class:`ssl.SSLContext`."""

    def __init__(self, context: ssl.SSLContext, hostname: str) -> None:
        super().__init__(validate=context.verify_mode)
        self._context = context
        self._hostname = hostname

    def wrap_socket(self, connection: Any, do_handshake: bool = False) -> None:
        # The handshake checks chain and host name; on failure the SSL socket closes itself.
        connection.socket = self._context.wrap_socket(
            connection.socket,
            server_side=False,
            do_handshake_on_connect=do_handshake,
            server_hostname=self._hostname if self._context.check_hostname else None,
        )


def _tls_context(settings: LdapSettings) -> ssl.SSLContext:
    cafile = str(settings.ca_file) if settings.ca_file is not None else None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    if not settings.verify_certificate:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class LdapDirectory:
    """Looks ids up in one directory; ``async with`` it, or call :meth:`close` when done."""

    def __init__(self, settings: LdapSettings, policy: RetryPolicy | None = None) -> None:
        problems = [
            (f"ldap.{key}", "required to look people up in the directory")
            for key, value in (("urls", settings.urls), ("baseDn", settings.base_dn))
            if not value
        ]
        if problems:
            raise ConfigError(problems)
        self._settings = settings
        self._base_dn = settings.base_dn or ""
        self._policy = policy or DEFAULT_POLICY
        self._context = _tls_context(settings)
        self._attributes = [
            settings.user_attribute,
            *settings.name_attributes,
            settings.org_unit_attribute,
        ]
        # whole seconds: ldap3 packs the receive timeout into SO_RCVTIMEO as an integer
        self._seconds = max(1, math.ceil(settings.timeout))
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._idle: list[_Link] = []
        self._closed = False

    def _server(self, url: str) -> Server:
        """A fresh ldap3 server object: ldap3 remembers failed addresses in it for a while,
        which would turn our retries into instant "invalid server address" failures."""
        parts = urlsplit(url)
        use_ssl = parts.scheme.lower() == "ldaps"
        host = parts.hostname or ""
        tls = _VerifiedTls(self._context, host) if use_ssl or self._settings.start_tls else None
        return Server(
            host,
            port=parts.port or (636 if use_ssl else 389),
            use_ssl=use_ssl,
            tls=tls,
            get_info="NO_INFO",
            connect_timeout=self._settings.timeout,
        )

    async def __aenter__(self) -> LdapDirectory:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Unbind every idle connection; the directory object cannot be used afterwards."""
        self._closed = True
        idle, self._idle = self._idle, []
        for link in idle:
            await asyncio.to_thread(_unbind_quietly, link.connection)

    async def find_users(self, ids: Iterable[str]) -> dict[str, DirectoryUser]:
        """Each distinct non-empty id that has an entry → what the directory says about it.

        Ids missing from the answer have no entry under the base DN. Ids are asked about in
        batches of ``ldap.batchSize``, ``ldap.concurrency`` batches at a time; a failure that
        outlasts the retries raises :class:`LdapError` and nothing is answered.
        """
        if self._closed:
            raise RuntimeError("the LDAP directory client is closed")
        unique = list(dict.fromkeys(value for value in ids if value))
        size = self._settings.batch_size

        async def batches() -> AsyncIterator[list[str]]:
            for start in range(0, len(unique), size):
                yield unique[start : start + size]

        found: dict[str, DirectoryUser] = {}
        async for answer in ordered_map(batches(), self._lookup, self._settings.concurrency):
            found.update(answer)
        return found

    async def _lookup(self, batch: list[str]) -> dict[str, DirectoryUser]:
        return await call_with_retry(
            lambda: self._with_connection(lambda link: self._search_batch(link, batch)),
            remote=REMOTE,
            policy=self._policy,
        )

    async def _with_connection(self, work: Callable[[_Link], T]) -> T:
        """Run ``work`` in a thread on a pooled connection; a failed connection is dropped."""
        async with self._slots:
            link = self._idle.pop() if self._idle else None
            try:
                if link is None:
                    link = await asyncio.to_thread(self._connect)
                result = await asyncio.to_thread(work, link)
            except asyncio.CancelledError:
                raise  # the thread may still use it; it is simply not returned to the pool
            except BaseException:
                if link is not None:
                    await asyncio.to_thread(_unbind_quietly, link.connection)
                raise
            self._idle.append(link)
            return result

    # -- in worker threads ----------------------------------------------------------------

    def _connect(self) -> _Link:
        """A bound connection to the first server of ``ldap.urls`` that accepts one."""
        failure: LdapError | None = None
        for url in self._settings.urls:
            try:
                return _Link(url, self._connect_to(url, self._server(url)))
            except LdapError as exc:
                if not exc.transient:
                    raise
                log.debug("LDAP server %s unavailable: %s", url, exc)
                failure = exc
        assert failure is not None  # urls is never empty (checked in __init__)
        raise failure

    def _connect_to(self, url: str, server: Server) -> Connection:
        settings = self._settings
        password = settings.bind_password.get_secret_value() if settings.bind_password else None
        connection = Connection(
            server,
            user=settings.bind_dn,
            password=password,
            authentication=SIMPLE if settings.bind_dn else ANONYMOUS,
            auto_bind="NONE",
            client_strategy="SYNC",
            receive_timeout=self._seconds,
            auto_referrals=False,
            read_only=True,
            raise_exceptions=False,
            return_empty_attributes=False,
        )
        try:
            connection.open()
            if settings.start_tls and not server.ssl and not connection.start_tls():
                raise _result_error(url, "StartTLS", connection.result)
            if not connection.bind():
                who = f"as {settings.bind_dn}" if settings.bind_dn else "anonymously"
                raise _result_error(url, f"bind {who}", connection.result)
        except BaseException as exc:
            _unbind_quietly(connection)
            if isinstance(exc, LDAPException):
                raise _translate(url, exc) from exc
            raise
        return connection

    def _search(self, link: _Link, query: str, attributes: list[str]) -> list[Any]:
        connection = link.connection
        connection.search(
            self._base_dn,
            query,
            search_scope=SUBTREE,
            attributes=attributes,
            time_limit=self._seconds,
        )
        result = connection.result or {}
        if result.get("result") != 0:
            raise _result_error(link.url, "search", result)
        return [item for item in connection.response or [] if item.get("type") == "searchResEntry"]

    def _search_batch(self, link: _Link, batch: list[str]) -> dict[str, DirectoryUser]:
        try:
            return self._search_batch_unsafe(link, batch)
        except LDAPException as exc:
            raise _translate(link.url, exc) from exc

    def _search_batch_unsafe(self, link: _Link, batch: list[str]) -> dict[str, DirectoryUser]:
        settings = self._settings
        attribute = settings.user_attribute
        wanted: dict[str, list[str]] = {}
        for value in batch:
            wanted.setdefault(value.casefold(), []).append(value)
        entries = self._search(
            link,
            any_of([f"({attribute}={escape_filter_value(value)})" for value in batch]),
            self._attributes,
        )
        dn_of: dict[str, tuple[str, str, str]] = {}
        for entry in sorted(entries, key=lambda item: str(item.get("dn", ""))):
            values = _attributes(entry)
            for key in values.get(attribute.casefold(), []):
                for value in wanted.get(key.casefold(), []):
                    dn_of.setdefault(value, (str(entry["dn"]), *self._name_and_unit(values)))
        if not dn_of:
            return {}
        present = list(dn_of)
        active = self._matching(link, settings.active_filter, present)
        going = self._matching(link, settings.going_away_filter, present)
        return {
            value: DirectoryUser(
                dn=dn,
                name=name,
                org_unit=unit,
                active=dn.casefold() in active,
                going_away=dn.casefold() in going,
            )
            for value, (dn, name, unit) in dn_of.items()
        }

    def _matching(self, link: _Link, template: str, ids: list[str]) -> set[str]:
        """DNs (case-folded) of the entries the filter template matches for any of ``ids``."""
        if not template:
            return set()
        query = any_of([fill_template(template, value) for value in ids])
        return {str(entry["dn"]).casefold() for entry in self._search(link, query, ["1.1"])}

    def _name_and_unit(self, values: dict[str, list[str]]) -> tuple[str, str]:
        name = next(
            (
                values[key.casefold()][0]
                for key in self._settings.name_attributes
                if values.get(key.casefold())
            ),
            "",
        )
        units = values.get(self._settings.org_unit_attribute.casefold()) or [""]
        return name, units[0]


def _attributes(entry: dict[str, Any]) -> dict[str, list[str]]:
    """An entry's attributes with case-folded names and every value a string in a list."""
    found: dict[str, list[str]] = {}
    for key, value in (entry.get("attributes") or {}).items():
        items = value if isinstance(value, list) else [value]
        found[str(key).casefold()] = [str(item) for item in items]
    return found


def _result_error(url: str, step: str, result: dict[str, Any] | None) -> LdapError:
    result = result or {}
    code = result.get("result")
    description = result.get("description") or "no answer"
    message = result.get("message")
    detail = f"{description} ({message})" if message else str(description)
    return remote_error(
        LdapError,
        KIND_OF_RESULT.get(code, RemoteError) if isinstance(code, int) else RemoteError,
        f"LDAP {url}: {step} failed: {detail}",
        remote=REMOTE,
        code=description if code is not None else None,
        transient=code is None or code in TRANSIENT_RESULTS,
    )


def _translate(url: str, exc: LDAPException) -> LdapError:
    """ldap3's exception as an :class:`LdapError`: network trouble is transient, TLS is not."""
    text = str(exc)
    if isinstance(exc, LDAPStartTLSError) or "CERTIFICATE" in text.upper():
        return LdapError(
            f"LDAP {url}: TLS failed: {text}", remote=REMOTE, code="tls", transient=False
        )
    if isinstance(exc, LDAPCommunicationError):
        return LdapError(
            f"LDAP {url}: cannot reach the server: {text}",
            remote=REMOTE,
            code="unreachable",
            transient=True,
        )
    return LdapError(f"LDAP {url}: {text}", remote=REMOTE, code=type(exc).__name__)


def _unbind_quietly(connection: Connection) -> None:
    """Close a connection that may be broken or never opened; its socket must not leak.

    ldap3 leaves the socket of a failed connect in ``connection.socket`` without closing it,
    and ``unbind`` skips a connection it considers closed, so the socket is closed here too.
    """
    try:
        connection.unbind()
    except (LDAPException, OSError):
        pass
    finally:
        sock = getattr(connection, "socket", None)
        if sock is not None:
            sock.close()
