"""Shared fixtures: a real gateway on a loopback port, with the WeChat Pay simulator.

The database is SQLite in a temporary directory unless YINYI_TEST_DATABASE_URL names
another (CI runs the suite again on PostgreSQL + Redis). With YINYI_REQUIRE_SERVICES=1
an unreachable PostgreSQL or Redis fails the run; it is never skipped.
"""
from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from gateway.api.app import create_app
from gateway.config import Settings
from gateway.core import Core
from gateway.demo import setup_sandbox
from gateway.testing import SignedClient
from gateway.testing.pytest_plugin import make_test_settings, reset_test_databases

PG_URL = os.environ.get("YINYI_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("YINYI_TEST_REDIS_URL")
REQUIRE = os.environ.get("YINYI_REQUIRE_SERVICES") == "1"


def pytest_sessionstart(session: pytest.Session) -> None:
    if REQUIRE and not (PG_URL and REDIS_URL):
        raise pytest.UsageError("YINYI_REQUIRE_SERVICES=1 needs YINYI_TEST_DATABASE_URL and YINYI_TEST_REDIS_URL")
    if PG_URL:
        _reset_pg_schema(PG_URL)


def _reset_pg_schema(url: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
        try:
            await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
        finally:
            await conn.close()

    asyncio.run(run())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_test_settings(tmp_path, port=free_port())


@pytest.fixture
async def wechat_sim() -> AsyncIterator[Any]:
    from channels.wechatpay.simulator import start_simulator

    handle = await start_simulator("127.0.0.1", 0, merchants=2)
    try:
        yield handle
    finally:
        await handle.stop()


@dataclass
class Gateway:
    base_url: str
    core: Core
    sandbox: dict[str, Any]
    client: SignedClient
    admin: SignedClient
    settings: Settings


async def start_gateway(settings: Settings, simulators: dict[str, Any], *, background: bool = True,
                        fresh: bool = True) -> tuple[Gateway, web.AppRunner]:
    core = Core(settings)
    await core.migrate()
    if fresh:
        await reset_test_databases(settings, core.engine)
    await core.start(background=background, run_migrations=False)
    sandbox = await setup_sandbox(core, simulators)
    app = create_app(core=core)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", settings.port).start()
    base = f"http://127.0.0.1:{settings.port}"
    client = SignedClient(base, sandbox["caller"]["app_id"], sandbox["caller"]["secret"])
    admin = SignedClient(base, sandbox["admin"]["app_id"], sandbox["admin"]["secret"])
    await client.__aenter__()
    await admin.__aenter__()
    return Gateway(base, core, sandbox, client, admin, settings), runner


async def stop_gateway(gw: Gateway, runner: web.AppRunner) -> None:
    await gw.client.__aexit__(None, None, None)
    await gw.admin.__aexit__(None, None, None)
    await runner.cleanup()


@pytest.fixture
async def gw(settings: Settings, wechat_sim: Any) -> AsyncIterator[Gateway]:
    g, runner = await start_gateway(settings, {"wechatpay": wechat_sim})
    try:
        yield g
    finally:
        await stop_gateway(g, runner)


async def wait_for(predicate, timeout: float = 10.0, interval: float = 0.1):  # type: ignore[no-untyped-def]
    """Poll an async predicate until it returns a truthy value."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value {value!r})")
        await asyncio.sleep(interval)
