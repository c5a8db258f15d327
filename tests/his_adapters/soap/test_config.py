"""Shipped configurations, configuration errors, the plugin and the simulator's handle."""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from lxml import etree
from pydantic import ValidationError

from gateway.errors import ConfigError, HisNotSupported
from gateway.his import HisCapability, PatientQuery
from gateway.registry import Registrar, Registry
from his_adapters.config_file import load_system_toml
from his_adapters.soap import SoapHisAdapter, SoapHisConfig
from his_adapters.soap import plugin as soap_plugin
from his_adapters.soap.simulator import SoapHisSimHandle, start_simulator

from .conftest import MakeAdapter, merge

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "his"
FUNCTIONS = ("pending", "write_back", "write_back_query", "refund_write_back", "bill")


def _load(name: str) -> dict[str, Any]:
    with (CONFIGS / name).open("rb") as fh:
        return tomllib.load(fh)


@pytest.mark.parametrize("name", ["soap-sim.toml", "reproductive-soap.toml"])
def test_shipped_configs_validate(name: str) -> None:
    system = load_system_toml(CONFIGS / name)
    assert system["adapter"] == "soap" and system["business_types"]
    config = SoapHisConfig.model_validate(system["config"])
    assert all(getattr(config.functions, f) is not None for f in FUNCTIONS)


def test_reproductive_example_differs_in_form() -> None:
    config = SoapHisConfig.model_validate(_load("reproductive-soap.toml")["config"])
    assert config.payload_style == "inline" and config.soap_version == "1.2"
    assert config.header_token is not None and "change-me" not in repr(config)
    assert config.functions.pending is not None and config.functions.pending.mapping.amount_unit == "fen"
    assert config.channel_code("wechatpay") == "01"


def _base() -> dict[str, Any]:
    return _load("soap-sim.toml")["config"]


@pytest.mark.parametrize(("overrides", "message"), [
    ({"endpoint": "ftp://his"}, "http"),
    ({"soap_version": "1.3"}, "soap_version"),
    ({"functions": {"pending": {"records": "OrderList/["}}}, "not an XPath"),
    ({"functions": {"bill": {"mapping": {"fields": {"amount": "Amt[["}}}}}, "not an XPath"),
    ({"functions": {"write_back": {"refusal_codes": ["0"]}}}, "both ok_codes and refusal_codes"),
    ({"functions": {"pending": {"item_mapping": None}}}, "item_mapping"),
    ({"functions": {"pending": {"ok_codes": []}}}, "ok_codes"),
    ({"channel_codes": {"WX": "wechatpay", "WX2": "wechatpay"}}, "several HIS codes"),
    ({"payload_style": "rpc"}, "payload_style"),
    ({"surprise": 1}, "surprise"),
])
def test_bad_configs_fail_naming_the_problem(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SoapHisConfig.model_validate(merge(_base(), overrides))


async def test_template_rendering_to_broken_xml_is_a_config_error(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter(functions={"pending": {"template": "<Request><CardNo>${card_no}</Request>"}})
    with pytest.raises(ConfigError, match="bad XML"):
        await adapter.pending_charges(PatientQuery(card_no="1"))
    unknown = make_adapter(functions={"pending": {"template": "<Request>${no_such_value}</Request>"}})
    with pytest.raises(ConfigError, match="no_such_value"):
        await unknown.pending_charges(PatientQuery(card_no="1"))


async def test_unconfigured_function_is_not_supported(session: aiohttp.ClientSession) -> None:
    raw = _base()
    raw["functions"] = {"pending": raw["functions"]["pending"]}
    adapter = SoapHisAdapter(SoapHisConfig.model_validate(raw), session)
    assert adapter.supports(HisCapability.PENDING) and not adapter.supports(HisCapability.BILLS)
    assert SoapHisAdapter.supports(HisCapability.BILLS)  # the class can, this system cannot
    with pytest.raises(HisNotSupported):
        await adapter.query_write_back("P1")


def test_plugin_registers_adapter_and_simulator() -> None:
    registry = Registry()
    register = Registrar(registry, "soap")
    soap_plugin.yinyi_register_his_adapters(register=register)
    soap_plugin.yinyi_register_simulators(register=register)
    assert registry.his_adapters["soap"] is SoapHisAdapter
    assert registry.his_simulators["his-soap"] is start_simulator


async def test_handle_describes_the_running_system(sim: SoapHisSimHandle, session: aiohttp.ClientSession) -> None:
    (system,) = sim.system_configs()
    assert system["id"] == "his-soap-sim" and system["adapter"] == "soap"
    assert system["config"]["endpoint"] == sim.endpoint and sim.endpoint.startswith(sim.base_url)
    SoapHisConfig.model_validate(system["config"])
    info = sim.info
    assert info.channel == "his-soap" and info.base_url == sim.base_url
    assert info.merchants[0]["wsdl"] == sim.wsdl_url
    async with session.get(sim.wsdl_url) as resp:
        assert resp.status == 200 and resp.content_type == "text/xml"
        wsdl = etree.fromstring(await resp.read())
    assert wsdl.find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address").get("location") == sim.endpoint
    async with session.get(sim.endpoint) as resp:
        assert resp.status == 405
    async with session.get(f"{sim.control_url}/patients") as resp:
        assert len(await resp.json()) == len(sim.hospital.patients)
