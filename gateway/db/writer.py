"""Write transactions: a synchronous function over one Connection, run atomically.

On PostgreSQL the function runs through the async engine (``run_sync``): many
transactions proceed in parallel over the pool. On SQLite, which has one writer at
a time anyway, it runs whole in a dedicated writer thread on a synchronous
connection: the write lock is held only for the transaction's own work, never
across event-loop waits, and writers of this process queue without sleeping in
SQLite's busy handler.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

T = TypeVar("T")


def _sqlite_sync_engine(url: str) -> Engine:
    engine = create_engine(url.replace("sqlite+aiosqlite", "sqlite", 1), poolclass=NullPool
                           if ":memory:" in url else None, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()
        dbapi_conn.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn):  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class Writer:
    def __init__(self, url: str, async_engine: AsyncEngine) -> None:
        self._async = async_engine
        self._sync: Engine | None = None
        self._pool: ThreadPoolExecutor | None = None
        if url.startswith("sqlite"):
            self._sync = _sqlite_sync_engine(url)
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="yinyi-sqlite-writer")

    async def run(self, fn: Callable[[Connection], T], *, durable: bool = True) -> T:
        """Run ``fn(conn)`` in one transaction: committed if it returns, rolled back if it raises.

        ``durable=False`` is for writes the gateway can re-derive after a database
        crash (a channel's answer, which the resolver asks for again while a payment
        is open; schedules; the interface log): on PostgreSQL the commit then does not
        wait for the WAL flush. Intents, manual decisions and audits stay durable.
        """
        if self._sync is not None:
            return await asyncio.get_running_loop().run_in_executor(self._pool, self._run_sync, fn)
        async with self._async.begin() as conn:
            if not durable:
                await conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
            return await conn.run_sync(fn)

    def _run_sync(self, fn: Callable[[Connection], T]) -> T:
        assert self._sync is not None
        with self._sync.begin() as conn:
            return fn(conn)

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        if self._sync is not None:
            self._sync.dispose()
