"""Configuration checks that need no database, the plugin hook, and the seed generator."""
from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.registry import Registrar, Registry
from his_adapters.config_file import load_system_toml
from his_adapters.dbview import DbViewConfig, DbViewHisAdapter
from his_adapters.dbview import plugin as dbview_plugin
from his_adapters.dbview.seed import schema_statements
from his_adapters.dbview.seed_data import generate, valid_id_no

from .conftest import ROOT


def _shipped(name: str = "dbview-postgresql.toml") -> dict[str, Any]:
    return load_system_toml(ROOT / "configs" / "his" / name)


@pytest.mark.parametrize("name", ["dbview-postgresql.toml", "dbview-mariadb.toml"])
def test_shipped_configurations_validate(name: str) -> None:
    system = _shipped(name)
    assert system["adapter"] == DbViewHisAdapter.id
    cfg = DbViewConfig.model_validate(system["config"])
    assert cfg.bills and set(cfg.bills.types) == {
        "outpatient_registration", "outpatient_settlement", "inpatient_deposit", "inpatient_settlement"}
    assert cfg.write_back and cfg.pending


def test_dsn_is_secret_and_scheme_checked() -> None:
    cfg = copy.deepcopy(_shipped()["config"])
    cfg["dsn"] = "postgresql+asyncpg://reader:s3cret@his-db:5432/his"
    assert "s3cret" not in repr(DbViewConfig.model_validate(cfg))
    for dsn in ("postgresql://u@h/db", "oracle+oracledb://u@h/db", "mssql+pyodbc://u@h/db"):
        cfg["dsn"] = dsn
        with pytest.raises(ValidationError, match="is not supported; use one of postgresql"):
            DbViewConfig.model_validate(cfg)


def test_unknown_bind_parameter_is_refused_with_the_function_named() -> None:
    cfg = copy.deepcopy(_shipped()["config"])
    cfg["bills"]["sql"] = "SELECT * FROM v_daily_bill WHERE pay_time >= :start_day"
    with pytest.raises(ValidationError, match=r"bills.sql: unknown bind parameter\(s\) :start_day"):
        DbViewConfig.model_validate(cfg)
    cfg = copy.deepcopy(_shipped()["config"])
    cfg["write_back"]["statements"] = ["INSERT INTO t VALUES (:paymentid)"]
    with pytest.raises(ValidationError, match=r"write_back.statements\[0\]: unknown bind"):
        DbViewConfig.model_validate(cfg)


def test_casts_and_literals_are_not_binds() -> None:
    cfg = copy.deepcopy(_shipped()["config"])
    cfg["bills"]["sql"] = ("SELECT * FROM v WHERE t >= CAST(:day_start AS timestamp) AND note <> 'a:b' "
                           "AND bill_type = :bill_type")
    DbViewConfig.model_validate(cfg)
    cfg["bills"]["sql"] = "SELECT * FROM v WHERE t >= :day_start::timestamp"
    with pytest.raises(ValidationError, match="write casts as CAST"):
        DbViewConfig.model_validate(cfg)


def test_search_path_is_postgresql_only_and_sections_are_checked() -> None:
    cfg = copy.deepcopy(_shipped("dbview-mariadb.toml")["config"])
    cfg["search_path"] = "his_sim"
    with pytest.raises(ValidationError, match="search_path applies to PostgreSQL only"):
        DbViewConfig.model_validate(cfg)
    cfg = copy.deepcopy(_shipped()["config"])
    cfg["pending"]["items"] = "query"
    cfg["pending"]["items_sql"] = None
    with pytest.raises(ValidationError, match="items_sql"):
        DbViewConfig.model_validate(cfg)
    cfg = copy.deepcopy(_shipped()["config"])
    del cfg["bills"]["mapping"]["fields"]["occurred_at"]
    with pytest.raises(ValidationError, match="occurred_at must be mapped"):
        DbViewConfig.model_validate(cfg)


def test_plugin_registers_the_adapter() -> None:
    registry = Registry()
    dbview_plugin.yinyi_register_his_adapters(Registrar(registry, "dbview"))
    assert registry.his_adapters == {"dbview": DbViewHisAdapter}


def test_seed_is_deterministic_with_valid_identity_numbers() -> None:
    a, b = generate(patients=30, seed=7, day=dt.date(2024, 5, 20)), generate(30, 7, dt.date(2024, 5, 20))
    assert a.tables == b.tables
    assert generate(30, 8, dt.date(2024, 5, 20)).tables != a.tables
    assert all(valid_id_no(p["id_no"]) for p in a.patients())
    assert valid_id_no("11010519491231002X")
    assert {r["channel_code"] for r in a.tables["pay_records"]} == {"WX", "ZFB", "YL", "CASH"}
    assert all(bill["count"] for bill in a.bills.values())


@pytest.mark.parametrize("dialect", ["postgresql", "mysql", "sqlite"])
def test_schema_files_split_into_statements(dialect: str) -> None:
    statements = schema_statements(dialect)
    assert sum(s.startswith("CREATE VIEW") for s in statements) == 5
    assert sum(s.startswith("CREATE TABLE") for s in statements) == 7
