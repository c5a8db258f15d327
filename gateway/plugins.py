"""The plugin manager: bundled adapters and installed plugins through one path.

Built per application (never at import time). Bundled packages are registered as
ordinary plugins; installed distributions are loaded from the ``yinyi`` entry-point
group; ``disabled_plugins`` (or ``YINYI_DISABLED_PLUGINS``) blocks any of them by name.
"""
from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError
from .registry import Registrar, Registry

log = logging.getLogger("yinyi.plugins")

# Bundled plugins: (name, module). Each is also declared as an entry point in
# pyproject.toml; listing them here keeps a source checkout working uninstalled.
BUNDLED: tuple[tuple[str, str], ...] = (
    ("wechatpay", "channels.wechatpay.plugin"),
    ("unionpay", "channels.unionpay.plugin"),
    ("alipay", "channels.alipay.plugin"),
    ("ecny", "channels.ecny.plugin"),
    ("refbank", "plugins.banks.refbank.plugin"),
    ("webhook", "plugins.notifiers.webhook.plugin"),
    ("his_rest", "his_adapters.rest.plugin"),
    ("his_soap", "his_adapters.soap.plugin"),
    ("his_dbview", "his_adapters.dbview.plugin"),
    ("nhsa", "insurance.nhsa.plugin"),
)

REGISTRATION_HOOKS = (
    ("yinyi_register_channels", "channel"),
    ("yinyi_register_simulators", "simulator"),
    ("yinyi_register_his_adapters", "his_adapter"),
    ("yinyi_register_insurance_adapters", "insurance_adapter"),
    ("yinyi_register_bank_adapters", "bank_adapter"),
    ("yinyi_register_notifiers", "notifier"),
)


@dataclass
class PluginInfo:
    name: str
    module: str
    source: str  # "bundled" or the distribution name
    version: str
    hooks: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "module": self.module, "source": self.source, "version": self.version,
                "hooks": self.hooks}


def _version_of(dist_name: str | None) -> str:
    if not dist_name:
        from . import __version__

        return __version__
    try:
        return metadata.version(dist_name)
    except metadata.PackageNotFoundError:
        return "unknown"


def build_plugin_manager(disabled: list[str] | None = None, trace: bool = False,
                         extra_plugins: list[tuple[str, Any]] | None = None) -> tuple[pluggy.PluginManager, list[PluginInfo]]:
    pm = pluggy.PluginManager("yinyi")
    pm.add_hookspecs(hookspecs)
    blocked = set(disabled or [])
    for name in blocked:
        pm.set_blocked(name)
    infos: list[PluginInfo] = []
    seen_modules: set[str] = set()

    def _register(name: str, module: Any, source: str, version: str) -> None:
        if pm.is_blocked(name) or name in blocked:
            log.info("plugin %s is disabled by configuration", name)
            return
        try:
            pm.register(module, name=name)
        except (ValueError, pluggy.PluginValidationError) as exc:
            raise PluginError(f"plugin {name!r} could not be registered: {exc}", plugin=name) from exc
        seen_modules.add(getattr(module, "__name__", name))
        infos.append(PluginInfo(name=name, module=getattr(module, "__name__", str(module)), source=source,
                                version=version))

    for name, modname in BUNDLED:
        if name in blocked:
            continue
        try:
            module = importlib.import_module(modname)
        except Exception as exc:
            raise PluginError(f"bundled plugin {name!r} ({modname}) failed to import: {exc}", plugin=name) from exc
        _register(name, module, "bundled", _version_of(None))

    for ep in metadata.entry_points(group="yinyi"):
        if ep.name in blocked or ep.value in seen_modules:
            continue
        try:
            module = ep.load()
        except Exception as exc:
            raise PluginError(f"plugin {ep.name!r} from entry point {ep.value!r} failed to load: {exc}",
                              plugin=ep.name) from exc
        dist = ep.dist.name if ep.dist is not None else None
        _register(ep.name, module, dist or "entry point", _version_of(dist))

    for name, module in extra_plugins or []:
        if pm.has_plugin(name) and pm.get_plugin(name) is module:
            continue  # already loaded from its entry point (an installed package under test)
        _register(name, module, "runtime", "n/a")

    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or repr(exc.plugin)
        raise PluginError(f"plugin {name!r} implements an unknown hook: {exc}", plugin=name) from exc

    for info in infos:
        plugin = pm.get_plugin(info.name)
        info.hooks = sorted(h.name for h in (pm.get_hookcallers(plugin) or []))
    if trace:
        pm.trace.root.setwriter(lambda msg: log.debug("hook: %s", msg.rstrip()))
        pm.enable_tracing()
    return pm, infos


def build_registry(pm: pluggy.PluginManager, disabled_channels: list[str] | None = None) -> Registry:
    """Call each registration hook once per plugin (through pluggy, so tracing and
    wrappers apply), with a registrar naming that plugin: duplicates and failures
    are reported by plugin name."""
    registry = Registry(disabled_channels=set(disabled_channels or []))
    plugins = pm.list_name_plugin()
    for hook_name, _kind in REGISTRATION_HOOKS:
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            others = [p for _n, p in plugins if p is not impl.plugin]
            caller = pm.subset_hook_caller(hook_name, remove_plugins=others)
            try:
                caller(register=Registrar(registry, impl.plugin_name))
            except PluginError:
                raise
            except Exception as exc:
                raise PluginError(f"plugin {impl.plugin_name!r} failed in {hook_name}: {exc}",
                                  plugin=impl.plugin_name) from exc
    return registry
