"""Configured business systems (业务系统: HIS, exam, nutrition …) and their adapter instances.

A system is configuration, not code: an adapter id (``rest``, ``soap``, ``dbview`` or
a plugin's), the adapter's configuration (encrypted at rest: it holds secrets and
database credentials), the business types it owns, and gateway-side options. The
storage and adapter cache are shared with insurance centres (``configured.py``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from ..db.models import HisSystem
from ..errors import HisSystemUnknown
from ..his import HIS_BILL_TYPES, HisAdapter
from .configured import ConfiguredAdapters

if TYPE_CHECKING:
    from ..core import Core

log = logging.getLogger("yinyi.his")


class SystemOptions(BaseModel):
    """Gateway-side behaviour for one business system."""

    model_config = ConfigDict(extra="forbid")

    verify_amount: bool = Field(default=True, description="Check a payment's amount against the pending charges first")
    write_back: bool = Field(default=True, description="Record successful payments in the system")
    refund_write_back: bool = Field(default=True, description="Record refunds the caller asks to be written back")
    reconcile: bool = Field(default=True, description="Fetch the system's daily bills for reconciliation")
    recon_bill_types: list[str] = Field(default_factory=lambda: [t.value for t in HIS_BILL_TYPES],
                                        description="The bill types fetched for reconciliation")


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


class HisSystems(ConfiguredAdapters[HisAdapter]):
    model = HisSystem
    kind = "business system"
    audit_prefix = "his_system"
    unknown_error = HisSystemUnknown

    def registered(self) -> dict[str, type]:
        return self.core.registry.his_adapters

    def _info(self, row: HisSystem) -> SystemInfo:
        return SystemInfo(id=row.id, name=row.name, adapter_id=row.adapter, business_types=tuple(row.business_types),
                          options=SystemOptions.model_validate(row.options or {}), enabled=row.enabled)

    async def get(self, system_id: str) -> SystemInfo:
        row = (await self._rows()).get(system_id)
        if row is None or not row.enabled:
            raise HisSystemUnknown(f"business system {system_id!r} is not configured or is disabled",
                                   system=system_id, available=await self.enabled_ids())
        return self._info(row)

    async def enabled_systems(self) -> list[SystemInfo]:
        return [self._info(r) for r in sorted((await self._rows()).values(), key=lambda r: r.id) if r.enabled]

    async def for_business_type(self, business_type: str) -> SystemInfo | None:
        """The system owning a business type: an exact listing wins over a ``*`` catch-all."""
        rows = [self._info(r) for r in (await self._rows()).values() if r.enabled]
        exact = sorted((s for s in rows if business_type in s.business_types), key=lambda s: s.id)
        if exact:
            return exact[0]
        wild = sorted((s for s in rows if "*" in s.business_types), key=lambda s: s.id)
        return wild[0] if wild else None

    # --- administration -----------------------------------------------------------------
    async def put(self, actor: str, system_id: str, body: SystemIn) -> dict[str, Any]:
        cls = self.validate_config(body.adapter, body.config)
        row = await self.upsert(actor, system_id, {
            "name": body.name, "adapter": body.adapter, "business_types": body.business_types,
            "config": body.config, "options": body.options.model_dump(), "enabled": body.enabled},
            {"adapter": body.adapter, "business_types": body.business_types, "enabled": body.enabled})
        built: Any = cls
        if body.enabled and self.core.http is not None:
            built = await self.adapter(system_id)
        return system_out(row, built)

    async def list(self) -> list[dict[str, Any]]:
        return [system_out(r, await self.built(r)) for r in sorted((await self._rows()).values(), key=lambda r: r.id)]


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
