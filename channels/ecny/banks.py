"""How the e-CNY channel finds the bank adapter that a merchant's configuration names.

A merchant configuration says ``bank: "<id>"``. The channel adapter is built by the
core with ``(config, session)`` only, so it cannot see the core's registry; it
resolves the id through an :class:`AcquirerDirectory` instead, in this order:

1. classes added at run time: ``DIRECTORY.add(cls)`` or ``DIRECTORY.add_plugin(name,
   plugin)`` (tests, applications that embed the gateway);
2. bank adapters that plugins register through the ``yinyi_register_bank_adapters``
   hook: the same plugins the gateway loads (``gateway.plugins.BUNDLED`` and the
   ``yinyi`` entry-point group), with the same ``disabled_plugins`` setting
   (``YINYI_DISABLED_PLUGINS``). The hook is called once, on the first lookup, and
   the result is cached (``refresh()`` forgets it);
3. the bundled reference bank (``plugins.banks.refbank.plugin``), through the same
   hook, when no plugin above registered it, so a source checkout works without
   installed entry points.

Only classes that are complete ``gateway.bank.EcnyAcquirer`` subclasses count; other
kinds of bank adapter (bank direct connection, POS bridges) share the hook and are
ignored here.
"""
from __future__ import annotations

import contextlib
import importlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

from gateway.bank import EcnyAcquirer, check_ecny_acquirer, is_ecny_acquirer
from gateway.errors import ConfigError, PluginError

log = logging.getLogger("yinyi.ecny")

HOOK = "yinyi_register_bank_adapters"
# (plugin name, module) of bank plugins shipped in this repository
BUNDLED_BANKS: tuple[tuple[str, str], ...] = (("refbank", "plugins.banks.refbank.plugin"),)


class _Collector:
    """The registrar handed to ``yinyi_register_bank_adapters``: keeps the e-CNY acquirers."""

    def __init__(self, plugin: str, found: dict[str, type[EcnyAcquirer]], origin: dict[str, str]) -> None:
        self._plugin = plugin
        self._found = found
        self._origin = origin

    def add_bank_adapter(self, cls: type) -> None:
        if not is_ecny_acquirer(cls):
            return  # another kind of bank adapter, or an incomplete one (the core registry reports those)
        bank_id = cls.id
        other = self._found.get(bank_id)
        if other is not None and other is not cls:
            raise PluginError(f"duplicate e-CNY bank adapter id {bank_id!r}: registered by plugin "
                              f"{self._origin.get(bank_id, '?')!r} and by {self._plugin!r}", plugin=self._plugin)
        self._found[bank_id] = cls
        self._origin[bank_id] = self._plugin

    def __getattr__(self, name: str) -> Any:
        # a plugin may share one registration function between hooks: other adds are ignored
        if name.startswith("add_"):
            return lambda *_a, **_k: None
        raise AttributeError(name)


def _disabled_plugins() -> list[str]:
    try:
        from gateway.config import Settings

        return list(Settings().disabled_plugins)
    except Exception:  # noqa: BLE001 - settings that do not load are the core's error to report
        return []


class AcquirerDirectory:
    """``bank id → EcnyAcquirer subclass``: run-time additions over discovered plugins."""

    def __init__(self, *, bundled: tuple[tuple[str, str], ...] = BUNDLED_BANKS, discover: bool = True) -> None:
        self._bundled = bundled
        self._discover = discover
        self._added: dict[str, type[EcnyAcquirer]] = {}
        self._added_origin: dict[str, str] = {}
        self._found: dict[str, type[EcnyAcquirer]] | None = None
        self._found_origin: dict[str, str] = {}
        self._lock = threading.RLock()

    # --- run-time additions ----------------------------------------------------------------
    def add(self, cls: type, *, origin: str = "runtime") -> type[EcnyAcquirer]:
        """Make ``cls`` resolvable by its ``id`` (it wins over a discovered class of that id)."""
        try:
            acquirer = check_ecny_acquirer(cls)
        except TypeError as exc:
            raise PluginError(f"{origin}: {exc}", plugin=origin) from exc
        with self._lock:
            other = self._added.get(acquirer.id)
            if other is not None and other is not acquirer:
                raise PluginError(f"duplicate e-CNY bank adapter id {acquirer.id!r}: added by "
                                  f"{self._added_origin[acquirer.id]!r} and by {origin!r}", plugin=origin)
            self._added[acquirer.id] = acquirer
            self._added_origin[acquirer.id] = origin
        return acquirer

    def remove(self, bank_id: str) -> None:
        with self._lock:
            self._added.pop(bank_id, None)
            self._added_origin.pop(bank_id, None)

    def add_plugin(self, name: str, plugin: Any) -> list[str]:
        """Call a plugin's ``yinyi_register_bank_adapters`` and add what it registers; return the ids."""
        hook = getattr(plugin, HOOK, None)
        if hook is None:
            return []
        found: dict[str, type[EcnyAcquirer]] = {}
        try:
            hook(register=_Collector(name, found, {}))
        except PluginError:
            raise
        except Exception as exc:
            raise PluginError(f"plugin {name!r} failed in {HOOK}: {exc}", plugin=name) from exc
        for cls in found.values():
            self.add(cls, origin=name)
        return sorted(found)

    @contextlib.contextmanager
    def registered(self, *classes: type) -> Iterator[None]:
        """Add classes for the duration of a ``with`` block (tests)."""
        added = [self.add(cls, origin="test") for cls in classes]
        try:
            yield
        finally:
            for cls in added:
                self.remove(cls.id)

    # --- discovery ---------------------------------------------------------------------------
    def refresh(self) -> None:
        """Forget discovered plugins; the next lookup calls the hook again."""
        with self._lock:
            self._found = None
            self._found_origin = {}

    def _discovered(self) -> dict[str, type[EcnyAcquirer]]:
        with self._lock:
            if self._found is None:
                found: dict[str, type[EcnyAcquirer]] = {}
                origin: dict[str, str] = {}
                if self._discover:
                    self._run_hook(found, origin)
                self._found, self._found_origin = found, origin
            return self._found

    def _run_hook(self, found: dict[str, type[EcnyAcquirer]], origin: dict[str, str]) -> None:
        from gateway.plugins import build_plugin_manager

        disabled = _disabled_plugins()
        pm, _ = build_plugin_manager(disabled=disabled)
        for name, modname in self._bundled:
            if name in disabled or pm.is_blocked(name):
                continue
            try:
                module = importlib.import_module(modname)
            except Exception as exc:
                raise PluginError(f"bundled bank plugin {name!r} ({modname}) failed to import: {exc}",
                                  plugin=name) from exc
            if pm.is_registered(module):
                continue  # already loaded as a bundled plugin or an entry point
            pm.register(module, name=name if pm.get_plugin(name) is None else f"{name}@{modname}")
        plugins = pm.list_name_plugin()
        for impl in getattr(pm.hook, HOOK).get_hookimpls():
            others = [p for _n, p in plugins if p is not impl.plugin]
            caller = pm.subset_hook_caller(HOOK, remove_plugins=others)
            try:
                caller(register=_Collector(impl.plugin_name, found, origin))
            except PluginError:
                raise
            except Exception as exc:
                raise PluginError(f"plugin {impl.plugin_name!r} failed in {HOOK}: {exc}",
                                  plugin=impl.plugin_name) from exc
        log.debug("e-CNY bank adapters found: %s", {k: origin[k] for k in sorted(found)})

    # --- lookups -------------------------------------------------------------------------------
    def available(self) -> dict[str, type[EcnyAcquirer]]:
        """Every resolvable bank adapter, by id."""
        with self._lock:
            return {**self._discovered(), **self._added}

    def origin(self, bank_id: str) -> str | None:
        """The plugin (or ``runtime``/``test``) that provided ``bank_id``."""
        with self._lock:
            if bank_id in self._added:
                return self._added_origin[bank_id]
            self._discovered()
            return self._found_origin.get(bank_id)

    def resolve(self, bank_id: str) -> type[EcnyAcquirer]:
        """The bank adapter class for ``bank_id``; ``ConfigError`` naming the known ids if there is none."""
        with self._lock:
            cls = self._added.get(bank_id) or self._discovered().get(bank_id)
            if cls is None:
                known = sorted(self.available())
                raise ConfigError(f"no e-CNY bank adapter {bank_id!r} is installed (known: "
                                  f"{', '.join(known) or 'none'})", bank=bank_id, available=known)
            return cls


# The process-wide directory the e-CNY channel uses unless given another.
DIRECTORY = AcquirerDirectory()

__all__ = ["BUNDLED_BANKS", "DIRECTORY", "AcquirerDirectory"]
