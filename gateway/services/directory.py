"""Caller apps, campuses and merchants, and the adapter instance for each merchant."""
from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from dataclasses import dataclass
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import aiohttp
from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..channel import ChannelAdapter
from ..config import new_token
from ..db.models import App, Campus, ChannelSetting, Entry, Merchant
from ..errors import (BusinessTypeForbidden, ChannelDisabled, ChannelNotAllowed, ConfigError,
                      EntryMismatch, EntryUnknown, MerchantForbidden, NoMerchant, UnknownApp)
from ..registry import Registry
from ..vault import Vault

_CACHE_TTL = 5.0  # seconds; enabling/disabling takes effect within this, in every process

log = logging.getLogger("yinyi.directory")
K = TypeVar("K")
V = TypeVar("V")


class _Cache(Generic[K, V]):
    """Configuration read through a time-limited cache, without stampedes.

    A missing entry is loaded once however many requests want it at the same moment.
    An entry older than the TTL is still answered while one refresh runs beside the
    requests, so that no request waits for the database because a clock ran out (a
    burst at 200 payments/s would otherwise send every request in flight to reload
    the same rows). Changes made in another process take effect within the TTL plus
    one refresh; this process's own changes clear the cache at once.
    """

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._data: dict[K, tuple[float, V]] = {}
        self._loads: dict[K, asyncio.Future[V]] = {}

    def peek(self, key: K) -> V | None:
        hit = self._data.get(key)
        return hit[1] if hit else None

    async def get(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        hit = self._data.get(key)
        if hit is not None:
            if time.monotonic() - hit[0] >= self.ttl and key not in self._loads:
                self._start(key, load)
            return hit[1]
        pending = self._loads.get(key) or self._start(key, load)
        return await asyncio.shield(pending)

    def _start(self, key: K, load: Callable[[], Awaitable[V]]) -> asyncio.Future[V]:
        fut = asyncio.ensure_future(load())
        self._loads[key] = fut

        def done(f: asyncio.Future[V]) -> None:
            current = self._loads.get(key) is f  # not cleared while it loaded
            if current:
                del self._loads[key]
            if f.cancelled():
                return
            exc = f.exception()
            if exc is None:
                if current:
                    self._data[key] = (time.monotonic(), f.result())
            elif key in self._data:  # a failed refresh keeps the last good value
                log.warning("refreshing cached configuration %r failed: %s", key, exc)

        fut.add_done_callback(done)
        return fut

    def pop(self, key: K) -> None:
        self._data.pop(key, None)
        self._loads.pop(key, None)

    def clear(self) -> None:
        self._data.clear()
        self._loads.clear()


@dataclass(frozen=True)
class AppInfo:
    id: str
    name: str
    secret: str
    business_types: tuple[str, ...]
    merchant_ids: tuple[str, ...]
    scopes: tuple[str, ...]
    enabled: bool

    def allows_business_type(self, bt: str) -> bool:
        return "*" in self.business_types or bt in self.business_types

    def allows_merchant(self, merchant_id: str) -> bool:
        return not self.merchant_ids or merchant_id in self.merchant_ids


class Directory:
    def __init__(self, sm: async_sessionmaker[AsyncSession], vault: Vault, registry: Registry,
                 http: aiohttp.ClientSession, read_sm: async_sessionmaker[AsyncSession] | None = None,
                 notify_base: str = "http://127.0.0.1:8080/v1/notify") -> None:
        self.notify_base = notify_base.rstrip("/")
        self.sm = sm
        self.rsm = read_sm or sm
        self.vault = vault
        self.registry = registry
        self.http = http
        self._apps: _Cache[str, AppInfo | None] = _Cache(_CACHE_TTL)
        self._adapters: _Cache[str, tuple[str, ChannelAdapter]] = _Cache(_CACHE_TTL)
        self._merchants: _Cache[str, list[Merchant]] = _Cache(_CACHE_TTL)
        self._entries: _Cache[str, dict[str, Entry]] = _Cache(_CACHE_TTL)
        self._switches: _Cache[str, dict[str, ChannelSetting]] = _Cache(_CACHE_TTL)

    def invalidate(self) -> None:
        """Forget cached configuration in this process (others follow within the cache TTL)."""
        self._apps.clear()
        self._adapters.clear()
        self._merchants.clear()
        self._entries.clear()
        self._switches.clear()

    # --- channel and method switches ----------------------------------------------------
    async def switches(self) -> dict[str, ChannelSetting]:
        async def load() -> dict[str, ChannelSetting]:
            async with self.rsm() as s:
                return {r.channel: r for r in (await s.execute(select(ChannelSetting))).scalars()}

        return await self._switches.get("", load)

    async def disabled_channels(self) -> set[str]:
        return {c for c, r in (await self.switches()).items() if not r.enabled}

    async def check_switch(self, channel: str, method: str) -> None:
        row = (await self.switches()).get(channel)
        if row is None:
            return
        if not row.enabled:
            raise ChannelDisabled(f"channel {channel} is switched off", channel=channel)
        if method in (row.disabled_methods or []):
            raise ChannelDisabled(f"method {method} of {channel} is switched off", channel=channel, method=method)

    # --- entries (收费入口) ---------------------------------------------------------------
    async def entries_of(self, app_id: str) -> dict[str, Entry]:
        async def load() -> dict[str, Entry]:
            async with self.rsm() as s:
                return {e.code: e for e in (await s.execute(select(Entry).where(Entry.app_id == app_id))).scalars()}

        return await self._entries.get(app_id, load)

    async def resolve_entry(self, app: AppInfo, code: str | None, *, business_type: str, campus: str | None,
                            channel: str, method: str) -> tuple[Entry | None, str | None]:
        """The entry a payment comes through, checked; and the campus it pays into.

        An app with entries configured must name one of them; an app without any may
        send a free-text entry label, and routing then goes by campus and business type.
        """
        entries = await self.entries_of(app.id)
        if not entries:
            return None, campus
        entry = entries.get(code or "")
        if entry is None or not entry.enabled:
            raise EntryUnknown(f"entry {code!r} is not configured (or is disabled) for app {app.id}",
                               entries=sorted(e for e, row in entries.items() if row.enabled))
        if entry.business_type != business_type:
            raise EntryMismatch(f"entry {entry.code} takes business type {entry.business_type!r}, "
                                f"not {business_type!r}")
        if campus and entry.campus_id and campus != entry.campus_id:
            raise EntryMismatch(f"entry {entry.code} belongs to campus {entry.campus_id!r}, not {campus!r}")
        if entry.channels and channel not in entry.channels:
            raise ChannelNotAllowed(f"entry {entry.code} does not take {channel}", allowed=entry.channels)
        if entry.methods and method not in entry.methods:
            raise ChannelNotAllowed(f"entry {entry.code} does not take method {method}", allowed=entry.methods)
        return entry, entry.campus_id or campus

    # --- apps ---------------------------------------------------------------------
    async def create_app(self, name: str, *, business_types: list[str] | None = None,
                         merchant_ids: list[str] | None = None, scopes: list[str] | None = None,
                         app_id: str | None = None, secret: str | None = None) -> tuple[str, str]:
        app_id = app_id or new_token("app_", 8)
        secret = secret or secrets.token_urlsafe(32)
        async with self.sm() as s:
            s.add(App(id=app_id, name=name, secret_enc=self.vault.encrypt(secret),
                      business_types=business_types or ["*"], merchant_ids=merchant_ids or [],
                      scopes=scopes or ["pay"], enabled=True))
            await s.commit()
        return app_id, secret

    async def app_exists(self, app_id: str) -> bool:
        async with self.rsm() as s:
            return await s.get(App, app_id) is not None

    async def get_app(self, app_id: str) -> AppInfo:
        async def load() -> AppInfo | None:
            async with self.rsm() as s:
                row = await s.get(App, app_id)
            return None if row is None else AppInfo(
                id=row.id, name=row.name, secret=self.vault.decrypt(row.secret_enc),
                business_types=tuple(row.business_types), merchant_ids=tuple(row.merchant_ids),
                scopes=tuple(row.scopes), enabled=row.enabled)

        info = await self._apps.get(app_id, load)
        if info is None or not info.enabled:
            raise UnknownApp(f"app {app_id!r} is unknown or disabled")
        return info

    # --- campuses and merchants ------------------------------------------------------
    async def upsert_campus(self, campus_id: str, name: str) -> None:
        async with self.sm() as s:
            row = await s.get(Campus, campus_id)
            if row is None:
                s.add(Campus(id=campus_id, name=name))
            else:
                row.name = name
            await s.commit()

    async def create_merchant(self, *, channel: str, name: str, config: dict[str, Any],
                              campus_id: str | None = None, business_types: list[str] | None = None,
                              merchant_id: str | None = None, priority: int = 100) -> str:
        cls = self.registry.channel(channel)
        try:
            cls.config_model.model_validate(config)
        except ValidationError as exc:
            raise ConfigError(f"merchant configuration for {channel} is invalid: {exc}") from exc
        merchant_id = merchant_id or new_token("mch_", 6)
        async with self.sm() as s:
            row = await s.get(Merchant, merchant_id)
            if row is None:
                s.add(Merchant(id=merchant_id, channel=channel, name=name, campus_id=campus_id,
                               business_types=business_types or [], config_enc=self.vault.encrypt_json(config),
                               enabled=True, priority=priority))
            else:  # re-keying an existing merchant (e.g. the demo's sandbox after a restart)
                if row.channel != channel:
                    raise ConfigError(f"merchant {merchant_id} belongs to {row.channel}, not {channel}")
                row.name, row.campus_id, row.priority = name, campus_id, priority
                row.business_types = business_types or []
                row.config_enc = self.vault.encrypt_json(config)
            await s.commit()
        self._adapters.pop(merchant_id)
        self._merchants.pop(channel)
        return merchant_id

    async def list_merchants(self) -> list[Merchant]:
        async with self.rsm() as s:
            return list((await s.execute(select(Merchant).order_by(Merchant.channel, Merchant.priority))).scalars())

    async def select_merchant(self, app: AppInfo, channel: str, business_type: str,
                              campus: str | None, entry: Entry | None = None) -> Merchant:
        """Route a payment to a merchant: the entry's merchant for the channel if it names
        one; otherwise channel, campus and business type must fit, most specific first."""
        if not app.allows_business_type(business_type):
            raise BusinessTypeForbidden(f"app {app.id} may not use business type {business_type!r}")
        rows = await self._enabled_merchants(channel)
        if entry is not None and entry.merchants.get(channel):
            wanted = entry.merchants[channel]
            chosen = next((m for m in rows if m.id == wanted), None)
            if chosen is None:
                raise NoMerchant(f"entry {entry.code} routes {channel} to merchant {wanted}, which is disabled")
            if not app.allows_merchant(chosen.id):
                raise MerchantForbidden(f"app {app.id} may not use merchant {chosen.id}")
            return chosen
        fits = [m for m in rows
                if (m.campus_id is None or m.campus_id == campus)
                and (not m.business_types or business_type in m.business_types)]
        if not fits:
            raise NoMerchant(f"no enabled {channel} merchant for campus={campus!r}, business_type={business_type!r}")
        allowed = [m for m in fits if app.allows_merchant(m.id)]
        if not allowed:
            raise MerchantForbidden(f"app {app.id} may not use any {channel} merchant that fits")
        allowed.sort(key=lambda m: (m.campus_id is None, not m.business_types, m.priority, m.id))
        return allowed[0]

    async def merchant(self, merchant_id: str, channel: str) -> Merchant:
        """One enabled merchant of a channel, by id."""
        chosen = next((m for m in await self._enabled_merchants(channel) if m.id == merchant_id), None)
        if chosen is None:
            raise NoMerchant(f"merchant {merchant_id} is not an enabled {channel} merchant")
        return chosen

    async def _enabled_merchants(self, channel: str) -> list[Merchant]:
        async def load() -> list[Merchant]:
            async with self.rsm() as s:
                return list((await s.execute(select(Merchant).where(
                    Merchant.channel == channel, Merchant.enabled.is_(True)))).scalars())

        return await self._merchants.get(channel, load)

    async def adapter_for(self, merchant_id: str) -> ChannelAdapter:
        """The adapter instance serving one merchant (rebuilt when its configuration changes)."""
        prior = self._adapters.peek(merchant_id)
        return (await self._adapters.get(merchant_id, lambda: self._load_adapter(merchant_id, prior)))[1]

    async def _load_adapter(self, merchant_id: str,
                            prior: tuple[str, ChannelAdapter] | None) -> tuple[str, ChannelAdapter]:
        async with self.rsm() as s:
            m = await s.get(Merchant, merchant_id)
        if m is None:
            raise NoMerchant(f"merchant {merchant_id!r} does not exist")
        digest = hashlib.sha256(m.config_enc.encode()).hexdigest()
        if prior and prior[0] == digest:
            return prior
        cls = self.registry.channel(m.channel)
        config = cls.config_model.model_validate(self.vault.decrypt_json(m.config_enc))
        adapter = cls(config, self.http)
        adapter.notify_url = f"{self.notify_base}/{m.channel}/{merchant_id}"
        return digest, adapter
