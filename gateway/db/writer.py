"""Write transactions: a synchronous function over one Connection, run atomically.

On PostgreSQL the function runs through the async engine (``run_sync``): many
transactions proceed in parallel over the pool. On SQLite, which has one writer at
a time anyway, the write lock is held only for the transaction's own work, never
across event-loop waits:

- a transaction runs at once on the event loop's thread when the write lock is free:
  a local WAL commit without fsync takes tens of microseconds, less than handing
  the work to a thread and back (and the two threads contending for the GIL);
- when another connection holds the lock (this process's writer thread, or another
  process sharing the file, e.g. a ``yinyi`` command), it is not waited for there: the
  transaction goes to a dedicated writer thread, whose connection waits in SQLite's
  busy handler without stalling the loop.

The loop's connection never checkpoints the WAL itself (a checkpoint writes and
syncs the database file); the writer thread checkpoints, passively, as it grows.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

T = TypeVar("T")
log = logging.getLogger("yinyi.writer")


def _sqlite_sync_engine(url: str, *, wait_ms: int = 30000, autocheckpoint: bool = True) -> Engine:
    engine = create_engine(url.replace("sqlite+aiosqlite", "sqlite", 1), poolclass=NullPool
                           if ":memory:" in url else None,
                           connect_args={"timeout": wait_ms / 1000, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={wait_ms}")
        if not autocheckpoint:
            cur.execute("PRAGMA wal_autocheckpoint=0")
        cur.close()
        dbapi_conn.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn):  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class _Busy(Exception):
    """Another connection holds SQLite's write lock."""


def _first(result: Any) -> Any:
    return result.first() if result.returns_rows else None


class Writer:
    def __init__(self, url: str, async_engine: AsyncEngine) -> None:
        self._async = async_engine
        self._sync: Engine | None = None
        self._pool: ThreadPoolExecutor | None = None
        #: Whether a data-modifying statement may carry others in WITH clauses (PostgreSQL):
        #: the ledger then records a change and its event in one statement, one round trip.
        self.multi_statement_cte = not url.startswith("sqlite")
        # One statement is atomic on its own: sent without BEGIN/COMMIT round trips.
        self._autocommit = async_engine.execution_options(isolation_level="AUTOCOMMIT")
        self._inline: Connection | None = None
        self._inline_engine: Engine | None = None
        self._inline_commits = 0
        self._checkpointing = False
        if url.startswith("sqlite"):
            self._sync = _sqlite_sync_engine(url)
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="yinyi-sqlite-writer")
            if ":memory:" not in url:
                self._inline_engine = _sqlite_sync_engine(url, wait_ms=0, autocheckpoint=False)

    async def run(self, fn: Callable[[Connection], T], *, durable: bool = True) -> T:
        """Run ``fn(conn)`` in one transaction: committed if it returns, rolled back if it raises.

        ``durable=False`` is for writes the gateway can re-derive after a database
        crash (a channel's answer, which the resolver asks for again while a payment
        is open; schedules; the interface log): on PostgreSQL the commit then does not
        wait for the WAL flush. Intents, manual decisions and audits stay durable.
        """
        if self._sync is not None:
            if self._inline_engine is not None:
                try:
                    return self._run_inline(fn)
                except _Busy:
                    pass
            return await asyncio.get_running_loop().run_in_executor(self._pool, self._run_sync, fn)
        async with self._async.begin() as conn:
            if not durable:
                await conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
            return await conn.run_sync(fn)

    async def run_one(self, stmt: Any, params: dict[str, Any]) -> Any:
        """Run one (atomic) statement and return its first row, or None.

        Only for statements that need no transaction around them; durable on commit.
        """
        if self._sync is not None:
            return await self.run(lambda conn: _first(conn.execute(stmt, params)))
        async with self._autocommit.connect() as conn:
            return _first(await conn.execute(stmt, params))

    def _run_inline(self, fn: Callable[[Connection], T]) -> T:
        assert self._inline_engine is not None
        if self._inline is None:
            self._inline = self._inline_engine.connect()
        conn = self._inline
        try:
            with conn.begin():
                result = fn(conn)
        except OperationalError as exc:
            # Busy at BEGIN IMMEDIATE (nothing done): the writer thread will wait for the lock.
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if conn.in_transaction():  # pragma: no cover - begin failed; be sure nothing is left open
                conn.rollback()
            raise _Busy from exc
        self._inline_commits += 1
        if self._inline_commits % 200 == 0 and not self._checkpointing:
            self._checkpointing = True
            self._pool.submit(self._checkpoint)  # type: ignore[union-attr]
        return result

    def _checkpoint(self) -> None:
        assert self._sync is not None
        try:
            with self._sync.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception:  # pragma: no cover - the next one will try again
            log.exception("WAL checkpoint failed")
        finally:
            self._checkpointing = False

    def _run_sync(self, fn: Callable[[Connection], T]) -> T:
        assert self._sync is not None
        with self._sync.begin() as conn:
            return fn(conn)

    async def close(self) -> None:
        if self._inline is not None:
            self._inline.close()
            self._inline = None
        if self._inline_engine is not None:
            self._inline_engine.dispose()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        if self._sync is not None:
            self._sync.dispose()
