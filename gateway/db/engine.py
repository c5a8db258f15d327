"""Engine creation and migrations."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def make_engine(url: str, pool_size: int = 10) -> AsyncEngine:
    """The engine that writes. On SQLite it has a single connection: writers of this
    process queue for it on the event loop instead of sleeping in SQLite's busy
    handler (other processes sharing the file still wait on busy_timeout)."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, pool_size=1, max_overflow=0,
                                     pool_timeout=60)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            # WAL lets readers work during writes; NORMAL is durable across process
            # crashes (the case that matters for a gateway killed mid-payment).
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
            # Take pysqlite's implicit transactions out of the way so that every
            # transaction starts with BEGIN IMMEDIATE below.
            dbapi_conn.isolation_level = None

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(conn):  # type: ignore[no-untyped-def]
            # A deferred transaction that reads and then writes can fail with
            # SQLITE_BUSY instead of waiting; IMMEDIATE takes the write lock up
            # front, so concurrent writers queue on busy_timeout.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    # No pre-ping (a round trip per checkout); connections are recycled instead.
    # Connections beyond the pool are opened and closed per use (costly): the pool is sized to
    # hold the usual concurrency, the overflow absorbs bursts.
    return create_async_engine(url, pool_size=pool_size, max_overflow=max(1, pool_size // 2), pool_recycle=1800)


def make_relaxed_engine(url: str, pool_size: int = 10) -> AsyncEngine | None:
    """PostgreSQL connections whose commits return before the WAL is flushed, for writes
    the gateway can re-derive after a database crash (a channel's answer, which the
    resolver asks for again; schedules; the interface log). None on SQLite."""
    if url.startswith("sqlite"):
        return None
    return create_async_engine(url, pool_size=pool_size, max_overflow=max(1, pool_size // 2), pool_recycle=1800,
                               connect_args={"server_settings": {"synchronous_commit": "off"}})


def make_read_engine(url: str, write_engine: AsyncEngine, pool_size: int = 10) -> AsyncEngine:
    """The engine for reads. On SQLite (WAL) readers never wait for the writer, so
    reads get their own pool without BEGIN IMMEDIATE; elsewhere it is the same engine."""
    if not url.startswith("sqlite"):
        return write_engine
    engine = create_async_engine(url, connect_args={"timeout": 30}, pool_size=pool_size, max_overflow=pool_size)

    @event.listens_for(engine.sync_engine, "connect")
    def _sqlite_read_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    return engine


def sessionmaker_for(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def migrate(url: str, revision: str = "head") -> None:
    """Bring the database to ``revision`` (blocking; call from a thread in async code)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)
