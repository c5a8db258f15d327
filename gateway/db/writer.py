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


class _Row:
    """A result row as the ledger reads it (``row._mapping``, ``row.column``)."""

    def __init__(self, mapping: dict[str, Any]) -> None:
        self._mapping = mapping
        self.__dict__.update(mapping)


class _DriverPlan:
    """A hot statement compiled once by SQLAlchemy (SQL text, parameter order, type
    conversions) and sent straight to the asyncpg connection: one statement costs the
    driver's work only, not the async engine's per-execution bookkeeping on top."""

    def __init__(self, stmt: Any, dialect: Any) -> None:
        self.compiled = stmt.compile(dialect=dialect)
        self.sql = str(self.compiled)
        self.keys = list(self.compiled.positiontup or [])
        self.binds = dict(self.compiled._bind_processors)  # noqa: SLF001 - SQLAlchemy's own conversions
        self.results: list[tuple[str, Any]] = []
        for name, _key, _objs, type_ in self.compiled._result_columns:  # noqa: SLF001
            self.results.append((name, type_._cached_result_processor(dialect, None)))
        self.dialect = dialect

    def args(self, params: dict[str, Any]) -> list[Any]:
        values = self.compiled.construct_params(params)
        out = []
        for key in self.keys:
            value = values[key]
            proc = self.binds.get(key)
            out.append(proc(value) if proc is not None else value)
        return out

    def row(self, record: Any) -> _Row | None:
        if record is None or not self.results:
            return None
        return _Row({name: (proc(record[i]) if proc is not None else record[i])
                     for i, (name, proc) in enumerate(self.results)})

    def translate(self, exc: Exception, params: dict[str, Any]) -> Exception:
        from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
        from sqlalchemy.exc import DBAPIError

        try:
            AsyncAdapt_asyncpg_connection._handle_exception_no_connection(self.dialect.loaded_dbapi, exc)
        except Exception as dbapi_exc:  # the DB-API error the asyncpg adapter maps it to
            return DBAPIError.instance(self.sql, params, dbapi_exc, self.dialect.loaded_dbapi.Error,
                                       dialect=self.dialect)
        return exc  # pragma: no cover


class Writer:
    def __init__(self, url: str, async_engine: AsyncEngine, relaxed_engine: AsyncEngine | None = None) -> None:
        self._async = async_engine
        # PostgreSQL connections whose commits do not wait for the WAL flush (non-durable writes).
        self._relaxed = relaxed_engine
        self._sync: Engine | None = None
        self._pool: ThreadPoolExecutor | None = None
        #: Whether a data-modifying statement may carry others in WITH clauses (PostgreSQL):
        #: the ledger then records a change and its event in one statement, one round trip.
        self.multi_statement_cte = not url.startswith("sqlite")
        # One statement is atomic on its own: sent without BEGIN/COMMIT round trips.
        self._autocommit = async_engine.execution_options(isolation_level="AUTOCOMMIT")
        self._plans: dict[Any, _DriverPlan] = {}
        self._relaxed_autocommit = (relaxed_engine.execution_options(isolation_level="AUTOCOMMIT")
                                    if relaxed_engine is not None else None)
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
        if not durable and self._relaxed is not None:
            async with self._relaxed.begin() as conn:
                return await conn.run_sync(fn)
        async with self._async.begin() as conn:
            if not durable:
                await conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
            return await conn.run_sync(fn)

    async def run_one(self, stmt: Any, params: dict[str, Any], *, durable: bool = True) -> Any:
        """Run one (atomic) statement and return its first row, or None.

        Only for statements that need no transaction around them; ``durable`` as in ``run``.
        """
        if self._sync is not None:
            return await self.run(lambda conn: _first(conn.execute(stmt, params)))
        plan = self._plans.get(stmt)
        if plan is None:
            plan = self._plans[stmt] = _DriverPlan(stmt, self._async.dialect)
        engine = self._autocommit if durable or self._relaxed_autocommit is None else self._relaxed_autocommit
        async with engine.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            try:
                record = await driver.fetchrow(plan.sql, *plan.args(params))
            except Exception as exc:
                # The same exception SQLAlchemy would raise (IntegrityError on a unique key, …).
                raise plan.translate(exc, params) from exc
        return plan.row(record)

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
