"""Engine, transactions and error translation for the database-view adapter.

The engine is created on first use (no I/O in the adapter's constructor) and
disposed in ``aclose()``. Database errors become the HIS error tree:

- cannot connect, connection lost, server shutting down → ``HisUnavailable``;
- the statement timeout (server-side, plus a client-side deadline) → ``HisTimeout``;
- bad SQL (unknown column, syntax, type errors) → ``HisProtocolError`` naming the function.
"""
from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Mapping as AbcMapping
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from gateway.errors import HisError, HisProtocolError, HisTimeout, HisUnavailable
from gateway.mapping import MISSING

from .config import DbViewConfig, bind_names

# MySQL/MariaDB server error numbers that mean "the server, not the SQL, is the problem".
_MYSQL_TIMEOUT = {1969, 3024, 1205}  # max_statement_time, max_execution_time, lock wait
_MYSQL_UNAVAILABLE = {1040, 1044, 1045, 1049, 1053, 1077, 1152, 1153, 1158, 1159, 1160, 1161, 1213, 1927}
_SQLITE_UNAVAILABLE = ("database is locked", "unable to open database", "disk i/o error", "database is busy")
_CLIENT_GRACE_SECONDS = 2.0


class Database:
    """One lazily created engine and the few ways the adapter uses it."""

    def __init__(self, config: DbViewConfig, system: str = "dbview") -> None:
        self.config = config
        self.system = system
        self._engine: AsyncEngine | None = None

    @property
    def dialect(self) -> str:
        return self.config.scheme.split("+", 1)[0]

    def engine(self) -> AsyncEngine:
        if self._engine is None:
            self._engine = create_async_engine(self._url(), **self._engine_kwargs())
        return self._engine

    def _url(self) -> sa.URL:
        url = make_url(self.config.dsn.get_secret_value())
        if self.dialect == "mysql" and "charset" not in url.query:
            url = url.update_query_dict({"charset": "utf8mb4"})
        return url

    def _engine_kwargs(self) -> dict[str, Any]:
        cfg = self.config
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if self.dialect == "postgresql":
            settings = {"statement_timeout": str(int(cfg.statement_timeout_seconds * 1000)),
                        "application_name": "yinyi-dbview"}
            if cfg.search_path:
                settings["search_path"] = cfg.search_path
            kwargs["connect_args"] = {"server_settings": settings, "timeout": cfg.connect_timeout_seconds}
        elif self.dialect == "mysql":
            kwargs["connect_args"] = {
                "connect_timeout": max(1, int(round(cfg.connect_timeout_seconds))),
                "init_command": self._mysql_timeout_command(),
            }
        else:
            kwargs["connect_args"] = {"timeout": cfg.connect_timeout_seconds}
            # A connection per use: nothing lingers in a worker thread after aclose().
            kwargs["poolclass"] = NullPool
        if self.dialect != "sqlite":
            kwargs["pool_size"] = cfg.pool_size
            kwargs["max_overflow"] = cfg.pool_size
            kwargs["pool_timeout"] = cfg.connect_timeout_seconds
        return kwargs

    def _mysql_timeout_command(self) -> str:
        seconds = self.config.statement_timeout_seconds
        if self.config.mysql_timeout_variable == "max_execution_time":  # MySQL: milliseconds, SELECT only
            return f"SET SESSION max_execution_time={int(seconds * 1000)}"
        return f"SET SESSION max_statement_time={seconds:g}"  # MariaDB: seconds, every statement

    async def aclose(self) -> None:
        if self._engine is not None:
            engine, self._engine = self._engine, None
            await engine.dispose()

    # --- transactions -------------------------------------------------------------
    @asynccontextmanager
    async def transaction(self, function: str, *, write: bool) -> AsyncIterator[Session]:
        """A connection in a transaction: committed for writes, rolled back for reads."""
        try:
            conn = await self.engine().connect()
        except (HisError, asyncio.CancelledError):
            raise
        except Exception as exc:  # noqa: BLE001 - any failure to connect means the HIS is unreachable
            raise HisUnavailable(f"{self.system}: {function}: cannot connect to the HIS database: "
                                 f"{_short(exc)}", function=function) from exc
        session = Session(self, conn, function)
        try:
            trans = await session.run_guarded(conn.begin())
            if not write and self.config.read_only and self.dialect in ("postgresql", "mysql"):
                await session.execute("SET TRANSACTION READ ONLY", {})
            try:
                yield session
            except BaseException:
                await _quietly(trans.rollback())
                raise
            if write:
                await session.run_guarded(trans.commit())
            else:
                await session.run_guarded(trans.rollback())
        finally:
            await _quietly(conn.close())

    def translate(self, exc: BaseException, function: str) -> HisError:
        """Map a database exception to the HIS error tree."""
        where = f"{self.system}: {function}"
        if isinstance(exc, TimeoutError | asyncio.TimeoutError):
            return HisTimeout(f"{where}: no answer within {self.config.statement_timeout_seconds:g}s",
                              function=function)
        if isinstance(exc, sa_exc.DBAPIError):
            kind = self._classify(exc)
            detail = f"{where}: {_short(exc.orig or exc)}"
            if kind == "timeout":
                return HisTimeout(detail, function=function)
            if kind == "unavailable":
                return HisUnavailable(detail, function=function)
            return HisProtocolError(f"{where}: the configured SQL failed: {_short(exc.orig or exc)}",
                                    function=function)
        if isinstance(exc, OSError | ConnectionError):
            return HisUnavailable(f"{where}: {_short(exc)}", function=function)
        if isinstance(exc, sa_exc.StatementError | sa_exc.ArgumentError):
            return HisProtocolError(f"{where}: the configured SQL failed: {_short(exc)}", function=function)
        return HisUnavailable(f"{where}: {_short(exc)}", function=function)

    def _classify(self, exc: sa_exc.DBAPIError) -> str:
        if exc.connection_invalidated or isinstance(exc, sa_exc.InterfaceError):
            return "unavailable"
        orig = exc.orig
        if self.dialect == "postgresql":
            state = str(getattr(orig, "sqlstate", "") or "")
            if state == "57014":
                return "timeout"
            if state[:2] in ("08", "53", "57", "58", "28", "3D") or state in ("40001", "40P01"):
                return "unavailable"
            if not state and isinstance(getattr(orig, "__cause__", None), OSError | TimeoutError):
                return "unavailable"
            return "sql"
        if self.dialect == "mysql":
            code = orig.args[0] if orig is not None and orig.args and isinstance(orig.args[0], int) else 0
            if code in _MYSQL_TIMEOUT:
                return "timeout"
            if code in _MYSQL_UNAVAILABLE or 2000 <= code < 3000:
                return "unavailable"
            return "sql"
        text = str(orig).lower()
        return "unavailable" if any(t in text for t in _SQLITE_UNAVAILABLE) else "sql"

    # --- bind values ----------------------------------------------------------------
    def adapt(self, value: Any) -> Any:
        """Python values the driver can bind: SQLite takes neither Decimal nor datetime."""
        if self.dialect == "sqlite":
            if isinstance(value, Decimal):
                return str(value)
            if isinstance(value, dt.datetime):
                return value.strftime("%Y-%m-%d %H:%M:%S")
            if isinstance(value, dt.date):
                return value.isoformat()
        return value


class Session:
    """A connection inside one function's transaction; every call is deadline-guarded."""

    def __init__(self, db: Database, conn: AsyncConnection, function: str) -> None:
        self.db = db
        self.conn = conn
        self.function = function

    async def run_guarded(self, awaitable: Any) -> Any:
        deadline = self.db.config.statement_timeout_seconds + _CLIENT_GRACE_SECONDS
        try:
            async with asyncio.timeout(deadline):
                return await awaitable
        except (HisError, asyncio.CancelledError):
            raise
        except sa_exc.IntegrityError:
            raise  # the write-back flow decides what a duplicate means
        except TimeoutError as exc:
            # Cancelled mid-statement: the connection's state is unknown, never reuse it.
            await _quietly(self.conn.invalidate())
            raise self.db.translate(exc, self.function) from exc
        except Exception as exc:  # noqa: BLE001 - translated into the HIS error tree
            raise self.db.translate(exc, self.function) from exc

    async def execute(self, sql: str, values: AbcMapping[str, Any]) -> list[dict[str, Any]]:
        """Run one SQL text with the binds it names; rows as dicts keyed by lower-cased labels."""
        params = {name: self.db.adapt(values.get(name)) for name in bind_names(sql)}

        async def go() -> list[dict[str, Any]]:
            result = await self.conn.execute(sa.text(sql), params)
            if not result.returns_rows:
                return []
            keys = [str(k).lower() for k in result.keys()]
            return [dict(zip(keys, row, strict=True)) for row in result.fetchall()]

        return await self.run_guarded(go())


def column(row: AbcMapping[str, Any], src: str) -> Any:
    """Mapping getter for a result row: the column ``src``, case-insensitively."""
    return row.get(src.lower(), MISSING)


def jsonable(row: AbcMapping[str, Any]) -> dict[str, Any]:
    """A result row as plain JSON values, for ``raw``."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, Decimal):
            out[key] = str(value)
        elif isinstance(value, dt.datetime | dt.date | dt.time):
            out[key] = value.isoformat()
        elif isinstance(value, bytes | bytearray | memoryview):
            out[key] = bytes(value).hex()
        else:
            out[key] = value
    return out


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


async def _quietly(awaitable: Any) -> None:
    try:
        await awaitable
    except Exception:  # noqa: BLE001 - cleanup after an error already being raised
        pass
