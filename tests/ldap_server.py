"""A throwaway OpenLDAP ``slapd`` on loopback, for the LDAP tests.

Why a real slapd rather than a fake: filter escaping, case-insensitive matching, TLS and the
result codes are exactly what a stand-in would get subtly wrong. Debian's ``slapd`` package is
installed by ``scripts/ensure-slapd`` (called by ``.ci/run`` and ``make test``); without it the
tests fail when ``CI=true`` and skip with the reason otherwise.

The server gets a fresh directory with a ``slapd.conf`` (mdb backend; core, cosine, nis and
inetOrgPerson schemas plus a tiny schema for seed 001's ``puresource`` attribute), a CA and a
server certificate for ``ldaps://`` and StartTLS, and the people of :data:`PEOPLE`, loaded with
``slapadd`` before it starts. It listens on ``ldap://127.0.0.1:PORT`` and
``ldaps://127.0.0.1:TLS_PORT`` (reached as ``localhost``, the certificate's name) and is
stopped with SIGTERM.
"""

from __future__ import annotations

import base64
import shutil
import socket
import subprocess
import time
from pathlib import Path

from recstore.devstack.tls import Certificates, throwaway_ca
from tests.conftest import missing_tool

SBIN = Path("/usr/sbin")
SCHEMAS = Path("/etc/ldap/schema")
BASE_DN = "o=princeton university,c=us"  # seed 001's base, spaces and all
ADMIN_DN = f"cn=admin,{BASE_DN}"
SERVICE_DN = f"uid=svc-recstore,{BASE_DN}"
SERVICE_PASSWORD = "svc-Pa55-w0rd-never-printed"

#: uid → (puresource values, displayName, cn, ou). Seed 001: an account is active while its
#: puresource holds authentication=enabled or authentication=goingaway.
PEOPLE: dict[str, tuple[tuple[str, ...], str | None, str, str | None]] = {
    "alice": (("authentication=enabled", "mail=enabled"), "Alice Active", "alice a", "Physics"),
    "bob": (("authentication=goingaway",), None, "Bob Leaving", "Chemistry"),
    "carol": (("authentication=disabled",), "Carol Gone", "carol g", "History"),
    "dave": ((), "Dave Nosource", "dave n", None),
    "zoe": (("authentication=enabled",), "Zoë\tNúñez-O'Brien", "zoe n", "Music, Dance & Art"),
    # filter metacharacters in a real id: found only when the id is escaped in the filter
    "x(y)*": (("authentication=enabled",), "Odd Uid", "odd", "Lab"),
}

PURESOURCE_SCHEMA = """\
# seed 001's multi-valued status attribute; OIDs under the documentation arc (RFC 5612)
attributetype ( 1.3.6.1.4.1.32473.1.1 NAME 'puresource'
    DESC 'resources and their state, e.g. authentication=enabled'
    EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
objectclass ( 1.3.6.1.4.1.32473.2.1 NAME 'puPerson' SUP top AUXILIARY MAY ( puresource ) )
"""


def slapd_missing() -> str | None:
    """Why no slapd can run here, or None when it can."""
    for tool in ("slapd", "slapadd"):
        if not (SBIN / tool).exists():
            return f"{SBIN / tool} is missing: run scripts/ensure-slapd (Debian's slapd package)"
    return None


def require_slapd() -> None:
    """Skip locally, fail in CI: a CI run without the directory must not pass quietly."""
    reason = slapd_missing()
    if reason is not None:
        missing_tool(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_certificates(folder: Path) -> Certificates:
    """A CA and a server certificate for the name ``localhost`` only, valid for a day.

    Only the name: a client that reaches the same server as ``127.0.0.1`` must refuse it,
    which is how the tests see that host names are checked and not just the chain.
    """
    return throwaway_ca(folder, hosts=("localhost",))


def people_ldif() -> str:
    blocks = [
        f"dn: {BASE_DN}\nobjectClass: organization\no: princeton university\n",
        f"dn: {SERVICE_DN}\nobjectClass: account\nobjectClass: simpleSecurityObject\n"
        f"uid: svc-recstore\nuserPassword: {SERVICE_PASSWORD}\n",
    ]
    for uid, (sources, display, cn, ou) in PEOPLE.items():
        lines = [
            f"dn: uid={uid},{BASE_DN}",
            "objectClass: inetOrgPerson",
            "objectClass: puPerson",
            f"uid: {uid}",
            f"cn: {cn}",
            f"sn: {uid}",
        ]
        lines += [f"puresource: {value}" for value in sources]
        if display is not None:
            # base64 (::) carries the tab and the non-ASCII letters of the odd name unchanged
            lines.append(f"displayName:: {base64.b64encode(display.encode()).decode()}")
        if ou is not None:
            lines.append(f"ou: {ou}")
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


class LdapServer:
    """One running slapd with :data:`PEOPLE` loaded; ``stop()`` ends it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.tls_port = free_port()
        self.certificates = make_certificates(folder)
        self.config_file = folder / "slapd.conf"
        self._write_config()
        ldif = folder / "people.ldif"
        ldif.write_text(people_ldif(), encoding="utf-8")
        subprocess.run(
            [str(SBIN / "slapadd"), "-q", "-f", str(self.config_file), "-l", str(ldif)],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.log_file = folder / "slapd.log"
        with self.log_file.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    str(SBIN / "slapd"),
                    "-f",
                    str(self.config_file),
                    "-h",
                    f"ldap://127.0.0.1:{self.port}/ ldaps://127.0.0.1:{self.tls_port}/",
                    "-d",
                    "0",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_until_listening()

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def tls_url(self) -> str:
        """``ldaps://`` by the certificate's name (``localhost``)."""
        return f"ldaps://localhost:{self.tls_port}"

    @property
    def tls_url_by_address(self) -> str:
        """The same TLS port by an address the certificate does not name."""
        return f"ldaps://127.0.0.1:{self.tls_port}"

    def _write_config(self) -> None:
        (self.folder / "puresource.schema").write_text(PURESOURCE_SCHEMA)
        database = self.folder / "db"
        database.mkdir()
        certs = self.certificates
        includes = "".join(
            f"include {SCHEMAS / name}.schema\n"
            for name in ("core", "cosine", "nis", "inetorgperson")
        )
        self.config_file.write_text(
            f"""{includes}include {self.folder / "puresource.schema"}
pidfile {self.folder / "slapd.pid"}
argsfile {self.folder / "slapd.args"}
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCACertificateFile {certs.ca_file}
TLSCertificateFile {certs.cert_file}
TLSCertificateKeyFile {certs.key_file}

database mdb
maxsize 16777216
suffix "{BASE_DN}"
rootdn "{ADMIN_DN}"
rootpw admin-secret
directory {database}
index uid eq
access to attrs=userPassword by anonymous auth by * none
access to * by dn.exact="{SERVICE_DN}" read by * none
""",
            encoding="utf-8",
        )

    def _wait_until_listening(self, patience: float = 30) -> None:
        deadline = time.monotonic() + patience
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"slapd exited with {self.proc.returncode}: {self.log_file.read_text()}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"slapd did not listen within {patience} s") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        shutil.rmtree(self.folder / "db", ignore_errors=True)
