"""Broken calls: database down, statement timeout, bad SQL, writes in a read-only transaction."""
from __future__ import annotations

import asyncio
import time

import pytest

from gateway.errors import HisProtocolError, HisTimeout, HisUnavailable
from gateway.his import PatientQuery
from his_adapters.dbview import DbViewHisAdapter

from .conftest import DAY, SeededHis, closed_port

SLEEP = {"postgresql": "SELECT pg_sleep(5) AS slept", "mariadb": "SELECT SLEEP(5) AS slept"}


def _with_exam_sql(his_db: SeededHis, sql: str, **overrides: object) -> DbViewHisAdapter:
    cfg = his_db.config(**overrides)
    cfg["bills"]["types"]["exam"] = {"sql": sql}
    return DbViewHisAdapter(cfg)


async def test_database_down_is_unavailable(his_db: SeededHis) -> None:
    port = closed_port()
    dsn = {"postgresql": f"postgresql+asyncpg://postgres@127.0.0.1:{port}/test",
           "mariadb": f"mysql+aiomysql://root@127.0.0.1:{port}/his_sim",
           "sqlite": "sqlite+aiosqlite:////nonexistent-dir/his.db"}[his_db.kind]
    his = DbViewHisAdapter(his_db.config(dsn=dsn, connect_timeout_seconds=2))
    assert his.db._engine is None  # nothing happens before the first call
    try:
        with pytest.raises(HisUnavailable, match="cannot connect"):
            await his.pending_charges(PatientQuery(patient_id="P1000001"))
        with pytest.raises(HisUnavailable):
            await his.daily_bill(DAY, "outpatient_settlement")
    finally:
        await his.aclose()
        if his_db.kind == "sqlite":
            # The SQLite driver stops its worker thread after a failed open without waiting;
            # let it finish while this test's event loop still runs.
            await asyncio.sleep(0.2)


async def test_statement_timeout(his_db: SeededHis) -> None:
    if his_db.kind not in SLEEP:
        pytest.skip("SQLite has no server-side statement timeout")
    his = _with_exam_sql(his_db, SLEEP[his_db.kind], statement_timeout_seconds=0.5)
    try:
        started = time.monotonic()
        with pytest.raises(HisTimeout):
            await his.daily_bill(DAY, "exam")
        assert time.monotonic() - started < 3
        # The pool is still usable afterwards.
        assert (await his.daily_bill(DAY, "inpatient_deposit")).lines
    finally:
        await his.aclose()


@pytest.mark.parametrize("sql", [
    "SELECT no_such_column FROM v_daily_bill WHERE bill_type = :bill_type",
    "SELEKT * FROM v_daily_bill",
    "SELECT * FROM no_such_view",
])
async def test_bad_sql_is_a_protocol_error_naming_the_function(his_db: SeededHis, sql: str) -> None:
    his = _with_exam_sql(his_db, sql)
    try:
        with pytest.raises(HisProtocolError, match=r"bills\.exam: the configured SQL failed"):
            await his.daily_bill(DAY, "exam")
    finally:
        await his.aclose()


async def test_reads_cannot_write(his_db: SeededHis) -> None:
    if his_db.kind == "sqlite":
        pytest.skip("SQLite reads are rolled back but not marked read-only")
    his = _with_exam_sql(his_db, "UPDATE pay_records SET operator = 'X' WHERE pay_serial = :bill_type")
    try:
        with pytest.raises(HisProtocolError, match="(?i)read.only"):
            await his.daily_bill(DAY, "exam")
    finally:
        await his.aclose()


async def test_missing_mapped_column_is_a_protocol_error(his_db: SeededHis) -> None:
    his = _with_exam_sql(his_db, "SELECT pay_serial, amount FROM v_daily_bill WHERE bill_type = 'MZ'")
    try:
        with pytest.raises(HisProtocolError, match=r"field .kind. \(pay_kind\) is missing"):
            await his.daily_bill(DAY, "exam")
    finally:
        await his.aclose()
