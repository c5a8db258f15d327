"""Bank adapters are pluggable: the channel finds the one a merchant names, by id."""
from __future__ import annotations

import datetime as dt
import importlib.metadata
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from channels.ecny import DIRECTORY, AcquirerDirectory, EcnyChannel, EcnyConfig
from gateway import hookimpl
from gateway.bank import BankAdapter, EcnyAcquirer, check_ecny_acquirer, is_ecny_acquirer
from gateway.channel import (
    Bill,
    Capability,
    Method,
    NotifyAnswer,
    NotifyEvent,
    PayRequest,
    PayResult,
    RefundRequest,
    RefundResult,
    RefundStatus,
    ReverseResult,
    TradeStatus,
)
from gateway.errors import ConfigError, NotSupported, PluginError
from gateway.plugins import BUNDLED, build_plugin_manager, build_registry
from plugins.banks.refbank import RefBankAcquirer


# --- a second bank, defined here: a tiny HTTP API and its adapter ----------------------------
class TinyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    base_url: str
    api_key: SecretStr


class TinyBank(EcnyAcquirer):
    """A minimal bank: ``POST /pay`` and ``POST /query`` with an API key, no QR codes."""

    id = "tinybank"
    name_zh = "测试小银行"
    name_en = "Tiny test bank"
    config_model = TinyConfig

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        cfg: TinyConfig = self.config  # type: ignore[assignment]
        async with self.session.post(cfg.base_url + path, json=body,
                                     headers={"X-Api-Key": cfg.api_key.get_secret_value()}) as resp:
            return await resp.json()

    async def pay_code(self, req: PayRequest) -> PayResult:
        data = await self._post("/pay", {"no": req.out_trade_no, "fen": req.amount, "code": req.auth_code})
        return PayResult(status=TradeStatus.SUCCEEDED, channel_trade_no=data["serial"], paid_amount=data["fen"])

    async def query(self, out_trade_no: str) -> PayResult:
        data = await self._post("/query", {"no": out_trade_no})
        if not data:
            return PayResult(status=TradeStatus.NOT_FOUND)
        return PayResult(status=TradeStatus.SUCCEEDED, channel_trade_no=data["serial"], paid_amount=data["fen"])

    async def reverse(self, out_trade_no: str) -> ReverseResult:
        return ReverseResult(done=True)

    async def refund(self, req: RefundRequest) -> RefundResult:
        return RefundResult(status=RefundStatus.SUCCEEDED, channel_refund_no="T-" + req.out_refund_no)

    async def query_refund(self, out_refund_no: str, out_trade_no: str) -> RefundResult:
        return RefundResult(status=RefundStatus.SUCCEEDED, channel_refund_no="T-" + out_refund_no)

    async def parse_notify(self, headers: Mapping[str, str], body: bytes) -> tuple[NotifyEvent, NotifyAnswer]:
        raise NotSupported("notify", "ecny")

    async def download_bill(self, bill_date: dt.date) -> Bill:
        return Bill(bill_date=bill_date, lines=[], total_count=0, total_paid=0, total_refunded=0)


class TinyBankPlugin:
    """A bank plugin as a distribution would ship it."""

    @hookimpl
    def yinyi_register_bank_adapters(self, register: Any) -> None:
        register.add_bank_adapter(TinyBank)


@pytest.fixture
async def tiny_api() -> AsyncIterator[str]:
    orders: dict[str, dict[str, Any]] = {}

    async def pay(request: web.Request) -> web.Response:
        assert request.headers["X-Api-Key"] == "k-123"
        body = await request.json()
        orders[body["no"]] = {"serial": "TB" + body["no"], "fen": body["fen"]}
        return web.json_response(orders[body["no"]])

    async def query(request: web.Request) -> web.Response:
        return web.json_response(orders.get((await request.json())["no"], {}))

    app = web.Application()
    app.router.add_post("/pay", pay)
    app.router.add_post("/query", query)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def tiny_config(base_url: str) -> dict[str, Any]:
    return {"bank": "tinybank", "bank_config": {"base_url": base_url, "api_key": "k-123"}}


CODE = PayRequest(out_trade_no="T1", amount=250, subject="挂号费", method=Method.CODE,
                  auth_code="0123456789012345678")


# --- tests -------------------------------------------------------------------------------------
async def test_a_second_bank_is_plugged_in_by_id(tiny_api: str) -> None:
    with DIRECTORY.registered(TinyBank):
        assert DIRECTORY.origin("tinybank") == "test"
        config = EcnyConfig.model_validate(tiny_config(tiny_api))
        async with aiohttp.ClientSession() as session:
            channel = EcnyChannel(config, session)
            assert isinstance(channel.bank, TinyBank) and channel.bank_id == "tinybank"
            paid = await channel.pay(CODE)
            assert (paid.status, paid.channel_trade_no, paid.paid_amount) == (TradeStatus.SUCCEEDED, "TBT1", 250)
            assert (await channel.query("T1")).status is TradeStatus.SUCCEEDED
            assert (await channel.query("T2")).status is TradeStatus.NOT_FOUND
            refund = await channel.refund(RefundRequest(out_trade_no="T1", out_refund_no="R1", amount=1, total=250))
            assert refund.channel_refund_no == "T-R1"
            # this bank has no QR codes: the channel says so for this merchant
            assert Capability.QR not in channel.available_capabilities
            with pytest.raises(NotSupported):
                await channel.pay(CODE.model_copy(update={"method": Method.QR}))
            with pytest.raises(NotSupported):
                await channel.close("T1")
            # the reference bank is still there, side by side
            assert DIRECTORY.resolve("refbank") is RefBankAcquirer
    with pytest.raises(ValidationError, match="tinybank"):
        EcnyConfig.model_validate(tiny_config(tiny_api))  # gone again


async def test_a_bank_plugin_through_the_registration_hook(tiny_api: str) -> None:
    directory = AcquirerDirectory(discover=False)
    assert directory.add_plugin("tinybank-plugin", TinyBankPlugin()) == ["tinybank"]
    assert directory.origin("tinybank") == "tinybank-plugin" and list(directory.available()) == ["tinybank"]
    async with aiohttp.ClientSession() as session:
        channel = EcnyChannel(tiny_config(tiny_api), session, acquirers=directory)  # a plain mapping is fine
        assert (await channel.pay(CODE)).status is TradeStatus.SUCCEEDED
    # the process-wide directory was not touched
    assert "tinybank" not in DIRECTORY.available()


def _not_loaded_yet(*plugins: tuple[str, Any]) -> list[tuple[str, Any]]:
    """Plugins to add at run time: those neither bundled nor installed as entry points."""
    loaded = {m for _n, m in BUNDLED} | {ep.value for ep in importlib.metadata.entry_points(group="yinyi")}
    return [(n, p) for n, p in plugins if getattr(p, "__name__", None) not in loaded]


def test_the_core_registry_keys_bank_adapters_by_id() -> None:
    import channels.ecny.plugin as ecny_plugin
    import plugins.banks.refbank.plugin as refbank_plugin

    pm, infos = build_plugin_manager(extra_plugins=[
        ("tinybank-plugin", TinyBankPlugin()),
        *_not_loaded_yet(("ecny", ecny_plugin), ("refbank", refbank_plugin)),
    ])
    registry = build_registry(pm)
    assert registry.bank_adapters["tinybank"] is TinyBank
    assert registry.bank_adapters["refbank"] is RefBankAcquirer
    assert registry.channels["ecny"] is EcnyChannel
    assert "ecny" in registry.simulators
    assert registry.origin[("bank_adapter", "tinybank")] == "tinybank-plugin"
    hooks = {i.name: i.hooks for i in infos}
    assert "yinyi_register_bank_adapters" in hooks["tinybank-plugin"]


def test_discovery_finds_the_reference_bank() -> None:
    directory = AcquirerDirectory()
    assert directory.resolve("refbank") is RefBankAcquirer
    assert directory.origin("refbank")  # the name of the plugin that registered it
    with pytest.raises(ConfigError, match="known: refbank"):
        directory.resolve("nosuchbank")


def test_disabled_bank_plugin_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YINYI_DISABLED_PLUGINS", '["refbank"]')
    directory = AcquirerDirectory()
    assert "refbank" not in directory.available()
    with pytest.raises(ValidationError, match="no e-CNY bank adapter 'refbank'"):
        EcnyConfig.model_validate({"bank": "refbank", "bank_config": {}}, context={"acquirers": directory})


def test_bank_config_is_checked_against_the_bank_model(sim) -> None:  # type: ignore[no-untyped-def]
    good = sim.merchant_configs()[0]
    EcnyConfig.model_validate(good)
    with pytest.raises(ValidationError, match="bank_config does not fit bank adapter 'refbank'.*merchant_id"):
        EcnyConfig.model_validate({**good, "bank_config": {**good["bank_config"], "merchant_id": "12"}})
    with pytest.raises(ValidationError, match="private_key"):
        EcnyConfig.model_validate({**good, "bank_config": {**good["bank_config"], "private_key": "not a key"}})
    with pytest.raises(ValidationError, match="extra"):
        EcnyConfig.model_validate({**good, "merchant_id": "x"})
    with pytest.raises(ValidationError, match="bank"):
        EcnyConfig.model_validate({"bank": "Ref Bank!", "bank_config": {}})


async def test_secrets_stay_out_of_reprs(sim, session) -> None:  # type: ignore[no-untyped-def]
    cfg = sim.merchant_configs()[0]
    secret_line = cfg["bank_config"]["private_key"].splitlines()[1]
    config = EcnyConfig.model_validate(cfg)
    assert secret_line not in repr(config) and secret_line not in str(config)
    assert "PRIVATE KEY" not in str(config.model_dump())
    assert config.model_dump(mode="json")["bank_config"]["private_key"] == "**********"
    with pytest.raises(ValidationError) as info:
        EcnyConfig.model_validate({**cfg, "bank_config": {**cfg["bank_config"], "merchant_id": "12"}})
    assert secret_line not in str(info.value)  # errors never echo the input
    channel = EcnyChannel(config, session)
    assert secret_line not in repr(channel.bank.config)


async def test_a_bank_class_added_at_run_time_wins(sim, session) -> None:  # type: ignore[no-untyped-def]
    class PatchedRefBank(RefBankAcquirer):
        name_en = "Reference bank, patched"

    with DIRECTORY.registered(PatchedRefBank):
        channel = EcnyChannel(sim.merchant_configs()[0], session)
        assert type(channel.bank) is PatchedRefBank
    assert type(EcnyChannel(sim.merchant_configs()[0], session).bank) is RefBankAcquirer


def test_bad_bank_classes_are_refused() -> None:
    class Incomplete(EcnyAcquirer):
        id, name_zh, name_en, config_model = "half", "半", "Half", TinyConfig

    class NoId(TinyBank):
        id = ""

    class OtherTiny(TinyBank):
        pass

    class PosBridge(BankAdapter):  # another kind of bank adapter
        id, name_zh, name_en, config_model, kind = "pos", "收银机", "POS", TinyConfig, "pos_bridge"

    assert is_ecny_acquirer(TinyBank) and not is_ecny_acquirer(Incomplete) and not is_ecny_acquirer(PosBridge)
    with pytest.raises(TypeError, match="does not implement"):
        check_ecny_acquirer(Incomplete)
    directory = AcquirerDirectory(discover=False)
    for cls in (Incomplete, NoId, PosBridge, object):
        with pytest.raises(PluginError):
            directory.add(cls)
    directory.add(TinyBank)
    directory.add(TinyBank)  # the same class twice is fine
    with pytest.raises(PluginError, match="duplicate"):
        directory.add(OtherTiny)

    class Mixed:
        @hookimpl
        def yinyi_register_bank_adapters(self, register: Any) -> None:
            register.add_bank_adapter(PosBridge)  # not e-CNY: ignored here
            register.add_bank_adapter(TinyBank)

    assert AcquirerDirectory(discover=False).add_plugin("mixed", Mixed()) == ["tinybank"]

    class Broken:
        @hookimpl
        def yinyi_register_bank_adapters(self, register: Any) -> None:
            raise RuntimeError("boom")

    with pytest.raises(PluginError, match="broken"):
        AcquirerDirectory(discover=False).add_plugin("broken", Broken())


def test_bank_adapter_accepts_a_plain_mapping(sim) -> None:  # type: ignore[no-untyped-def]
    bank = RefBankAcquirer(sim.bank_configs()[0], session=None)  # type: ignore[arg-type]
    assert bank.config.merchant_id == sim.merchants[0].merchant_id and bank.qr_available
    assert RefBankAcquirer.describe() == {"id": "refbank", "name_zh": "参考运营银行",
                                          "name_en": "Reference operating bank", "kind": "ecny_acquirer"}
