"""The adapter registry: explicit dict lookups, filled by the registration hooks."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .channel import ChannelAdapter
from .errors import CapabilityNotSupported, PluginError, UnknownChannel, UnrecognisedAuthCode
from .channel import Capability

KINDS = ("channel", "his_adapter", "insurance_adapter", "bank_adapter", "notifier", "simulator",
         "his_simulator", "insurance_simulator")


@dataclass
class Registry:
    channels: dict[str, type[ChannelAdapter]] = field(default_factory=dict)
    his_adapters: dict[str, type] = field(default_factory=dict)
    insurance_adapters: dict[str, type] = field(default_factory=dict)
    bank_adapters: dict[str, type] = field(default_factory=dict)
    notifiers: dict[str, type] = field(default_factory=dict)
    simulators: dict[str, Callable[..., Awaitable[Any]]] = field(default_factory=dict)
    his_simulators: dict[str, Callable[..., Awaitable[Any]]] = field(default_factory=dict)
    insurance_simulators: dict[str, Callable[..., Awaitable[Any]]] = field(default_factory=dict)
    # which plugin registered each (kind, id), for messages and `yinyi plugins`
    origin: dict[tuple[str, str], str] = field(default_factory=dict)
    disabled_channels: set[str] = field(default_factory=set)

    def channel(self, channel_id: str) -> type[ChannelAdapter]:
        cls = self.channels.get(channel_id)
        if cls is None or channel_id in self.disabled_channels:
            raise UnknownChannel(f"channel {channel_id!r} is not registered or is disabled",
                                 channel=channel_id, available=sorted(self.enabled_channels()))
        return cls

    def enabled_channels(self) -> list[str]:
        return [c for c in self.channels if c not in self.disabled_channels]

    def detect_channel(self, auth_code: str, also_disabled: set[str] | None = None) -> str:
        """Tell the channel from a payment code's digits (付款码识别), among enabled channels."""
        off = also_disabled or set()
        hits = [cid for cid in self.enabled_channels() if cid not in off
                and self.channels[cid].matches_auth_code(auth_code)]
        if len(hits) == 1:
            return hits[0]
        accepted = {cid: self.channels[cid].auth_code_hint for cid in self.enabled_channels()
                    if self.channels[cid].auth_code_pattern is not None and cid not in off}
        raise UnrecognisedAuthCode(
            "the payment code matches no enabled channel" if not hits
            else f"the payment code matches several channels: {', '.join(hits)}",
            accepted_forms=accepted,
        )

    def require(self, channel_id: str, cap: Capability) -> type[ChannelAdapter]:
        cls = self.channel(channel_id)
        if not cls.supports(cap):
            raise CapabilityNotSupported(f"{channel_id} does not support {cap.value}",
                                         channel=channel_id, capability=cap.value)
        return cls


class Registrar:
    """Handed to registration hooks; records who registered what."""

    def __init__(self, registry: Registry, plugin_name: str) -> None:
        self._registry = registry
        self._plugin = plugin_name

    def _add(self, kind: str, table: dict[str, Any], key: str, value: Any) -> None:
        if not key or not isinstance(key, str):
            raise PluginError(f"plugin {self._plugin!r} registered a {kind} without a string id")
        if key in table:
            other = self._registry.origin.get((kind, key), "?")
            raise PluginError(
                f"duplicate {kind} id {key!r}: registered by plugin {other!r} and by {self._plugin!r}",
                plugin=self._plugin,
            )
        table[key] = value
        self._registry.origin[(kind, key)] = self._plugin

    def add_channel(self, cls: type[ChannelAdapter]) -> None:
        if not (isinstance(cls, type) and issubclass(cls, ChannelAdapter)):
            raise PluginError(f"plugin {self._plugin!r}: add_channel expects a ChannelAdapter subclass")
        for attr in ("id", "name_zh", "name_en", "capabilities", "config_model"):
            if not hasattr(cls, attr):
                raise PluginError(f"plugin {self._plugin!r}: channel {cls.__name__} lacks {attr!r}")
        self._add("channel", self._registry.channels, cls.id, cls)

    def add_his_adapter(self, cls: type) -> None:
        from .his import HisAdapter

        if not (isinstance(cls, type) and issubclass(cls, HisAdapter)):
            raise PluginError(f"plugin {self._plugin!r}: add_his_adapter expects a HisAdapter subclass")
        for attr in ("id", "name_zh", "name_en", "capabilities", "config_model"):
            if not hasattr(cls, attr):
                raise PluginError(f"plugin {self._plugin!r}: HIS adapter {cls.__name__} lacks {attr!r}")
        self._add("his_adapter", self._registry.his_adapters, cls.id, cls)

    def add_insurance_adapter(self, cls: type) -> None:
        self._add("insurance_adapter", self._registry.insurance_adapters, getattr(cls, "id", ""), cls)

    def add_bank_adapter(self, cls: type) -> None:
        self._add("bank_adapter", self._registry.bank_adapters, getattr(cls, "id", ""), cls)

    def add_notifier(self, cls: type) -> None:
        self._add("notifier", self._registry.notifiers, getattr(cls, "id", ""), cls)

    def add_simulator(self, channel_id: str, factory: Callable[..., Awaitable[Any]]) -> None:
        self._add("simulator", self._registry.simulators, channel_id, factory)

    def add_his_simulator(self, name: str, factory: Callable[..., Awaitable[Any]]) -> None:
        self._add("his_simulator", self._registry.his_simulators, name, factory)

    def add_insurance_simulator(self, name: str, factory: Callable[..., Awaitable[Any]]) -> None:
        self._add("insurance_simulator", self._registry.insurance_simulators, name, factory)
