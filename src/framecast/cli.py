"""The `framecast` command line: serve, worker, migrate, token, user (server side); login, record, devices (agent)."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from framecast import __version__
from framecast.agent import commands as agent
from framecast.settings import Settings

app = typer.Typer(
    help="framecast: record, get a link that plays, share it with exactly who you choose.",
    no_args_is_help=True,
    add_completion=False,
)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")
user_app = typer.Typer(help="Accounts: who can sign in to the web app.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.command(rich_help_panel="Recording agent")(agent.login)
app.command(rich_help_panel="Recording agent")(agent.record)
app.command(rich_help_panel="Recording agent")(agent.devices)
err = Console(stderr=True)

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Home of the embedded default (FRAMECAST_DATA_DIR).")]


def _settings(data_dir: Path | None = None, **overrides: object) -> Settings:
    settings = Settings()
    values = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    return settings.model_copy(update=values)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"framecast {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """framecast."""


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on (FRAMECAST_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (FRAMECAST_PORT).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Run the server (API, control channel, uploads) with its background workers."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    with asyncio.Runner(loop_factory=_fastest_loop()) as runner:
        runner.run(_serve(_settings(data_dir, host=host, port=port)))


def _fastest_loop() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it exists (not on Windows): it reads sockets with fewer copies, which uploads feel."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


# Generation thresholds for a server (CPython's are 700, 10, 10). See _collect_garbage_rarely.
GC_THRESHOLDS = (50_000, 20, 100)


def _collect_garbage_rarely() -> None:
    """Keep the cyclic garbage collector from pausing a busy server.

    A server holding 10,000 sessions tracks about 0.7 million container objects, and with CPython's default
    thresholds a full collection -- which visits every one of them and stops the event loop for 0.4-0.8 s -- ran
    every few seconds under load: that was the whole p99 of the control round trip (bench/bench_scale.py,
    docs/benchmarks.md). Young collections every 50,000 allocations rather than 700, and older ones rarer in
    proportion, keep the pauses away at the cost of a few megabytes of cyclic garbage kept a little longer; most of
    framecast's garbage is freed by reference counting anyway. What start-up built (modules, the app, the
    container) is frozen: it lives as long as the process, so no collection needs to visit it again.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def _serve(settings: Settings) -> None:
    import uvicorn

    from framecast.api import redaction
    from framecast.api.app import create_app, server_config
    from framecast.bootstrap import build_container
    from framecast.services.accounts import bootstrap_owner

    redaction.install()
    container = await build_container(settings)
    try:
        token = await bootstrap_owner(uow=container.uow, clock=container.clock, email=settings.owner_email)
        err.print(f"[bold green]framecast[/] {__version__} on [bold]{settings.resolved_public_url}[/]")
        if token:
            err.print(f"First start: created [bold]{settings.owner_email}[/]. API token (shown once):")
            print(token, flush=True)
            err.print(
                f"Sign in at {settings.resolved_public_url}/signin with that token, or give the account a password: "
                f"[bold]framecast user password {settings.owner_email}[/]"
            )
        server = uvicorn.Server(server_config(create_app(container), settings))
        _collect_garbage_rarely()
        await server.serve()
    finally:
        await container.aclose()


@app.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option(help="Jobs run at a time (FRAMECAST_WORKER_CONCURRENCY).", min=1)
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Run processing jobs (scale-out: any number of these beside `serve FRAMECAST_SERVE_WORKERS=false`)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    with asyncio.Runner(loop_factory=_fastest_loop()) as runner:
        runner.run(_work(_settings(data_dir, worker_concurrency=concurrency)))


async def _work(settings: Settings) -> None:
    import signal

    from framecast.bootstrap import build_container

    container = await build_container(settings)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, container.worker.stop)
    err.print(
        f"[bold green]framecast worker[/] {container.worker.worker_id}: "
        f"{settings.worker_concurrency} at a time, ffmpeg threads {settings.media_threads}"
    )
    try:
        await container.worker.run()
    finally:
        await container.aclose()


@app.command()
def migrate(data_dir: DataDir = None) -> None:
    """Bring the database schema up to date (serve also does this on start)."""
    from framecast.adapters.sql.migrate import upgrade

    settings = _settings(data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url)
    err.print("database is up to date")


@token_app.command("create")
def token_create(
    email: Annotated[str, typer.Option(help="The user's email; the user is created if needed.")],
    name: Annotated[str, typer.Option(help="A label for the token.")] = "",
    data_dir: DataDir = None,
) -> None:
    """Create an API token for EMAIL and print only the token on stdout."""
    try:
        token = asyncio.run(_token_create(_settings(data_dir), email=email, name=name))
    except ValueError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    print(token)


async def _token_create(settings: Settings, *, email: str, name: str) -> str:
    from framecast.bootstrap import build_container
    from framecast.services.accounts import create_token, ensure_user

    container = await build_container(settings)
    try:
        user = await ensure_user(uow=container.uow, clock=container.clock, email=email)
        return await create_token(uow=container.uow, clock=container.clock, user=user, name=name)
    finally:
        await container.aclose()


PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input instead of asking for it.")
]


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@user_app.command("add")
def user_add(
    email: Annotated[str, typer.Argument(help="The new user's email address.")],
    password_stdin: PasswordStdin = False,
    data_dir: DataDir = None,
) -> None:
    """Create a user (with a personal workspace) who signs in with EMAIL and a password."""
    _set_password(_settings(data_dir), email=email, password=_read_password(password_stdin), create=True)
    err.print(f"[green]{email}[/] can sign in")


@user_app.command("password")
def user_password(
    email: Annotated[str, typer.Argument(help="The user's email address.")],
    password_stdin: PasswordStdin = False,
    data_dir: DataDir = None,
) -> None:
    """Set a user's password; they are signed out of every browser."""
    _set_password(_settings(data_dir), email=email, password=_read_password(password_stdin), create=False)
    err.print(f"password set for [green]{email}[/]")


def _set_password(settings: Settings, *, email: str, password: str, create: bool) -> None:
    from framecast.domain.errors import DomainError

    try:
        asyncio.run(_set_password_async(settings, email=email, password=password, create=create))
    except (ValueError, DomainError) as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc


async def _set_password_async(settings: Settings, *, email: str, password: str, create: bool) -> None:
    from framecast.bootstrap import build_container
    from framecast.services.accounts import ensure_user

    container = await build_container(settings)
    try:
        if create:
            from framecast.domain.users import normalize_email

            async with container.uow() as tx:
                if await tx.users.by_email(normalize_email(email)) is not None:
                    raise ValueError(f"{email} already has an account; `framecast user password {email}` sets it")
            await ensure_user(uow=container.uow, clock=container.clock, email=email)
        await container.sessions.set_password(email=email, password=password)
    finally:
        await container.aclose()


def main() -> None:
    app()
