"""LDAP enrichment of reports (seed 001's ``add_ldap_status``) against a real OpenLDAP slapd.

The directory (tests/ldap_server.py) holds seed 001's kinds of people: alice (enabled),
bob (going away, no displayName), carol (disabled), dave (no puresource at all) and zoe (a
name with a tab and non-ASCII letters); "nobody" is missing. Decisions the tests pin down:

* ``ldap_status`` is active / goingaway / inactive / unknown (see recstore.archive.ldap_report);
* every byte of the input stays: odd characters, empty cells, CRLF and LF line endings, a blank
  line, a last line without a newline; the three cells go before each line ending;
* a directory failure writes nothing to stdout and exits 1; bad input or configuration exits 2;
* the bind password never appears in any output.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from ldap3 import Connection, Server

from recstore.archive.ldap_report import (
    LDAP_COLUMNS,
    ReportFormatError,
    add_ldap_columns,
    enhance_tsv,
)
from recstore.archive.report import LIST_COLUMNS
from recstore.clients.ldap import LdapDirectory, LdapError, escape_filter_value
from recstore.common.errors import ConfigError, NotFound, RemoteError, Unauthorised
from recstore.settings import LdapSettings
from recstore.workers.registry import load_settings
from tests.conftest import clean_env, run_cli, run_cli_bytes
from tests.ldap_server import (
    BASE_DN,
    SERVICE_DN,
    SERVICE_PASSWORD,
    LdapServer,
    free_port,
    require_slapd,
)

INJECTION = "*)(uid=*"
IDLE_WORKERS = {"FileTransferer": {"enabled": False}, "DracoonGlobalSharer": {"count": 0}}


@pytest.fixture(scope="session")
def ldap_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LdapServer]:
    require_slapd()
    server = LdapServer(tmp_path_factory.mktemp("slapd"))
    yield server
    server.stop()


def ldap_settings(server: LdapServer, **overrides: Any) -> LdapSettings:
    return LdapSettings.model_validate(_ldap_yaml(server, **overrides))


def write_config(tmp_path: Path, ldap: dict[str, Any]) -> Path:
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump({"workers": IDLE_WORKERS, "ldap": ldap}), encoding="utf-8")
    return path


def run_ldap_status(
    config: Path, data: bytes, *args: str, env: dict[str, str] | None = None
) -> tuple[int, bytes, str]:
    """``recstore ldap-status`` with ``data`` on stdin (in this process: every byte it writes
    to stdout is compared, which a process shows no differently)."""
    return run_cli_bytes("ldap-status", "--config", str(config), *args, stdin=data, env=env)


def list_line(creator: str, entry: str, extra: str = "") -> bytes:
    """One row in the ``kaltura list`` columns, with odd characters in the other cells."""
    cells = [
        "2021-03-04",
        "7",
        entry,
        "2",  # the Kaltura entry status: stays a separate column
        "",
        "",
        "2019-01-02",
        "1546387200",
        creator,
        "12,13",
        f'Lectures>Physics "101" \\ café{extra}',
    ]
    return "\t".join(cells).encode("utf-8")


# -- filter escaping (RFC 4515) ---------------------------------------------------------------


def test_filter_values_are_escaped_as_rfc_4515_says() -> None:
    assert escape_filter_value(INJECTION) == "\\2a\\29\\28uid=\\2a"
    assert escape_filter_value("a\\b\0c") == "a\\5cb\\00c"
    assert escape_filter_value("zoë.o'brien") == "zoë.o'brien"


# -- the command ------------------------------------------------------------------------------


def test_ldap_status_adds_the_columns_and_keeps_every_other_byte(
    ldap_server: LdapServer, tmp_path: Path
) -> None:
    password_file = tmp_path / "bind-password"
    password_file.write_text(SERVICE_PASSWORD + "\n")
    config = write_config(
        tmp_path, {"urls": [ldap_server.url], "bindDn": SERVICE_DN, "baseDn": BASE_DN}
    )
    header = "\t".join(LIST_COLUMNS).encode()
    # (creator id, line ending, the three cells expected)
    rows: list[tuple[str, bytes, tuple[str, str, str]]] = [
        ("alice", b"\n", ("active", "Alice Active", "Physics")),
        ("bob@princeton.edu", b"\r\n", ("goingaway", "Bob Leaving", "Chemistry")),
        ("carol", b"\n", ("inactive", "Carol Gone", "History")),
        ("dave", b"\r\n", ("inactive", "Dave Nosource", "")),
        ("zoe", b"\n", ("active", "Zoë Núñez-O'Brien", "Music, Dance & Art")),
        ("nobody", b"\n", ("unknown", "", "")),
        ("x(y)*", b"\n", ("active", "Odd Uid", "Lab")),
        (INJECTION, b"\n", ("unknown", "", "")),
        ("*", b"\n", ("unknown", "", "")),
        ("ALICE", b"\n", ("active", "Alice Active", "Physics")),
        ("alice", b"\n", ("active", "Alice Active", "Physics")),
        ("", b"\n", ("unknown", "", "")),
        ("carol@elsewhere.example", b"", ("inactive", "Carol Gone", "History")),
    ]
    data = header + b"\r\n"
    expected = header + b"\tldap_status\tname\torg_unit\r\n"
    for number, (creator, ending, cells) in enumerate(rows):
        line = list_line(creator, f"0_{number:07d}", extra=" \x7f" if number % 2 else "")
        data += line + ending
        expected += line + b"".join(b"\t" + cell.encode() for cell in cells) + ending
        if number == 4:  # a blank line stays a blank line
            data += b"\n"
            expected += b"\n"

    code, out, err = run_ldap_status(
        config,
        data,
        env=clean_env(RECSTORE_LDAP__BINDPASSWORD_FILE=str(password_file)),
    )

    assert code == 0, err
    assert out == expected
    assert SERVICE_PASSWORD not in err


def test_an_injection_shaped_id_would_widen_a_naive_filter_but_matches_nothing(
    ldap_server: LdapServer, tmp_path: Path
) -> None:
    template = LdapSettings().active_filter
    naive = template.replace("{id}", INJECTION)
    connection = Connection(
        Server("127.0.0.1", ldap_server.port), SERVICE_DN, SERVICE_PASSWORD, auto_bind=True
    )
    try:
        connection.search(BASE_DN, naive, attributes=["uid"])
        widened = sorted(str(entry["attributes"]["uid"][0]) for entry in connection.response)
    finally:
        connection.unbind()
    assert widened == ["alice", "bob", "x(y)*", "zoe"]  # what plain string formatting reports

    config = write_config(tmp_path, _ldap_yaml(ldap_server))
    data = b"creator_id\tnote\n" + f"{INJECTION}\tx\n*\ty\n".encode()
    code, out, err = run_ldap_status(config, data)
    assert code == 0, err
    assert out == (
        b"creator_id\tnote\tldap_status\tname\torg_unit\n"
        + f"{INJECTION}\tx\tunknown\t\t\n*\ty\tunknown\t\t\n".encode()
    )


def test_another_column_can_hold_the_ids(ldap_server: LdapServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, _ldap_yaml(ldap_server))
    data = b"owner\tcreator_id\nbob\tcarol\n"
    code, out, err = run_ldap_status(config, data, "--column", "owner")
    assert code == 0, err
    assert out == (
        b"owner\tcreator_id\tldap_status\tname\torg_unit\n"
        b"bob\tcarol\tgoingaway\tBob Leaving\tChemistry\n"
    )


def test_directory_down_exits_1_with_a_clear_message_and_no_output(tmp_path: Path) -> None:
    down = f"ldap://127.0.0.1:{free_port()}"
    config = write_config(
        tmp_path,
        {"urls": [down], "bindDn": SERVICE_DN, "bindPassword": SERVICE_PASSWORD, "baseDn": BASE_DN},
    )
    data = b"creator_id\nalice\n"
    code, out, err = run_ldap_status(config, data)
    assert code == 1
    assert out == b""
    assert "no output written" in err
    assert down in err
    assert "cannot reach the server" in err
    assert "Traceback" not in err
    assert SERVICE_PASSWORD not in err


def test_a_refused_bind_fails_without_printing_the_password(
    ldap_server: LdapServer, tmp_path: Path
) -> None:
    wrong = "Wr0ng-but-still-secret"
    config = write_config(tmp_path, _ldap_yaml(ldap_server, bindPassword=wrong))
    code, out, err = run_ldap_status(config, b"creator_id\nalice\n")
    assert code == 1
    assert out == b""
    assert "invalidCredentials" in err
    assert SERVICE_DN in err
    assert wrong not in err

    shown = _run_cli_text("config", "show", "--config", str(config))
    assert wrong not in shown
    assert "bindPassword: '**********'" in shown


def test_input_that_does_not_fit_exits_2_before_asking_the_directory(tmp_path: Path) -> None:
    # the directory is down: had it been asked, the exit status would be 1
    config = write_config(
        tmp_path, {"urls": [f"ldap://127.0.0.1:{free_port()}"], "baseDn": BASE_DN}
    )
    for data, message in (
        (b"entry_id\tcreator\n1\talice\n", "no column 'creator_id'"),
        (b"creator_id\tldap_status\nalice\tx\n", "already has the column(s) ldap_status"),
        (b"entry_id\tcreator_id\n0_1\n", "line 2 has 1 cell(s)"),
        (b"", "no header line"),
    ):
        code, out, err = run_ldap_status(config, data)
        assert (code, out) == (2, b""), err
        assert message in err


def test_missing_directory_settings_name_their_keys(tmp_path: Path) -> None:
    config = write_config(tmp_path, {})
    code, out, err = run_ldap_status(config, b"creator_id\nalice\n")
    assert (code, out) == (2, b"")
    assert "ldap.urls: required" in err
    assert "ldap.baseDn: required" in err


# -- the client and the in-memory rows for `kaltura list --ldap` ------------------------------


async def test_rows_get_the_columns_and_keep_their_own_status(ldap_server: LdapServer) -> None:
    rows = [
        {"entry_id": "0_a", "status": 2, "creator_id": "alice"},
        {"entry_id": "0_b", "status": 7, "creator_id": "bob"},
        {"entry_id": "0_c", "status": 2, "creator_id": None},
        {"entry_id": "0_d", "status": 2, "creator_id": "ghost@princeton.edu"},
    ]
    async with LdapDirectory(ldap_settings(ldap_server)) as directory:
        enriched = await add_ldap_columns(rows, directory)
    assert [row["status"] for row in enriched] == [2, 7, 2, 2]
    assert [tuple(row[name] for name in LDAP_COLUMNS) for row in enriched] == [
        ("active", "Alice Active", "Physics"),
        ("goingaway", "Bob Leaving", "Chemistry"),
        ("unknown", "", ""),
        ("unknown", "", ""),
    ]
    assert list(enriched[0]) == ["entry_id", "status", "creator_id", *LDAP_COLUMNS]


@pytest.mark.parametrize(
    ("overrides", "kind", "code"),
    [
        ({"bindPassword": "not-the-password"}, Unauthorised, "invalidCredentials"),
        ({"baseDn": "ou=nowhere,dc=example,dc=org"}, NotFound, "noSuchObject"),
    ],
)
async def test_the_directorys_refusals_are_raised_as_their_kind(
    ldap_server: LdapServer, overrides: dict[str, str], kind: type[RemoteError], code: str
) -> None:
    """A caller tells a refused bind from a base DN that is not there by the class alone."""
    async with LdapDirectory(ldap_settings(ldap_server, **overrides)) as directory:
        with pytest.raises(LdapError) as caught:
            await directory.find_users(["alice"])
    assert isinstance(caught.value, kind)
    assert (caught.value.code, caught.value.transient) == (code, False)


async def test_batches_and_concurrency_give_the_same_answer(ldap_server: LdapServer) -> None:
    ids = ["alice", "bob", "carol", "dave", "zoe", "nobody", INJECTION, "ALICE", "Zoe", "x"]
    async with LdapDirectory(ldap_settings(ldap_server)) as directory:
        whole = await directory.find_users(ids)
    async with LdapDirectory(ldap_settings(ldap_server, batchSize=2, concurrency=3)) as directory:
        batched = await directory.find_users(ids * 3)
    assert batched == whole
    assert sorted(whole) == ["ALICE", "Zoe", "alice", "bob", "carol", "dave", "zoe"]
    assert (whole["bob"].active, whole["bob"].going_away) == (True, True)
    assert (whole["carol"].active, whole["carol"].going_away) == (False, False)


async def test_without_email_stripping_an_address_is_unknown(ldap_server: LdapServer) -> None:
    settings = ldap_settings(ldap_server, stripEmailDomain=False, goingAwayFilter="")
    async with LdapDirectory(settings) as directory:
        lines = await enhance_tsv(
            b"creator_id\nbob@princeton.edu\nbob\n",
            directory,
            strip_email_domain=settings.strip_email_domain,
        )
    assert b"".join(lines) == (
        b"creator_id\tldap_status\tname\torg_unit\n"
        b"bob@princeton.edu\tunknown\t\t\nbob\tactive\tBob Leaving\tChemistry\n"
    )


async def test_tls_is_verified_by_default(ldap_server: LdapServer) -> None:
    ca_file = str(ldap_server.certificates.ca_file)
    for settings in (
        ldap_settings(ldap_server, urls=[ldap_server.tls_url], caFile=ca_file),
        ldap_settings(
            ldap_server,
            urls=[f"ldap://localhost:{ldap_server.port}"],
            startTls=True,
            caFile=ca_file,
        ),
        ldap_settings(ldap_server, urls=[ldap_server.tls_url_by_address], verifyCertificate=False),
    ):
        async with LdapDirectory(settings) as directory:
            found = await directory.find_users(["alice"])
        assert found["alice"].name == "Alice Active", settings

    for settings, reason in (
        (ldap_settings(ldap_server, urls=[ldap_server.tls_url]), "certificate verify failed"),
        (
            ldap_settings(
                ldap_server, urls=[f"ldap://localhost:{ldap_server.port}"], startTls=True
            ),
            "certificate verify failed",
        ),
        (
            ldap_settings(ldap_server, urls=[ldap_server.tls_url_by_address], caFile=ca_file),
            "mismatch",
        ),
    ):
        async with LdapDirectory(settings) as directory:
            with pytest.raises(LdapError, match="TLS failed") as failure:
                await directory.find_users(["alice"])
        assert reason in str(failure.value)
        assert not failure.value.transient  # a certificate problem is not retried


async def test_the_next_url_is_tried_when_the_first_is_down(ldap_server: LdapServer) -> None:
    settings = ldap_settings(ldap_server, urls=[f"ldap://127.0.0.1:{free_port()}", ldap_server.url])
    async with LdapDirectory(settings) as directory:
        found = await directory.find_users(["carol"])
    assert found["carol"].active is False


async def test_a_closed_directory_refuses_reuse(ldap_server: LdapServer) -> None:
    directory = LdapDirectory(ldap_settings(ldap_server))
    await directory.find_users(["alice"])
    await directory.close()
    with pytest.raises(RuntimeError, match="closed"):
        await directory.find_users(["alice"])


async def test_report_format_errors_come_before_any_lookup(ldap_server: LdapServer) -> None:
    async with LdapDirectory(ldap_settings(ldap_server)) as directory:
        with pytest.raises(ReportFormatError, match="no column 'creator_id'"):
            await enhance_tsv(b"a\tb\n", directory)
        with pytest.raises(ReportFormatError, match="already have"):
            await add_ldap_columns([{"creator_id": "x", "name": "y"}], directory)


# -- settings ---------------------------------------------------------------------------------


def test_ldap_settings_are_checked_at_load() -> None:
    env = {
        "RECSTORE_WORKERS__FILETRANSFERER__ENABLED": "false",
        "RECSTORE_WORKERS__DRACOONGLOBALSHARER__COUNT": "0",
        "RECSTORE_LDAP__URLS": "ldaps://a.example.edu ldaps://b.example.edu:1636",
        "RECSTORE_LDAP__BASEDN": BASE_DN,
    }
    settings = load_settings(None, env)
    assert settings.ldap.urls == ["ldaps://a.example.edu", "ldaps://b.example.edu:1636"]
    assert settings.ldap.verify_certificate is True

    for extra, key, message in (
        ({"RECSTORE_LDAP__ACTIVEFILTER": "(uid=x)"}, "ldap.activeFilter", "{id}"),
        ({"RECSTORE_LDAP__ACTIVEFILTER": "(uid={id})(x=y)"}, "ldap.activeFilter", "balanced"),
        ({"RECSTORE_LDAP__URLS": "https://x"}, "ldap.urls", "not an ldap://"),
        ({"RECSTORE_LDAP__BINDDN": SERVICE_DN}, "ldap", "both bindDn and bindPassword"),
        ({"RECSTORE_LDAP__STARTTLS": "true"}, "ldap", "startTls is for ldap://"),
    ):
        with pytest.raises(ConfigError) as failure:
            load_settings(None, {**env, **extra})
        assert any(k == key and message in m for k, m in failure.value.problems), (
            failure.value.problems
        )


def _ldap_yaml(server: LdapServer, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "urls": [server.url],
        "bindDn": SERVICE_DN,
        "bindPassword": SERVICE_PASSWORD,
        "baseDn": BASE_DN,
    }
    values.update(overrides)
    return values


def _run_cli_text(*args: str) -> str:
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def test_kaltura_list_with_ldap_adds_the_columns_inline(
    ldap_server: LdapServer, devstack: Any, tmp_path: Path
) -> None:
    import asyncio
    import csv
    import io

    from recstore.devstack.appconfig import app_config
    from recstore.devstack.seed import seed_stand_in

    people = {"0_ldapA": "alice", "0_ldapB": "bob@princeton.edu", "0_ldapC": "carol", "0_ldapN": ""}
    entries = [
        {"id": entry, "createdAt": 1_300_000_000 + n, "userId": user, "flavors": []}
        for n, (entry, user) in enumerate(people.items())
    ]
    asyncio.run(seed_stand_in(devstack.state, "kaltura", {"entries": entries}))
    doc = app_config(devstack.state)
    doc["workers"] = IDLE_WORKERS
    doc["ldap"] = _ldap_yaml(ldap_server)
    config = tmp_path / "app.yaml"
    config.write_text(yaml.safe_dump(doc))
    ids = [arg for entry in people for arg in ("--id", entry)]

    result = run_cli("kaltura", "list", *ids, "--ldap", "--config", str(config))
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout), delimiter="\t"))
    assert list(rows[0]) == [*LIST_COLUMNS, *LDAP_COLUMNS]
    got = {r["entry_id"]: (r["status"], r["ldap_status"], r["name"], r["org_unit"]) for r in rows}
    assert got == {
        "0_ldapA": ("READY", "active", "Alice Active", "Physics"),
        "0_ldapB": ("READY", "goingaway", "Bob Leaving", "Chemistry"),
        "0_ldapC": ("READY", "inactive", "Carol Gone", "History"),
        "0_ldapN": ("READY", "unknown", "", ""),
    }

    doc["ldap"]["urls"] = [f"ldap://127.0.0.1:{free_port()}"]  # nothing listens there
    config.write_text(yaml.safe_dump(doc))
    down = run_cli("kaltura", "list", *ids, "--ldap", "--config", str(config))
    assert down.returncode == 1
    assert down.stdout == ""
    assert SERVICE_PASSWORD not in down.stderr
