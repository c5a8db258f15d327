"""pytest plugin shipped with yinyi (entry point ``pytest11``): fixtures for plugin authors.

- ``yinyi_settings``: embedded settings in a temporary data directory (or the
  database/Redis named by ``YINYI_TEST_DATABASE_URL`` / ``YINYI_TEST_REDIS_URL``).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from ..config import Settings


def make_test_settings(tmp: Path, **overrides: object) -> Settings:
    # Scheduled reconciliation is off: a test runs the days it reconciles itself.
    values: dict[str, object] = {"data_dir": tmp, "resolver_interval_seconds": 0.2, "port": 0,
                                 "recon_scheduler_enabled": False}
    if os.environ.get("YINYI_TEST_DATABASE_URL"):
        values["database_url"] = os.environ["YINYI_TEST_DATABASE_URL"]
    if os.environ.get("YINYI_TEST_REDIS_URL"):
        values["redis_url"] = os.environ["YINYI_TEST_REDIS_URL"]
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


async def reset_test_databases(settings: Settings, engine: object) -> None:
    """Empty the shared PostgreSQL tables and Redis database between tests (no-op on SQLite).

    Call after migrating and before starting a ``Core`` on settings from
    ``make_test_settings``: tests sharing one PostgreSQL must not see each other's rows
    (nor rows encrypted with another test's key)."""
    if settings.database_url and settings.database_url.startswith("postgresql"):
        from sqlalchemy import text

        from ..db.models import Base

        names = ", ".join(t.name for t in Base.metadata.sorted_tables)
        async with engine.begin() as conn:  # type: ignore[attr-defined]
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY"))
    if settings.redis_url:
        import redis.asyncio as aioredis

        r = aioredis.from_url(settings.redis_url)
        try:
            await r.flushdb()
        finally:
            await r.aclose()


@pytest.fixture
def yinyi_settings(tmp_path: Path) -> Settings:
    return make_test_settings(tmp_path)
