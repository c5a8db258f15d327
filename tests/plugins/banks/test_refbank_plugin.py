"""The reference bank's plugin: it registers its bank adapter, and only that, by id."""
from __future__ import annotations

import importlib.metadata
from typing import Any

import pytest

import plugins.banks.refbank.plugin as refbank_plugin
from gateway import hookimpl
from gateway.bank import EcnyAcquirer, check_ecny_acquirer
from gateway.errors import PluginError
from gateway.plugins import BUNDLED, build_plugin_manager, build_registry
from plugins.banks.refbank import RefBankAcquirer, RefBankConfig


def _extra(name: str, module: Any) -> list[tuple[str, Any]]:
    loaded = {m for _n, m in BUNDLED} | {ep.value for ep in importlib.metadata.entry_points(group="yinyi")}
    return [] if module.__name__ in loaded else [(name, module)]


def test_the_plugin_registers_the_bank_adapter() -> None:
    pm, infos = build_plugin_manager(extra_plugins=_extra("refbank", refbank_plugin))
    registry = build_registry(pm)
    assert registry.bank_adapters["refbank"] is RefBankAcquirer
    name = registry.origin[("bank_adapter", "refbank")]
    assert next(i for i in infos if i.name == name).hooks == ["yinyi_register_bank_adapters"]


def test_two_plugins_with_the_same_bank_id_fail_by_name() -> None:
    class Copycat:
        @hookimpl
        def yinyi_register_bank_adapters(self, register: Any) -> None:
            register.add_bank_adapter(RefBankAcquirer)

    pm, _ = build_plugin_manager(extra_plugins=[*_extra("refbank", refbank_plugin), ("copycat", Copycat())])
    with pytest.raises(PluginError, match="duplicate bank_adapter id 'refbank'.*copycat"):
        build_registry(pm)


def test_class_facts() -> None:
    assert check_ecny_acquirer(RefBankAcquirer) is RefBankAcquirer
    assert issubclass(RefBankAcquirer, EcnyAcquirer) and RefBankAcquirer.config_model is RefBankConfig
    assert RefBankAcquirer.supports_qr and RefBankAcquirer.kind == "ecny_acquirer"
    secrets = [n for n, f in RefBankConfig.model_fields.items() if "SecretStr" in str(f.annotation)]
    assert secrets == ["private_key"]
