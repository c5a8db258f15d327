"""The plugin loads through yinyi's plugin manager, as the gateway loads it."""
from importlib import metadata

import hello_bank.plugin
from gateway.plugins import build_plugin_manager, build_registry
from hello_bank.adapter import HelloBankChannel
from hello_bank.simulator import start_simulator


def _load():
    # Once the distribution is installed, its entry point already loads the plugin;
    # before that (a plain checkout), add it at run time.
    installed = any(ep.name == "hello_bank" for ep in metadata.entry_points(group="yinyi"))
    pm, infos = build_plugin_manager(extra_plugins=[] if installed else [("hello_bank", hello_bank.plugin)])
    return build_registry(pm), {info.name: info for info in infos}


def test_the_channel_and_its_simulator_are_registered_by_hello_bank():
    registry, infos = _load()
    assert registry.channel("hello_bank") is HelloBankChannel
    assert registry.origin[("channel", "hello_bank")] == "hello_bank"
    assert registry.simulators["hello_bank"] is start_simulator
    assert registry.origin[("simulator", "hello_bank")] == "hello_bank"
    assert infos["hello_bank"].hooks == ["yinyi_register_channels", "yinyi_register_simulators"]


def test_payment_codes_are_told_apart_from_other_channels():
    registry, _ = _load()
    assert registry.detect_channel("88" + "0" * 16) == "hello_bank"
    assert not HelloBankChannel.matches_auth_code("88" + "0" * 15)
    assert not HelloBankChannel.matches_auth_code("13" + "0" * 16)
