"""Meta-tests that keep the plugin contract honest.

Every hook is documented and in the generated reference; the generated docs on disk
match the code; error codes are stable and bilingual; the plugin manager fails
start-up loudly and by name on every kind of broken plugin.

Tests that build a plugin manager block the bundled ``wechatpay`` plugin so that
they exercise only the small plugins defined here.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import re
import types
from pathlib import Path
from typing import Any

import pluggy
import pytest
from pydantic import BaseModel, SecretStr

from gateway import docgen, hookimpl, hookspecs
from gateway.channel import Capability, ChannelAdapter
from gateway.core import Core, await_me_maybe
from gateway.errors import ALL_ERRORS, PluginError, YinyiError
from gateway.plugins import BUNDLED, PluginInfo, build_plugin_manager, build_registry
from gateway.testing.pytest_plugin import make_test_settings

DOCS = Path(__file__).resolve().parents[2] / "docs"
# Tests build their own plugin sets: block every bundled adapter.
NO_BUNDLED = [name for name, _ in BUNDLED]


# --- small plugins ----------------------------------------------------------------------
class _Config(BaseModel):
    api_key: SecretStr


def make_channel(channel_id: str) -> type[ChannelAdapter]:
    return type(f"Channel_{channel_id}", (ChannelAdapter,), {
        "id": channel_id, "name_zh": "测试渠道", "name_en": "Test channel",
        "capabilities": frozenset({Capability.QR, Capability.REFUND}), "config_model": _Config})


class RegistersChannel:
    def __init__(self, cls: type[ChannelAdapter]) -> None:
        self.cls = cls

    @hookimpl
    def yinyi_register_channels(self, register: Any) -> None:
        register.add_channel(self.cls)


def build(*plugins: tuple[str, Any], disabled: list[str] | None = None) -> tuple[pluggy.PluginManager,
                                                                                list[PluginInfo]]:
    return build_plugin_manager(disabled=NO_BUNDLED + (disabled or []), extra_plugins=list(plugins))


# --- hooks are documented ---------------------------------------------------------------
def spec_names() -> list[str]:
    return [s.__name__ for s in docgen.hook_specs()]


def test_docgen_finds_exactly_the_hooks_pluggy_knows() -> None:
    pm = pluggy.PluginManager("yinyi")
    pm.add_hookspecs(hookspecs)
    known = {name for name in vars(pm.hook) if not name.startswith("_")}
    assert set(spec_names()) == known
    public = {n for n, obj in vars(hookspecs).items() if n.startswith("yinyi_") and callable(obj)}
    assert public == known, "a yinyi_* function in hookspecs lacks the @hookspec marker"


@pytest.mark.parametrize("spec", docgen.hook_specs(), ids=lambda s: s.__name__)
def test_every_hook_has_a_real_docstring(spec: Any) -> None:
    doc = inspect.getdoc(spec) or ""
    summary = doc.split("\n\n", 1)[0]
    assert len(doc) >= 60, f"{spec.__name__}: the docstring is the documentation; say what the hook is for"
    assert summary.rstrip().endswith("."), f"{spec.__name__}: start with a one-sentence summary"
    for name in inspect.signature(spec).parameters:
        assert f"``{name}``" in doc or "register." in doc, f"{spec.__name__}: document the argument {name!r}"


@pytest.mark.parametrize("spec", docgen.hook_specs(), ids=lambda s: s.__name__)
def test_every_hook_is_in_the_generated_reference(spec: Any) -> None:
    page = docgen.render_hook_reference()
    assert f"\n## {spec.__name__}\n" in page
    assert f"](#{spec.__name__})" in page  # listed in the contents
    assert docgen.hook_signature(spec) in page
    first_line = inspect.getdoc(spec).splitlines()[0]  # type: ignore[union-attr]
    assert docgen.docstring_to_markdown(first_line) in page


def test_marker_options_are_rendered() -> None:
    mark = pluggy.HookspecMarker("yinyi")
    module = types.ModuleType("fake_specs", "Fake specs.")

    @mark(firstresult=True)
    def yinyi_pick(*, candidates: list[str]) -> str | None:
        """Pick one of ``candidates``; the first answer wins."""

    @mark(historic=True)
    def yinyi_started(app: object) -> None:
        """Told once the gateway started, even to late plugins."""

    module.yinyi_pick = yinyi_pick  # type: ignore[attr-defined]
    module.yinyi_started = yinyi_started  # type: ignore[attr-defined]
    page = docgen.render_hook_reference(module)
    pick, started = page.split("## yinyi_pick", 1)[1].split("## yinyi_started")
    assert "| firstresult | yes" in pick and "| historic | no |" in pick
    assert "| firstresult | no" in started and "| historic | yes" in started
    assert "yinyi_pick(candidates: list[str]) -> str | None" in pick
    assert "`candidates`" in pick


def test_docstring_examples_become_fenced_code() -> None:
    md = docgen.docstring_to_markdown("""Do it.

        Call ``x()``. Example::

            @hookimpl
            def f(register):
                register.add(X)

        After.
        """)
    assert md == ("Do it.\n\nCall `x()`. Example:\n\n```python\n@hookimpl\ndef f(register):\n"
                  "    register.add(X)\n```\n\nAfter.")


def test_generated_docs_on_disk_are_up_to_date(tmp_path: Path) -> None:
    stale = [p.name for p in docgen.stale_docs(DOCS)]
    assert not stale, f"{stale} differ from the code: run python -m gateway.docgen"
    docgen.write_docs(tmp_path)
    for name in docgen.generated_files():
        assert (tmp_path / name).read_bytes() == (DOCS / name).read_bytes()
    assert docgen.write_docs(tmp_path) == []  # regenerating changes nothing
    assert docgen.main(["--check", "--docs-dir", str(tmp_path)]) == 0


def test_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    docgen.write_docs(tmp_path)
    (tmp_path / docgen.ERRORS_FILE).write_text("edited by hand\n", "utf-8")
    assert docgen.main(["--check", "--docs-dir", str(tmp_path)]) == 1
    assert (tmp_path / docgen.ERRORS_FILE).read_text("utf-8") == "edited by hand\n"  # --check writes nothing


# --- error codes ------------------------------------------------------------------------
def test_every_error_class_declaring_a_code_has_its_own() -> None:
    declared: dict[str, str] = {}
    for cls in ALL_ERRORS:
        if "code" in vars(cls):
            assert cls.code not in declared, f"{cls.__name__} reuses {cls.code} of {declared[cls.code]}"
            declared[cls.code] = cls.__name__
            assert re.fullmatch(r"[A-Z][A-Z_]*[A-Z]", cls.code), cls.code
            # a new code with its parent's messages would tell callers the wrong thing
            assert "message_zh" in vars(cls) and "message_en" in vars(cls), f"{cls.__name__} needs its own messages"


def test_every_error_class_declares_its_own_code() -> None:
    assert [cls.__name__ for cls in ALL_ERRORS if "code" not in vars(cls)] == []


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda c: c.__name__)
def test_every_error_has_a_status_and_both_messages(cls: type[YinyiError]) -> None:
    assert 400 <= cls.status <= 599
    assert re.search(r"[\u4e00-\u9fff]", cls.message_zh), f"{cls.__name__}: message_zh must be Chinese"
    assert cls.message_en.strip() and cls.message_en.isascii() and not re.search(r"[\u4e00-\u9fff]", cls.message_en)
    assert cls.message_en[0].isupper()


def test_every_code_is_in_the_error_table() -> None:
    table = docgen.render_error_codes()
    for cls in ALL_ERRORS:
        assert f"| `{cls.code}` | {cls.status} | {cls.message_zh} | {cls.message_en} |" in table
        assert f"`{cls.__name__}`" in table


# --- plugin manager ---------------------------------------------------------------------
def test_a_runtime_plugin_registers_a_channel_with_its_origin() -> None:
    cls = make_channel("acmepay")
    module = types.ModuleType("acme_plugin")

    @hookimpl
    def yinyi_register_channels(register: Any) -> None:
        register.add_channel(cls)

    module.yinyi_register_channels = yinyi_register_channels  # type: ignore[attr-defined]
    pm, infos = build(("acme", module))
    registry = build_registry(pm)
    assert registry.channel("acmepay") is cls
    assert registry.origin[("channel", "acmepay")] == "acme"
    assert registry.enabled_channels() == ["acmepay"]
    (info,) = [i for i in infos if i.name == "acme"]
    assert (info.module, info.source, info.hooks) == ("acme_plugin", "runtime", ["yinyi_register_channels"])
    assert "wechatpay" not in {i.name for i in infos}


def test_a_blocked_plugin_is_not_registered() -> None:
    plugin = RegistersChannel(make_channel("blockedpay"))
    pm, infos = build(("blocked", plugin))
    assert "blockedpay" in build_registry(pm).channels  # control: the plugin works when allowed

    pm, infos = build(("blocked", RegistersChannel(make_channel("blockedpay"))), disabled=["blocked"])
    assert pm.get_plugin("blocked") is None
    assert "blocked" not in {i.name for i in infos}
    assert "blockedpay" not in build_registry(pm).channels


def test_a_disabled_channel_is_registered_but_not_served() -> None:
    from gateway.errors import UnknownChannel

    pm, _ = build(("p", RegistersChannel(make_channel("offpay"))))
    registry = build_registry(pm, disabled_channels=["offpay"])
    assert "offpay" in registry.channels and registry.enabled_channels() == []
    with pytest.raises(UnknownChannel):
        registry.channel("offpay")


def test_two_plugins_with_the_same_channel_id_fail_naming_both() -> None:
    pm, _ = build(("first", RegistersChannel(make_channel("duppay"))),
                  ("second", RegistersChannel(make_channel("duppay"))))
    with pytest.raises(PluginError) as err:
        build_registry(pm)
    message = str(err.value)
    assert "'duppay'" in message and "'first'" in message and "'second'" in message


def test_a_registration_hook_that_raises_fails_with_the_plugin_name() -> None:
    class Exploding:
        @hookimpl
        def yinyi_register_channels(self, register: Any) -> None:
            raise RuntimeError("no config for acme")

    pm, _ = build(("exploding", Exploding()))
    with pytest.raises(PluginError, match=r"'exploding' failed in yinyi_register_channels: no config for acme") as err:
        build_registry(pm)
    assert err.value.extra["plugin"] == "exploding"
    assert isinstance(err.value.__cause__, RuntimeError)


@pytest.mark.parametrize("bad,why", [
    (object, "expects a ChannelAdapter subclass"),
    (type("NoId", (ChannelAdapter,), {"name_zh": "x", "name_en": "x", "capabilities": frozenset(),
                                      "config_model": _Config}), "lacks 'id'"),
])
def test_add_channel_rejects_what_is_not_a_complete_adapter(bad: Any, why: str) -> None:
    pm, _ = build(("sloppy", RegistersChannel(bad)))
    with pytest.raises(PluginError, match="'sloppy'.*" + re.escape(why)):
        build_registry(pm)


def test_an_implementation_of_an_unknown_hook_fails_start_up() -> None:
    module = types.ModuleType("stray_plugin")

    @hookimpl
    def yinyi_register_chanels(register: Any) -> None:  # misspelt on purpose
        raise AssertionError("never called")

    module.yinyi_register_chanels = yinyi_register_chanels  # type: ignore[attr-defined]
    with pytest.raises(PluginError, match="unknown hook 'yinyi_register_chanels'") as err:
        build(("stray_plugin", module))
    assert "stray_plugin" in str(err.value)


def test_an_unknown_hook_error_names_the_registered_plugin() -> None:
    class Stray:
        @hookimpl
        def yinyi_no_such_hook(self) -> None:
            raise AssertionError("never called")

    with pytest.raises(PluginError) as err:
        build(("stray", Stray()))
    assert "'stray'" in str(err.value) and err.value.extra.get("plugin") == "stray"


def test_an_implementation_with_an_unknown_argument_fails_with_plugin_error() -> None:
    class Typo:
        @hookimpl
        def yinyi_register_channels(self, registrar: Any) -> None:
            raise AssertionError("never called")

    with pytest.raises(PluginError, match="'typo'"):
        build(("typo", Typo()))


def test_two_plugins_with_the_same_name_fail_start_up() -> None:
    with pytest.raises(PluginError, match="'twin' could not be registered"):
        build(("twin", RegistersChannel(make_channel("a"))), ("twin", RegistersChannel(make_channel("b"))))


def test_the_trace_switch_logs_hook_calls(caplog: pytest.LogCaptureFixture) -> None:
    class Observer:
        @hookimpl
        def yinyi_payment_event(self, event: dict[str, Any]) -> None:
            return None

    pm, _ = build_plugin_manager(disabled=NO_BUNDLED, trace=True, extra_plugins=[("observer", Observer())])
    with caplog.at_level(logging.DEBUG, logger="yinyi.plugins"):
        pm.hook.yinyi_payment_event(event={"kind": "payment"})
    assert any("yinyi_payment_event" in r.getMessage() for r in caplog.records)


# --- observers --------------------------------------------------------------------------
async def test_await_me_maybe() -> None:
    async def coro() -> int:
        return 1

    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    future.set_result(2)
    assert await await_me_maybe(coro()) == 1
    assert await await_me_maybe(future) == 2
    assert await await_me_maybe(3) == 3
    assert await await_me_maybe(None) is None


class Recorder:
    def __init__(self) -> None:
        self.sync_seen: list[dict[str, Any]] = []
        self.async_seen: list[dict[str, Any]] = []


def observers(rec: Recorder, *, async_fails: bool = False, sync_fails: bool = False) -> list[tuple[str, Any]]:
    class SyncObserver:
        @hookimpl
        def yinyi_payment_event(self, event: dict[str, Any]) -> None:
            if sync_fails:
                raise RuntimeError("sync observer broke")
            rec.sync_seen.append(event)

    class AsyncObserver:
        @hookimpl
        async def yinyi_payment_event(self, event: dict[str, Any]) -> None:
            await asyncio.sleep(0)  # really suspends: only an awaited coroutine gets past this
            if async_fails:
                raise RuntimeError("async observer broke")
            rec.async_seen.append(event)

    return [("sync_observer", SyncObserver()), ("async_observer", AsyncObserver())]


async def test_an_async_observer_returns_a_coroutine_that_must_be_awaited() -> None:
    rec = Recorder()
    pm, _ = build(*observers(rec))
    results = pm.hook.yinyi_payment_event(event={"kind": "payment"})
    assert rec.async_seen == [] and any(inspect.iscoroutine(r) for r in results)
    for r in results:
        await await_me_maybe(r)
    assert rec.async_seen == [{"kind": "payment"}] and rec.sync_seen == [{"kind": "payment"}]


@pytest.fixture
async def core_with(tmp_path: Path):  # type: ignore[no-untyped-def]
    cores: list[Core] = []

    def make(plugins: list[tuple[str, Any]]) -> Core:
        core = Core(make_test_settings(tmp_path, disabled_plugins=NO_BUNDLED), extra_plugins=plugins)
        cores.append(core)
        return core

    yield make
    for core in cores:
        await core.engine.dispose()


EVENT = {"kind": "payment", "payment_id": "P1", "from_status": "PAYING", "to_status": "SUCCEEDED",
         "source": "notify", "operator": None}


async def test_the_core_awaits_async_observers(core_with: Any) -> None:
    rec = Recorder()
    core = core_with(observers(rec))
    await core._on_event(dict(EVENT))  # noqa: SLF001 - the ledger's event sink
    assert rec.async_seen == [EVENT] and rec.sync_seen == [EVENT]


async def test_a_failing_async_observer_is_logged_not_raised(core_with: Any, caplog: pytest.LogCaptureFixture) -> None:
    rec = Recorder()
    core = core_with(observers(rec, async_fails=True))
    with caplog.at_level(logging.ERROR, logger="yinyi.core"):
        await core._on_event(dict(EVENT))  # noqa: SLF001
    assert rec.sync_seen == [EVENT]
    assert any("observer failed" in r.getMessage() for r in caplog.records)


async def test_a_failing_sync_observer_is_logged_not_raised(core_with: Any) -> None:
    rec = Recorder()
    # pluggy calls the last registered first: register the failing one last so it runs first
    core = core_with(observers(rec, sync_fails=True)[::-1])
    await core._on_event(dict(EVENT))  # noqa: SLF001
    assert rec.async_seen == [EVENT]
