"""Fixtures: the HIS stand-in seeded into real PostgreSQL, real MariaDB and SQLite.

Each test session seeds its own ``his_sim_<random>`` schema (PostgreSQL, database
``test``) and database (MariaDB) and drops them at the end, so concurrent runs and
the main suite (which recreates ``public``) never meet. A server that does not
answer skips its tests, unless ``YINYI_REQUIRE_SERVICES=1``: then they fail.
"""
from __future__ import annotations

import asyncio
import copy
import datetime as dt
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from his_adapters.config_file import load_system_toml
from his_adapters.dbview import DbViewHisAdapter
from his_adapters.dbview.seed import drop, seed
from his_adapters.dbview.seed_data import SeedData

ROOT = Path(__file__).resolve().parents[3]
DAY = dt.date(2024, 5, 20)
REQUIRE = os.environ.get("YINYI_REQUIRE_SERVICES") == "1"
SERVER_DSN = {
    "postgresql": os.environ.get("YINYI_TEST_HIS_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"),
    "mariadb": os.environ.get("YINYI_TEST_HIS_MARIADB_URL", "mysql+aiomysql://root@127.0.0.1:3306/test"),
}
_probes: dict[str, str | None] = {}


async def _probe(dsn: str) -> str | None:
    args = {"timeout": 2} if dsn.startswith("postgresql") else {"connect_timeout": 2}
    engine = create_async_engine(dsn, connect_args=args)
    try:
        async with asyncio.timeout(5):
            async with engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"{type(exc).__name__}: {exc}"[:200]
    finally:
        await engine.dispose()


def require_server(kind: str) -> str:
    """The server DSN of ``kind``, or skip (fail under YINYI_REQUIRE_SERVICES=1)."""
    dsn = SERVER_DSN[kind]
    if kind not in _probes:
        _probes[kind] = asyncio.run(_probe(dsn))
    if _probes[kind]:
        message = f"{kind} at {dsn.split('@')[-1]} is not reachable: {_probes[kind]}"
        if REQUIRE:
            pytest.fail(f"{message} (YINYI_REQUIRE_SERVICES=1)", pytrace=False)
        pytest.skip(message)
    return dsn


@dataclass
class SeededHis:
    kind: str  # postgresql | mariadb | sqlite
    dsn: str  # what the adapter connects to
    search_path: str | None
    data: SeedData

    def config(self, **overrides: Any) -> dict[str, Any]:
        """The shipped configuration for this database, pointed at this session's stand-in."""
        name = "dbview-mariadb.toml" if self.kind == "mariadb" else "dbview-postgresql.toml"
        cfg = copy.deepcopy(load_system_toml(ROOT / "configs" / "his" / name)["config"])
        cfg["dsn"] = self.dsn
        cfg.pop("search_path", None)
        if self.search_path:
            cfg["search_path"] = self.search_path
        cfg.update(overrides)
        return cfg

    def patient(self, index: int) -> dict[str, Any]:
        return self.data.patients()[index]


@pytest.fixture(scope="session", params=["postgresql", "mariadb", "sqlite"])
def his_db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeededHis]:
    kind = request.param
    name = f"his_sim_{os.getpid()}_{secrets.token_hex(3)}"
    if kind == "sqlite":
        dsn = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('his') / 'his.db'}"
        data = asyncio.run(seed(dsn, day=DAY))
        yield SeededHis(kind, dsn, None, data)
        return
    server = require_server(kind)
    data = asyncio.run(seed(server, schema_or_db=name, day=DAY))
    try:
        if kind == "postgresql":
            yield SeededHis(kind, server, name, data)
        else:
            yield SeededHis(kind, server.rsplit("/", 1)[0] + f"/{name}", None, data)
    finally:
        asyncio.run(drop(server, schema_or_db=name))


@pytest.fixture
async def adapter(his_db: SeededHis) -> AsyncIterator[DbViewHisAdapter]:
    his = DbViewHisAdapter(his_db.config())
    try:
        yield his
    finally:
        await his.aclose()


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
