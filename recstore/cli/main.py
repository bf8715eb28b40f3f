"""The ``recstore`` group and its core commands; thin: parse, call into the package, exit.

Exit statuses: 0 success, 1 the command ran and something failed, 2 bad usage or a bad
configuration (one line per problem on stderr, naming the key).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import click
import yaml

from recstore import __version__
from recstore.common import events
from recstore.common.errors import ConfigError, RecstoreError
from recstore.settings import Settings, load_settings, masked_dump

CONFIG_OPTION = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="RECSTORE_CONFIG",
    help="YAML configuration file (env: RECSTORE_CONFIG). Without it: defaults + environment.",
)
JOB_FILE_OPTION = click.option(
    "--file",
    "job_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="A job message (JSON, seed 004 format).",
)
STATE_OPTION = click.option(
    "--state-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path(".devstack/state.json"),
    show_default=True,
    help="JSON file with the dev stack's endpoints and credentials.",
)


log = logging.getLogger("recstore.cli")


def _config_failed(error: ConfigError) -> NoReturn:
    """One line per problem, then exit 2; each problem is also logged with seed 004's code
    (15018), and the daemon's refusal to start as 15002, so alert rules on them fire."""
    for key, message in error.problems:
        click.echo(f"recstore: configuration error: {key}: {message}", err=True)
    if not logging.getLogger().handlers:  # the configuration that says how to log is the one
        events.setup_logging()  # that failed: the defaults (text on stderr) serve
    for key, message in error.problems:
        events.emit(log, events.CONFIGURATION_ERROR, "%s: %s", key, message, key=key)
    context = click.get_current_context(silent=True)
    if context is not None and context.info_name == "run":
        events.emit(
            log,
            events.CONFIG_LOAD_FAILED,
            "cannot load the configuration for the workers: %d problem(s); not starting",
            len(error.problems),
        )
    sys.exit(2)


def start_logging(settings: Settings) -> None:
    """Log as configured; a command that works (not the daemon) says so first, with seed
    004's "Start CLI application" (15001), so a one-shot run's lines are found by it."""
    events.setup_logging(settings.logger.level, settings.logger.format)
    context = click.get_current_context(silent=True)
    command = context.command_path if context is not None else "recstore"
    events.emit(log, events.START_CLI, "%s started", command, version=__version__)


@contextlib.contextmanager
def reported_errors() -> Iterator[None]:
    """A command's failures as one line each: a configuration fault exits 2, any other 1."""
    try:
        yield
    except ConfigError as error:
        _config_failed(error)
    except RecstoreError as exc:  # a remote, a job, a crypto failure: the message says which
        raise click.ClickException(str(exc)) from None


WORKERS_OPTION = click.option(
    "--workers",
    envvar="RECSTORE_WORKERS",
    help="Only these workers, comma-separated, of those the configuration turns on "
    "(env: RECSTORE_WORKERS), e.g. FileTransferer,ArchiveActions for the pool's replicas.",
)


def _load(
    config_path: Path | None, workers: str | None = None, *, check_workers: bool = True
) -> Settings:
    """The settings, or exit 2 naming each problem. ``workers``: the replica's selection
    (``--workers``); ``check_workers`` false: a one-shot command's check, without what the
    daemon's workers need (see :func:`load_settings`)."""
    from recstore.workers import registry

    try:
        if check_workers:
            settings = registry.load_settings(config_path, workers=workers)
        else:
            settings = load_settings(config_path)
    except ConfigError as error:
        _config_failed(error)
    events.register_secrets_in(settings)
    return settings


class _Recstore(click.Group):
    """The ``recstore`` group, whose other modules' commands are imported when asked for.

    Each of those modules adds its group to :data:`main` on import, and brings what its
    commands use (the Kaltura, LDAP and AWS clients): about 0.3 CPU-s that ``recstore run``,
    ``healthcheck`` or ``ldap-status`` spent at every start on commands they do not run.
    """

    #: Command name → the module that adds it (and, for ``kaltura``, its action commands).
    ELSEWHERE = {
        "kaltura": "recstore.cli.kaltura_actions",
        "ldap-status": "recstore.cli.ldap",
        "vidyo": "recstore.cli.vidyo",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.ELSEWHERE})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.ELSEWHERE:  # even when registered: kaltura without its actions
            importlib.import_module(self.ELSEWHERE[cmd_name])
        return super().get_command(ctx, cmd_name)


@click.group(cls=_Recstore, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="recstore")
def main() -> None:
    """recstore: keeps meeting recordings moving between S3, DRACOON, Kaltura and VidyoReplay."""


@main.command()
@CONFIG_OPTION
@WORKERS_OPTION
def run(config_path: Path | None, workers: str | None) -> None:
    """Run the daemon until SIGTERM/SIGINT (exit 0 after a clean drain)."""
    from recstore.runtime import daemon

    settings = _load(config_path, workers)
    events.setup_logging(settings.logger.level, settings.logger.format)
    try:
        status = daemon.run(settings)
    except ConfigError as error:  # found only when used: the HTTP address taken, for one
        _config_failed(error)
    sys.exit(status)


@main.group()
def config() -> None:
    """Check or show the configuration."""


@config.command("check")
@CONFIG_OPTION
@WORKERS_OPTION
def config_check(config_path: Path | None, workers: str | None) -> None:
    """Validate the configuration; exit 2 with one line per problem.

    Then say what a replica started with it (and ``--workers``) runs and needs.
    """
    from recstore.runtime.replica import describe

    settings = _load(config_path, workers)
    click.echo("configuration is valid")
    for line in describe(settings):
        click.echo(f"  {line}")


@config.command("show")
@CONFIG_OPTION
def config_show(config_path: Path | None) -> None:
    """Print the effective configuration (file + environment + defaults), secrets masked."""
    settings = _load(config_path)
    click.echo(yaml.safe_dump(masked_dump(settings), sort_keys=False), nl=False)


def _require_devstack_extra() -> None:
    """Stop with how to install the dev stack, where this install lacks it.

    The daemon's image and a plain ``pip install recstore`` leave out moto's server (and its
    Flask and Werkzeug): the stand-ins are for demos, tests and benchmarks, not production.
    """
    try:
        import moto.server  # noqa: F401  (the stand-ins import it when they start)
    except ModuleNotFoundError:
        raise click.ClickException(
            "the dev stack is not installed here: pip install 'recstore[devstack]' "
            "(or, in a checkout, make demo), or use the image's dev target"
        ) from None


@main.group()
def devstack() -> None:
    """The local stand-ins for S3/SQS, DRACOON, Kaltura, VidyoReplay and the configurator."""


@devstack.command("up")
@STATE_OPTION
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where stand-ins keep uploaded bytes (default: a temporary folder, removed on exit).",
)
@click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Serve the stand-ins (not moto) over HTTPS with this certificate (PEM).",
)
@click.option(
    "--tls-key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The certificate's private key (PEM); with --tls-cert.",
)
def devstack_up(
    state_file: Path, data_dir: Path | None, tls_cert: Path | None, tls_key: Path | None
) -> None:
    """Start the dev stack in the foreground; write STATE_FILE once it answers."""
    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    _require_devstack_extra()
    from recstore.devstack.stack import DevStack, StackOptions, serve_until_signalled

    events.setup_logging("info")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    tls = (tls_cert, tls_key) if tls_cert is not None and tls_key is not None else None
    stack = DevStack(StackOptions(data_dir=data_dir, tls=tls))
    asyncio.run(serve_until_signalled(stack, state_file))


@devstack.command("config")
@STATE_OPTION
@click.option("--http-port", type=int, default=8080, show_default=True)
def devstack_config(state_file: Path, http_port: int) -> None:
    """Print an app.yaml that points the daemon at the running dev stack."""
    from recstore.devstack.appconfig import render
    from recstore.devstack.stack import read_state

    click.echo(render(read_state(state_file), http_port=http_port), nl=False)


@devstack.command("seed")
@click.argument("system", type=click.Choice(["s3", "dracoon", "kaltura", "vidyo", "configurator"]))
@STATE_OPTION
@click.option(
    "--file",
    "data_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="JSON document in the system's seed schema (see docs/devstack.md).",
)
def devstack_seed(system: str, state_file: Path, data_file: Path) -> None:
    """Load test data into a running stand-in; prints what was created as JSON."""
    from recstore.devstack import seed
    from recstore.devstack.stack import read_state

    state = read_state(state_file)
    try:
        data = json.loads(data_file.read_text(encoding="utf-8"))
        if system == "s3":
            result: Any = asyncio.run(seed.seed_s3(state, data))
        else:
            result = asyncio.run(seed.seed_stand_in(state, system, data))
    except (ValueError, KeyError) as exc:
        raise click.ClickException(f"seed {system}: {exc}") from None
    click.echo(json.dumps(result, indent=2))


@main.command()
def demo() -> None:
    """Start the dev stack, run the daemon against it and show each job's result."""
    _require_devstack_extra()
    from recstore.devstack.demo import run_demo

    events.setup_logging("warning")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    sys.exit(asyncio.run(run_demo()))


@config.command("defaults")
def config_defaults() -> None:
    """Print every key with its default and description (this is conf/app.yaml)."""
    from recstore.settings.reference import render_defaults

    click.echo(render_defaults(), nl=False)


@config.command("reference")
@click.option(
    "--part",
    type=click.Choice(["settings", "events", "metrics"]),
    default="settings",
    show_default=True,
    help="settings: docs/configuration.md; events, metrics: the README's tables.",
)
def config_reference(part: str) -> None:
    """Print Markdown reference generated from the code: keys, event codes or metrics."""
    from recstore.settings.reference import REFERENCE_PARTS

    click.echo(REFERENCE_PARTS[part](), nl=False)


@config.command("fetch")
@click.argument("uri")
@click.option(
    "--to",
    "target",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to write the files into (created if missing).",
)
def config_fetch(uri: str, target: Path) -> None:
    """Copy configuration files from s3://bucket/prefix/ (AWS credentials from the env)."""
    from recstore.common.errors import RemoteError
    from recstore.runtime.config_fetch import fetch

    try:
        written = asyncio.run(fetch(uri, target))
    except (ValueError, RemoteError) as exc:
        raise click.ClickException(str(exc)) from None
    if not written:
        raise click.ClickException(f"no configuration files under {uri}")
    for path in written:
        click.echo(f"fetched {path}")


@main.group()
def dlq() -> None:
    """Look into the FileTransferer's dead-letter queue, or send messages back."""


async def _with_queues(settings: Settings, work: Callable[[Any, Any], Awaitable[Any]]) -> Any:
    from recstore.clients.aws import aws_client
    from recstore.clients.sqs import SqsQueue

    transferer = settings.workers.file_transferer
    async with aws_client(settings.aws, "sqs") as client:
        dead = SqsQueue(client, settings.queue_url(transferer.dead_letter_queue))
        queue = SqsQueue(client, settings.queue_url(transferer.queue))
        return await work(dead, queue)


@dlq.command("list")
@CONFIG_OPTION
@click.option("--show-body", is_flag=True, help="Also print bodies (they hold personal data).")
@click.option("--limit", type=int, default=1000, show_default=True)
def dlq_list(config_path: Path | None, show_body: bool, limit: int) -> None:
    """One line per dead letter: id, receives, instance, meeting, worker, reason (TSV)."""
    from recstore.runtime.dead_letters import list_dead_letters

    settings = _load(config_path)
    with reported_errors():
        letters = asyncio.run(
            _with_queues(settings, lambda dead, _: list_dead_letters(dead, limit))
        )
    click.echo("message_id\treceives\tinstance\tmeeting_id\tworker\treason")
    for letter in letters:
        row = [letter.message_id, str(letter.receive_count), letter.instance, letter.meeting_id]
        row += [letter.worker, letter.reason.replace("\t", " ").replace("\n", " ")]
        click.echo("\t".join(row))
        if show_body:
            click.echo(letter.body)
    click.echo(f"{len(letters)} message(s)", err=True)


@dlq.command("redrive")
@CONFIG_OPTION
@click.option("--id", "ids", multiple=True, help="Only these message ids (repeatable).")
@click.option("--all", "everything", is_flag=True, help="Every message in the queue.")
def dlq_redrive(config_path: Path | None, ids: tuple[str, ...], everything: bool) -> None:
    """Send dead letters back to the work queue (after fixing what made them fail)."""
    from recstore.runtime.dead_letters import redrive

    if not ids and not everything:
        raise click.UsageError("name messages with --id, or pass --all")
    settings = _load(config_path)
    with reported_errors():
        moved = asyncio.run(
            _with_queues(
                settings,
                lambda dead, work: redrive(dead, work, lambda d: everything or d.message_id in ids),
            )
        )
    for letter in moved:
        click.echo(f"redriven {letter.message_id}")
    click.echo(f"{len(moved)} message(s) sent back to the work queue", err=True)


@main.command()
@CONFIG_OPTION
@click.option("--url", help="The daemon's /status.json (default: from http.* of the config).")
def status(config_path: Path | None, url: str | None) -> None:
    """Workers, their health and jobs, and recent failures of a running daemon."""
    from recstore.runtime.status import daemon_url, fetch_status, render

    login = None
    try:
        if url is None or config_path is not None:
            http = _load(config_path).http
            url = url or daemon_url(http, "/status.json")
            if http.status_user is not None and http.status_password is not None:
                login = (http.status_user, http.status_password.get_secret_value())
        document = fetch_status(url, login=login)
    except (ConnectionError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(render(document), nl=False)


@main.command()
@CONFIG_OPTION
@click.option("--url", help="The daemon's /healthcheck (default: from http.* of the config).")
@click.option("--timeout", type=float, default=5.0, show_default=True, help="Seconds to wait.")
def healthcheck(config_path: Path | None, url: str | None, timeout: float) -> None:
    """Exit 0 when a running daemon says it is healthy, 1 when not (for container probes).

    Every failure is 1, a configuration that does not name the daemon's address included:
    Docker reserves 2 in a health check.
    """
    from recstore.runtime.status import check_health, daemon_url

    try:
        if url is None:
            from recstore.workers import registry

            url = daemon_url(registry.load_settings(config_path).http, "/healthcheck")
        healthy, line = check_health(url, timeout)
    except (ConfigError, ValueError) as exc:
        healthy, line = False, f"recstore healthcheck: {exc}"
    click.echo(line, err=not healthy)
    sys.exit(0 if healthy else 1)


def _job_from(body: str) -> Any:
    from recstore.common.errors import PermanentJobError
    from recstore.transfer.job import parse_job

    try:
        return parse_job(body)
    except PermanentJobError as exc:
        raise click.ClickException(f"not a valid job: {exc}") from None


@main.command()
@CONFIG_OPTION
@JOB_FILE_OPTION
def enqueue(config_path: Path | None, job_file: Path) -> None:
    """Validate a job message, then send it to the FileTransferer's work queue."""
    from recstore.clients.aws import aws_client
    from recstore.clients.sqs import SqsQueue

    settings = _load(config_path)
    body = job_file.read_text(encoding="utf-8")
    job = _job_from(body)

    async def send() -> str:
        async with aws_client(settings.aws, "sqs") as client:
            url = settings.queue_url(settings.workers.file_transferer.queue)
            return await SqsQueue(client, url).send(body)

    with reported_errors():
        message_id = asyncio.run(send())
    click.echo(f"enqueued {job.job_id} as message {message_id}")


@main.command()
@CONFIG_OPTION
@JOB_FILE_OPTION
def transfer(config_path: Path | None, job_file: Path) -> None:
    """Run one job in the foreground, as the daemon would, and print where the files went."""
    from recstore.workers.file_transferer import TransferService

    settings = _load(config_path)
    start_logging(settings)
    job = _job_from(job_file.read_text(encoding="utf-8"))

    async def run() -> Any:
        async with TransferService(settings) as service:
            return await service.run_job(job)

    with reported_errors():
        report = asyncio.run(run())
    for key, path, file_id in report.uploaded:
        click.echo(f"uploaded\t{key}\t{path}\tfile {file_id}")
    for key, path, file_id in report.already_there:
        click.echo(f"already there\t{key}\t{path}\tfile {file_id}")
    for key, path, file_id in report.twins_removed:
        click.echo(f"second copy removed\t{key}\t{path}\tfile {file_id}")
    for key in report.sources_removed:
        click.echo(f"source removed\t{key}")


@main.command("share-keys")
@CONFIG_OPTION
@click.option("--room", "room_id", type=int, help="Only files in this room (and its sub-rooms).")
@click.option("--dry-run", is_flag=True, help="Count what would be written; write nothing.")
def share_keys(config_path: Path | None, room_id: int | None, dry_run: bool) -> None:
    """One DracoonGlobalSharer run in the foreground: hand out every missing file key."""
    from recstore.clients.dracoon_wire import REMOTE as DRACOON
    from recstore.clients.s3 import S3Store
    from recstore.workers.accounts import ServedInstances
    from recstore.workers.global_sharer import share_all
    from recstore.workers.resources import Resources

    settings = _load(config_path)
    start_logging(settings)

    async def run() -> Any:
        async with Resources(settings) as resources:  # what the daemon's sharer runs on
            store = None
            if settings.leases.shared:  # the daemon's list of served instances is there
                store = S3Store(await resources.s3())
            served = ServedInstances.of(settings, store)
            pool = await resources.accounts()
            session = await resources.http(DRACOON)
            return await share_all(settings, pool, room_id, dry_run, served, session)

    with reported_errors():
        report = asyncio.run(run())
    verb = "would write" if dry_run else "wrote"
    click.echo(
        f"{verb} {report.keys_written} file key(s) for {len(report.users)} user(s) on "
        f"{len(report.files)} file(s) across {report.accounts} account(s); "
        f"{report.skipped} skipped, {report.failed_accounts} account(s) failed"
    )
