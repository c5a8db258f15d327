"""Configured business systems (业务系统: HIS, exam, nutrition …) and their adapter instances.

A system is configuration, not code: an adapter id (``rest``, ``soap``, ``dbview`` or
a plugin's), the adapter's configuration (encrypted at rest: it holds secrets and
database credentials), the business types it owns, and gateway-side options.
Adapter instances are cached per process and rebuilt when the stored configuration
changes, checked at most every few seconds, so every process follows an update.
"""
from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select

from ..db.models import HisSystem, utcnow
from ..errors import ConfigError, HisSystemUnknown, ValidationFailed
from ..his import HisAdapter

if TYPE_CHECKING:
    from ..core import Core

log = logging.getLogger("yinyi.his")
_CACHE_TTL = 5.0


class SystemOptions(BaseModel):
    """Gateway-side behaviour for one business system."""

    model_config = ConfigDict(extra="forbid")

    verify_amount: bool = Field(default=True, description="Check a payment's amount against the pending charges first")
    write_back: bool = Field(default=True, description="Record successful payments in the system")
    refund_write_back: bool = Field(default=True, description="Record refunds the caller asks to be written back")


class SystemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    adapter: str = Field(min_length=1, max_length=40)
    business_types: list[str] = Field(default_factory=list)
    config: dict[str, Any]
    options: SystemOptions = Field(default_factory=SystemOptions)
    enabled: bool = True


@dataclass(frozen=True)
class SystemInfo:
    id: str
    name: str
    adapter_id: str
    business_types: tuple[str, ...]
    options: SystemOptions
    enabled: bool

    def owns(self, business_type: str) -> bool:
        return "*" in self.business_types or business_type in self.business_types


def system_out(row: HisSystem, adapter_cls: type[HisAdapter] | HisAdapter | None) -> dict[str, Any]:
    """``adapter_cls`` may be the configured instance: its capabilities follow its configuration."""
    return {"id": row.id, "name": row.name, "adapter": row.adapter, "business_types": row.business_types,
            "options": row.options, "enabled": row.enabled,
            "capabilities": sorted(c.value for c in adapter_cls.capabilities) if adapter_cls else [],
            "updated_at": row.updated_at.isoformat()}


class HisSystems:
    def __init__(self, core: Core) -> None:
        self.core = core
        self._cache: tuple[float, dict[str, HisSystem]] | None = None
        self._adapters: dict[str, tuple[str, HisAdapter]] = {}

    def invalidate(self) -> None:
        self._cache = None

    async def _rows(self) -> dict[str, HisSystem]:
        now = time.monotonic()
        if self._cache and now - self._cache[0] < _CACHE_TTL:
            return self._cache[1]
        async with self.core.rsm() as s:
            rows = {r.id: r for r in (await s.execute(select(HisSystem))).scalars()}
        self._cache = (now, rows)
        return rows

    def _info(self, row: HisSystem) -> SystemInfo:
        return SystemInfo(id=row.id, name=row.name, adapter_id=row.adapter, business_types=tuple(row.business_types),
                          options=SystemOptions.model_validate(row.options or {}), enabled=row.enabled)

    async def get(self, system_id: str) -> SystemInfo:
        row = (await self._rows()).get(system_id)
        if row is None or not row.enabled:
            raise HisSystemUnknown(f"business system {system_id!r} is not configured or is disabled",
                                   system=system_id, available=await self.enabled_ids())
        return self._info(row)

    async def enabled_ids(self) -> list[str]:
        return sorted(k for k, r in (await self._rows()).items() if r.enabled)

    async def for_business_type(self, business_type: str) -> SystemInfo | None:
        """The system owning a business type: an exact listing wins over a ``*`` catch-all."""
        rows = [self._info(r) for r in (await self._rows()).values() if r.enabled]
        exact = sorted((s for s in rows if business_type in s.business_types), key=lambda s: s.id)
        if exact:
            return exact[0]
        wild = sorted((s for s in rows if "*" in s.business_types), key=lambda s: s.id)
        return wild[0] if wild else None

    async def adapter(self, system_id: str) -> HisAdapter:
        row = (await self._rows()).get(system_id)
        if row is None or not row.enabled:
            raise HisSystemUnknown(f"business system {system_id!r} is not configured or is disabled",
                                   system=system_id)
        digest = hashlib.sha256((row.adapter + row.config_enc).encode()).hexdigest()
        hit = self._adapters.get(system_id)
        if hit and hit[0] == digest:
            return hit[1]
        cls = self._adapter_class(row.adapter)
        config = cls.config_model.model_validate(self.core.vault.decrypt_json(row.config_enc))
        assert self.core.http is not None
        adapter = cls(config, self.core.http)
        if hit:
            await self._close(hit[1])
        self._adapters[system_id] = (digest, adapter)
        return adapter

    def _adapter_class(self, adapter_id: str) -> type[HisAdapter]:
        cls = self.core.registry.his_adapters.get(adapter_id)
        if cls is None:
            raise ConfigError(f"no business-system adapter {adapter_id!r} is registered",
                              adapter=adapter_id, available=sorted(self.core.registry.his_adapters))
        return cls

    @staticmethod
    async def _close(adapter: HisAdapter) -> None:
        try:
            await adapter.aclose()
        except Exception:  # closing must never stop a reload or shutdown
            log.exception("closing business-system adapter %s failed", adapter.id)

    async def aclose(self) -> None:
        for _, adapter in self._adapters.values():
            await self._close(adapter)
        self._adapters.clear()

    # --- administration -----------------------------------------------------------------
    async def put(self, actor: str, system_id: str, body: SystemIn) -> dict[str, Any]:
        cls = self._adapter_class(body.adapter)
        try:
            cls.config_model.model_validate(body.config)
        except ValidationError as exc:
            raise ValidationFailed(f"configuration of adapter {body.adapter!r} is invalid",
                                   errors=[{"loc": ["config", *map(str, e["loc"])], "msg": e["msg"]}
                                           for e in exc.errors()]) from exc
        now = utcnow()
        values = {"name": body.name, "adapter": body.adapter, "business_types": body.business_types,
                  "config_enc": self.core.vault.encrypt_json(body.config),
                  "options": body.options.model_dump(), "enabled": body.enabled, "updated_at": now}
        async with self.core.sm() as s, s.begin():
            row = await s.get(HisSystem, system_id)
            created = row is None
            if row is None:
                row = HisSystem(id=system_id, created_at=now, **values)
                s.add(row)
            else:
                for k, v in values.items():
                    setattr(row, k, v)
        await self.core.ledger.audit(actor, "his_system.create" if created else "his_system.update", system_id,
                                     {"adapter": body.adapter, "business_types": body.business_types,
                                      "enabled": body.enabled})
        self.invalidate()
        built: Any = cls
        if body.enabled and self.core.http is not None:
            built = await self.adapter(system_id)
        return system_out(row, built)

    async def list(self) -> list[dict[str, Any]]:
        out = []
        for r in sorted((await self._rows()).values(), key=lambda r: r.id):
            adapter: Any = self.core.registry.his_adapters.get(r.adapter)
            if r.enabled and adapter is not None and self.core.http is not None:
                try:
                    adapter = await self.adapter(r.id)
                except Exception:  # a broken configuration still lists, with its class's capabilities
                    log.exception("business system %s cannot be built", r.id)
            out.append(system_out(r, adapter))
        return out


async def pending_charges(core: Core, *, system_id: str | None, business_type: str | None,
                          query: Any) -> dict[str, Any]:
    """待缴费查询 for kiosks, clinic-room QR and mini-programs; the patient's name is masked."""
    from ..errors import HisSystemUnknown
    from ..his import HisCapability
    from ..money import fen_to_yuan
    from .writeback import _mask_name

    his = core.his
    system = await his.get(system_id) if system_id else (
        await his.for_business_type(business_type) if business_type else None)
    if system is None:
        raise HisSystemUnknown("name the business system (system) or a business_type it owns",
                               available=await his.enabled_ids())
    adapter = await his.adapter(system.id)
    if not adapter.supports(HisCapability.PENDING):
        from ..errors import HisNotSupported

        raise HisNotSupported("pending", adapter.id)
    charges = await adapter.pending_charges(query)
    items = []
    for c in charges:
        d = c.model_dump(mode="json")
        d["patient_name"] = _mask_name(c.patient_name) if c.patient_name else None
        d["amount_yuan"] = fen_to_yuan(c.amount)
        items.append(d)
    return {"system": system.id, "items": items, "total": sum(c.amount for c in charges),
            "total_yuan": fen_to_yuan(sum(c.amount for c in charges))}
