"""The configuration model, the shipped TOML files and the plugin registration."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.errors import ConfigError
from gateway.registry import Registrar, Registry
from his_adapters.config_file import load_system_toml
from his_adapters.rest import RestHisAdapter, RestHisConfig
from his_adapters.rest import plugin as rest_plugin
from his_adapters.rest.simulator import CONFIG_FILE, RestHisSimHandle

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "his"


@pytest.mark.parametrize("name", ["rest-sim", "exam-rest", "nutrition-rest"])
def test_shipped_files_validate(name: str) -> None:
    system = load_system_toml(CONFIGS / f"{name}.toml")
    assert set(system) == {"id", "name", "adapter", "business_types", "config"}
    assert system["adapter"] == RestHisAdapter.id and system["business_types"]
    config = RestHisConfig.model_validate(system["config"])
    assert "secret" not in system["config"].get("auth", {})  # no secret is shipped in a file
    assert config.write_back is not None and config.bill is not None


def test_the_simulator_runs_the_shipped_file(sim: RestHisSimHandle) -> None:
    assert CONFIG_FILE == CONFIGS / "rest-sim.toml"
    shipped = load_system_toml(CONFIG_FILE)
    [running] = sim.system_configs()
    assert running["config"]["base_url"] == sim.base_url
    assert running["config"]["auth"]["secret"] == sim.secret
    for key in ("pending", "write_back", "write_back_query", "refund_write_back", "bill", "result"):
        assert running["config"][key] == shipped["config"][key]
    assert sim.info.channel == "his-rest" and sim.info.control_url == f"{sim.base_url}/_sim"
    assert sim.info.merchants == []


def _sim_config() -> dict[str, Any]:
    return copy.deepcopy(load_system_toml(CONFIGS / "rest-sim.toml")["config"])


@pytest.mark.parametrize(("change", "complaint"), [
    (lambda c: c["write_back"]["request"].update(x="${payment_idd}"), "payment_idd"),
    (lambda c: c["pending"]["mapping"]["fields"].update(charge_no="feeNo"), "charge_no"),
    (lambda c: c["pending"]["mapping"]["fields"].pop("amount"), "must map amount"),
    (lambda c: c["bill"]["mapping"]["fields"].pop("occurred_at"), "occurred_at"),
    (lambda c: c["result"].update(refuse_codes=["0"]), "both"),
    (lambda c: c["auth"].pop("secret_env"), "secret"),
    (lambda c: c["auth"].update(scheme="sha1"), "scheme"),
    (lambda c: c.update(base_url="ftp://his"), "http"),
    (lambda c: c["bill"].update(path="bill"), "start with /"),
    (lambda c: c["bill"].update(pagesize=10), "pagesize"),
    (lambda c: c["pending"].pop("item_mapping"), "go together"),
    (lambda c: c["pending"].update(query_types={"phone": "5"}), "query_types"),
    (lambda c: c["write_back"].update(method="GET", request={"a": {"b": "c"}}), "flat"),
    (lambda c: c["pending"]["mapping"].update(utc_offset="8"), "utc_offset"),
    (lambda c: [c.pop(k) for k in ("pending", "write_back", "write_back_query", "refund_write_back", "bill",
                                   "insurance_write_back", "insurance_reversal_write_back")],
     "at least one"),
    (lambda c: c["insurance_write_back"]["request"].update(x="${payment_id}"), "payment_id"),
])
def test_bad_configurations_name_the_problem(change: Any, complaint: str) -> None:
    config = _sim_config()
    change(config)
    with pytest.raises(ValidationError, match=complaint):
        RestHisConfig.model_validate(config)


def test_secret_never_shows(sim: RestHisSimHandle) -> None:
    config = RestHisConfig.model_validate(sim.system_configs()[0]["config"])
    assert sim.secret not in repr(config) and sim.secret not in str(config.model_dump())


@pytest.mark.parametrize(("text", "complaint"), [
    ("[config]\nbase_url='x'\n", "missing \\[system\\]"),
    ("[system]\nid='a'\nname='b'\nadapter='rest'\n", "missing \\[config\\]"),
    ("[system]\nid='a'\nname='b'\n[config]\n", "adapter"),
    ("[system]\nid='a'\nname='b'\nadapter='rest'\nbusiness_types='x'\n[config]\n", "business_types"),
    ("[system]\nid='a'\nname='b'\nadapter='rest'\ncolour='x'\n[config]\n", "colour"),
    ("[system]\nid='a'\nname='b'\nadapter='rest'\n[config]\n[extras]\n", "extras"),
    ("[system\n", "not valid TOML"),
])
def test_load_system_toml_errors(tmp_path: Path, text: str, complaint: str) -> None:
    path = tmp_path / "his.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=complaint):
        load_system_toml(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_system_toml(tmp_path / "absent.toml")


async def test_plugin_registers_the_adapter_and_the_simulator() -> None:
    registry = Registry()
    registrar = Registrar(registry, "rest-his")
    rest_plugin.yinyi_register_his_adapters(register=registrar)
    rest_plugin.yinyi_register_simulators(register=registrar)
    assert registry.his_adapters["rest"] is RestHisAdapter
    handle = await registry.his_simulators["his-rest"]("127.0.0.1", 0)
    try:
        assert handle.info.channel == "his-rest"
        [system] = handle.system_configs()
        assert system["adapter"] == "rest" and RestHisConfig.model_validate(system["config"])
    finally:
        await handle.stop()
