"""Business systems through the gateway's admin API and CLI: the database-view adapter on
real PostgreSQL and MariaDB, bill fetch and file import, configuration validation."""
from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from his_adapters.dbview.seed import drop, seed
from tests.conftest import Gateway
from tests.his_adapters.dbview.conftest import DAY, ROOT, SeededHis, require_server

HIS_BILL_TYPES = ("outpatient_registration", "outpatient_settlement", "inpatient_deposit", "inpatient_settlement")


@pytest.fixture(params=["postgresql", "mariadb"])
def his_server(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param, require_server(request.param)  # probes outside the event loop


@pytest.fixture
async def his_db(his_server: tuple[str, str]) -> AsyncIterator[SeededHis]:
    kind, server = his_server
    name = f"his_gw_{os.getpid()}_{secrets.token_hex(3)}"
    data = await seed(server, schema_or_db=name, day=DAY)
    try:
        if kind == "postgresql":
            yield SeededHis(kind, server, name, data)
        else:
            yield SeededHis(kind, server.rsplit("/", 1)[0] + f"/{name}", None, data)
    finally:
        await drop(server, schema_or_db=name)


async def test_database_view_system_serves_bills_and_pending_charges(gw: Gateway, his_db: SeededHis) -> None:
    status, system = await gw.admin.request("PUT", "/v1/admin/his/systems/his-db", {
        "name": "HIS视图", "adapter": "dbview", "business_types": ["outpatient"], "config": his_db.config()})
    assert status == 200, system
    assert "bills" in system["capabilities"]
    _, listed = await gw.admin.get("/v1/admin/his/systems")
    assert [s["id"] for s in listed["items"]] == ["his-db"]
    assert "dsn" not in str(listed)  # configuration (with credentials) never leaves encrypted storage
    for bill_type in HIS_BILL_TYPES:
        status, bill = await gw.admin.get(f"/v1/admin/his/systems/his-db/bill?date={DAY}&bill_type={bill_type}")
        assert status == 200, bill
        expected = his_db.data.bills[bill_type]
        assert bill["count"] == expected["count"]
        assert {line["his_serial"] for line in bill["lines"]} == expected["serials"]
        normal = [x for x in bill["lines"] if x["status"] == "normal"]
        assert sum(x["amount"] if x["kind"] == "payment" else -x["amount"] for x in normal) == expected["total"]
    patient_id, charges = next((pid, c) for pid, c in his_db.data.pending.items() if c)
    status, pending = await gw.client.get(f"/v1/his/pending-charges?system=his-db&patient_id={patient_id}")
    assert status == 200, pending
    assert {c["charge_id"] for c in pending["items"]} == {c["charge_id"] for c in charges}


async def test_invalid_adapter_configuration_is_refused_naming_the_field(gw: Gateway) -> None:
    status, problem = await gw.admin.request("PUT", "/v1/admin/his/systems/bad", {
        "name": "坏配置", "adapter": "dbview", "business_types": [], "config": {"dsn": "oracle://x"}})
    assert status == 400 and problem["code"] == "VALIDATION_FAILED"
    assert problem["errors"][0]["loc"][0] == "config"
    status, problem = await gw.admin.request("PUT", "/v1/admin/his/systems/bad", {
        "name": "无适配器", "adapter": "nope", "business_types": [], "config": {}})
    assert status >= 400 and problem["code"] == "CONFIG_ERROR"
    _, listed = await gw.admin.get("/v1/admin/his/systems")
    assert listed["items"] == []


async def test_bill_file_import_is_checked_and_summarised(gw: Gateway) -> None:
    sample = ROOT / "configs" / "his" / "samples" / "his-bill-sample.csv"
    from his_adapters.fileimport import parse_bill_file

    import datetime as dt

    parsed = parse_bill_file(sample.read_bytes(), filename=sample.name, day=dt.date.fromisoformat(_sample_day(sample)))
    bills = parsed if isinstance(parsed, list) else [parsed]
    status, out = await gw.admin.request(
        "POST", f"/v1/admin/his/systems/his/bill-import?date={_sample_day(sample)}&filename={sample.name}",
        raw=sample.read_bytes())
    assert status == 200, out
    assert sum(b["count"] for b in out["bills"]) == sum(len(b.lines) for b in bills)
    status, problem = await gw.admin.request("POST", f"/v1/admin/his/systems/his/bill-import?date=2020-01-01"
                                                     f"&filename={sample.name}", raw=sample.read_bytes())
    assert status == 400 and problem["code"] == "VALIDATION_FAILED"


def _sample_day(sample: Path) -> str:
    for line in sample.read_text("utf-8-sig").splitlines()[1:]:
        for cell in line.split(","):
            if len(cell) >= 10 and cell[4] == "-" and cell[7] == "-":
                return cell[:10]
    raise AssertionError("no date in the sample")


def test_cli_loads_the_shipped_examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.cli import cli

    monkeypatch.setenv("YINYI_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("YINYI_DATABASE_URL", raising=False)
    monkeypatch.setenv("YINYI_HIS_REST_SECRET", "from-the-environment")
    monkeypatch.setenv("YINYI_EXAM_SECRET", "exam-secret-from-the-environment")
    files = [str(ROOT / "configs" / "his" / f) for f in ("exam-rest.toml", "nutrition-rest.toml",
                                                         "reproductive-soap.toml", "dbview-mariadb.toml")]
    result = CliRunner().invoke(cli, ["his", "load", *files])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["his", "systems", "--json"])
    assert result.exit_code == 0, result.output
    import json

    systems: list[dict[str, Any]] = json.loads(result.output)
    assert {s["adapter"] for s in systems} == {"rest", "soap", "dbview"}
    assert len(systems) == 4
