"""The ``yinyi`` command line."""
from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Any

import click

from .config import Settings


def _settings() -> Settings:
    try:
        return Settings()
    except Exception as exc:  # a bad configuration names its field
        raise click.ClickException(f"invalid configuration: {exc}") from exc


def _core(settings: Settings):  # type: ignore[no-untyped-def]
    from .core import Core
    from .errors import YinyiError

    try:
        return Core(settings)
    except YinyiError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Debug logging")
def cli(verbose: bool) -> None:
    """yinyi (银医): unified payment and reconciliation gateway for hospitals."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)


@cli.command()
def migrate() -> None:
    """Create or upgrade the ledger database (Alembic migrations)."""
    from .db.engine import migrate as run

    settings = _settings()
    run(settings.effective_database_url)
    click.echo(f"database at head: {settings.effective_database_url.split('@')[-1]}")


@cli.command()
@click.option("--host", default=None)
@click.option("--port", type=int, default=None)
@click.option("--workers", type=int, default=None,
              help="Processes sharing the port (default: the workers setting, 1); more than one needs "
                   "PostgreSQL and Redis, since the embedded SQLite file and in-process locks are per process")
@click.option("--reuse-port", is_flag=True, hidden=True, help="Bind with SO_REUSEPORT (set for each worker)")
def serve(host: str | None, port: int | None, workers: int | None, reuse_port: bool) -> None:
    """Run the gateway."""
    overrides: dict[str, Any] = {}
    if host:
        overrides["host"] = host
    if port:
        overrides["port"] = port
    if workers:
        overrides["workers"] = workers
    try:
        settings = Settings(**overrides) if overrides else _settings()
    except Exception as exc:
        raise click.ClickException(f"invalid configuration: {exc}") from exc
    if settings.workers > 1:
        if settings.is_sqlite or not settings.redis_url:
            raise click.ClickException(
                "several workers share state through the database and Redis: set YINYI_DATABASE_URL to "
                "PostgreSQL and YINYI_REDIS_URL, or run one worker on the embedded defaults")
        from .supervisor import run_workers

        raise SystemExit(run_workers(settings))
    from aiohttp import web

    from .api.app import create_app

    factory = loop_factory(settings.event_loop)
    application = create_app(core=_core(settings))
    application.on_startup.append(_freeze_startup_objects)  # after the core's start (cleanup_ctx runs first)
    web.run_app(application, host=settings.host, port=settings.port, access_log=None,
                reuse_port=reuse_port or None, loop=factory() if factory else None)


async def _freeze_startup_objects(_app: Any) -> None:
    """What start-up built (modules, plugins, compiled statements) lives as long as the
    process: keep it out of the collector's full passes, whose pauses grow with the heap
    and would otherwise stall every request in flight."""
    import gc

    gc.collect()
    gc.freeze()


def loop_factory(choice: str):  # type: ignore[no-untyped-def]
    """The event loop factory for ``choice`` (auto: uvloop where it is installed)."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise click.ClickException("event_loop=uvloop but uvloop is not installed") from None
        return None
    return uvloop.new_event_loop


@cli.group()
def app() -> None:
    """Manage caller apps (接入应用)."""


@app.command("create")
@click.argument("name")
@click.option("--business-types", default="*", help="Comma-separated business types, * for all")
@click.option("--merchants", default="", help="Comma-separated merchant ids the app may use (default any)")
@click.option("--admin", is_flag=True, help="Also grant the admin scope")
@click.option("--json", "as_json", is_flag=True)
def app_create(name: str, business_types: str, merchants: str, admin: bool, as_json: bool) -> None:
    """Create a caller app and print its id and secret (shown once)."""

    async def run() -> tuple[str, str]:
        core = _core(_settings())
        await core.start(background=False)
        try:
            app_id, secret = await core.directory.create_app(
                name, business_types=[b for b in business_types.split(",") if b],
                merchant_ids=[m for m in merchants.split(",") if m], scopes=["pay", "admin"] if admin else ["pay"])
            await core.ledger.audit("cli", "app.create", app_id, {"name": name, "admin": admin})
            return app_id, secret
        finally:
            await core.stop()

    app_id, secret = asyncio.run(run())
    if as_json:
        click.echo(json.dumps({"app_id": app_id, "secret": secret, "name": name}))
    else:
        click.echo(f"app_id: {app_id}\nsecret: {secret}\n(the secret is shown once; store it in the calling system)")


@cli.command()
@click.option("--json", "as_json", is_flag=True)
def plugins(as_json: bool) -> None:
    """List loaded plugins, their versions, origins and hooks."""
    from .errors import YinyiError
    from .plugins import build_plugin_manager, build_registry

    settings = _settings()
    try:
        pm, infos = build_plugin_manager(settings.disabled_plugins, settings.trace_hooks)
        registry = build_registry(pm, settings.disabled_channels)
    except YinyiError as exc:
        raise click.ClickException(str(exc)) from exc
    rows = [p.as_dict() for p in infos]
    channels = {cid: sorted(c.value for c in cls.capabilities) for cid, cls in registry.channels.items()}
    if as_json:
        click.echo(json.dumps({"plugins": rows, "channels": channels}, ensure_ascii=False))
        return
    width = max([12, *(len(p["source"]) for p in rows)])
    for p in rows:
        click.echo(f"{p['name']:<16} {p['version']:<10} {p['source']:<{width}} {p['module']}")
        click.echo(f"{'':<16} hooks: {', '.join(p['hooks'])}")
    for cid, caps in channels.items():
        click.echo(f"channel {cid}: {', '.join(caps)}")


@cli.command()
@click.option("--host", default="127.0.0.1")
@click.option("--port", type=int, default=8080)
@click.option("--data-dir", default=None, help="Where the embedded database and sandbox.json live")
def demo(host: str, port: int, data_dir: str | None) -> None:
    """Run the gateway with every simulator and a sandbox hospital on embedded defaults."""
    from .demo import run_demo

    asyncio.run(run_demo(host=host, port=port, data_dir=data_dir))


@cli.command()
@click.argument("method")
@click.argument("path")
@click.argument("body", required=False, default="")
@click.option("--sandbox", default="var/sandbox.json", help="sandbox.json with the caller credentials")
@click.option("--base-url", default=None)
@click.option("--admin", "as_admin", is_flag=True, help="Sign as the sandbox admin app")
@click.option("--operator", default=None, help="The person at the admin app (X-Operator)")
@click.option("--roles", default=None, help="The operator's roles, comma-separated (X-Operator-Roles)")
def call(method: str, path: str, body: str, sandbox: str, base_url: str | None, as_admin: bool,
         operator: str | None, roles: str | None) -> None:
    """Send one signed request, e.g. yinyi call POST /v1/payments '{...}'."""
    import urllib.request

    from .api.signing import signed_headers

    with open(sandbox, encoding="utf-8") as fh:
        sb = json.load(fh)
    raw = body.encode()
    who = sb["admin"] if as_admin else sb["caller"]
    headers = signed_headers(who["app_id"], who["secret"], method, path, raw, operator=operator, roles=roles)
    req = urllib.request.Request((base_url or sb["gateway"]["base_url"]) + path, data=raw or None,
                                 headers=headers, method=method.upper())
    try:
        with urllib.request.urlopen(req, timeout=90) as resp:  # noqa: S310 - loopback sandbox
            click.echo(resp.read().decode())
    except urllib.error.HTTPError as exc:
        click.echo(exc.read().decode())
        sys.exit(1)


def _builtin_groups() -> None:
    from .cli_console import console
    from .cli_his import his
    from .cli_recon import recon, report

    cli.add_command(his)
    cli.add_command(recon)
    cli.add_command(report)
    cli.add_command(console)


_builtin_groups()


def _plugin_commands() -> None:
    try:
        from .plugins import build_plugin_manager

        pm, _ = build_plugin_manager(_settings().disabled_plugins)
        pm.hook.yinyi_register_commands(cli=cli)
    except Exception as exc:  # a broken plugin must not hide the built-in commands
        logging.getLogger("yinyi.cli").warning("plugin commands unavailable: %s", exc)


def main() -> None:
    _plugin_commands()
    cli()
