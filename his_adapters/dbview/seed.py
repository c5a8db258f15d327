"""Create and fill a HIS stand-in database for the database-view adapter.

PostgreSQL: the objects live in a dedicated schema (default ``his_sim``) of the
DSN's database; MariaDB/MySQL: in a dedicated database of that name; SQLite: in the
DSN's file, whose existing tables and views are dropped. The schema or database is
dropped and recreated, so seeding twice gives the same data.

    python -m his_adapters.dbview.seed --dsn postgresql+asyncpg://postgres@127.0.0.1:5432/test
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from .seed_data import SeedData, generate

SCHEMA_DIR = Path(__file__).parent / "schema"
_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# Never drop these, whatever the caller asks.
_PROTECTED = {"public", "pg_catalog", "information_schema", "mysql", "performance_schema", "sys", "test"}
_TABLE_ORDER = ("patients", "visits", "charges", "charge_items", "pay_records")


def schema_statements(dialect: str) -> list[str]:
    """The DDL of the stand-in for a dialect, one statement per entry."""
    name = {"postgresql": "postgresql.sql", "mysql": "mariadb.sql", "sqlite": "sqlite.sql"}[dialect]
    text = (SCHEMA_DIR / name).read_text(encoding="utf-8")
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in re.split(r";\s*$", body, flags=re.MULTILINE) if s.strip()]


async def seed(dsn: str, *, schema_or_db: str = "his_sim", patients: int = 20, seed: int = 7,
               day: dt.date | None = None) -> SeedData:
    """Drop and recreate the stand-in in ``schema_or_db`` and fill it; returns what was inserted."""
    dialect = dsn.split("+", 1)[0].split(":", 1)[0]
    if dialect not in ("postgresql", "mysql", "sqlite"):
        raise ValueError(f"unsupported dsn {dsn.split('://', 1)[0]!r}")
    if dialect != "sqlite" and (not _NAME_RE.match(schema_or_db) or schema_or_db in _PROTECTED):
        raise ValueError(f"refusing to (re)create {schema_or_db!r}: use a dedicated lower-case name like his_sim")
    data = generate(patients=patients, seed=seed, day=day)
    engine = create_async_engine(dsn)
    try:
        async with engine.begin() as conn:
            await _recreate(conn, dialect, schema_or_db)
            for statement in schema_statements(dialect):
                await conn.exec_driver_sql(statement)
            for table in _TABLE_ORDER:
                rows = data.tables[table]
                if rows:
                    cols = list(rows[0])
                    sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)})"
                    await conn.execute(sa.text(sql), [_adapt(dialect, r) for r in rows])
    finally:
        await engine.dispose()
    return data


async def drop(dsn: str, *, schema_or_db: str) -> None:
    """Remove a stand-in created by :func:`seed` (PostgreSQL schema or MariaDB database)."""
    dialect = dsn.split("+", 1)[0].split(":", 1)[0]
    if not _NAME_RE.match(schema_or_db) or schema_or_db in _PROTECTED:
        raise ValueError(f"refusing to drop {schema_or_db!r}")
    engine = create_async_engine(dsn)
    try:
        async with engine.begin() as conn:
            if dialect == "postgresql":
                await conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema_or_db}" CASCADE')
            elif dialect == "mysql":
                await conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{schema_or_db}`")
    finally:
        await engine.dispose()


async def _recreate(conn: AsyncConnection, dialect: str, name: str) -> None:
    if dialect == "postgresql":
        await conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        await conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
        await conn.exec_driver_sql(f'SET LOCAL search_path TO "{name}"')
    elif dialect == "mysql":
        await conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        await conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        await conn.exec_driver_sql(f"USE `{name}`")
    else:
        result = await conn.exec_driver_sql(
            "SELECT type, name FROM sqlite_master WHERE type IN ('view', 'table') AND name NOT LIKE 'sqlite_%'")
        objects = sorted(result.fetchall(), key=lambda r: r[0] != "view")  # views first
        for kind, obj in objects:
            await conn.exec_driver_sql(f'DROP {kind.upper()} IF EXISTS "{obj}"')


def _adapt(dialect: str, row: dict[str, Any]) -> dict[str, Any]:
    if dialect != "sqlite":
        return row
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, Decimal):
            value = str(value)
        elif isinstance(value, dt.datetime):
            value = value.strftime("%Y-%m-%d %H:%M:%S")
        out[key] = value
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m his_adapters.dbview.seed", description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", required=True, help="SQLAlchemy async URL of the server (or SQLite file)")
    parser.add_argument("--schema", default="his_sim", help="PostgreSQL schema / MariaDB database (default his_sim)")
    parser.add_argument("--patients", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--day", type=dt.date.fromisoformat, default=None, help="business day, YYYY-MM-DD")
    args = parser.parse_args(argv)
    data = asyncio.run(seed(args.dsn, schema_or_db=args.schema, patients=args.patients, seed=args.seed,
                            day=args.day))
    print(f"seeded {args.schema}: {len(data.patients())} patients, day {data.day}")
    for bill_type, bill in data.bills.items():
        print(f"  {bill_type}: {bill['count']} lines, net {bill['total']} fen")


if __name__ == "__main__":
    main()
