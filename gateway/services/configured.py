"""Configured upstream systems (business systems, insurance centres …): one table row per
system holding an adapter id and the adapter's configuration, encrypted at rest.

Rows are re-read at most every few seconds, and adapter instances are cached per
process, keyed by a digest of the stored configuration. Every process therefore
follows a change within ``CACHE_TTL``, and no correctness depends on this cache: it
only saves rebuilding adapters.
"""
from __future__ import annotations

import hashlib
import logging
import time
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import ValidationError
from sqlalchemy import select

from ..db.models import utcnow
from ..errors import ConfigError, ValidationFailed, YinyiError

if TYPE_CHECKING:
    from ..core import Core

log = logging.getLogger("yinyi.configured")
CACHE_TTL = 5.0
A = TypeVar("A")


class ConfiguredAdapters(Generic[A]):
    """Base of services whose rows name an adapter and carry its encrypted configuration."""

    model: Any  # the ORM class: id, adapter, config_enc, enabled, created_at, updated_at
    kind: str  # "business system", "insurance centre": for messages
    audit_prefix: str  # "his_system", "insurance_centre"
    unknown_error: type[YinyiError]

    def __init__(self, core: Core) -> None:
        self.core = core
        self._cache: tuple[float, dict[str, Any]] | None = None
        self._adapters: dict[str, tuple[str, A]] = {}

    def registered(self) -> dict[str, type]:
        """The registry table of adapter classes for this kind."""
        raise NotImplementedError

    def invalidate(self) -> None:
        self._cache = None

    async def _rows(self) -> dict[str, Any]:
        now = time.monotonic()
        if self._cache and now - self._cache[0] < CACHE_TTL:
            return self._cache[1]
        async with self.core.rsm() as s:
            rows = {r.id: r for r in (await s.execute(select(self.model))).scalars()}
        self._cache = (now, rows)
        return rows

    async def enabled_ids(self) -> list[str]:
        return sorted(k for k, r in (await self._rows()).items() if r.enabled)

    def _unknown(self, key: str) -> YinyiError:
        return self.unknown_error(f"{self.kind} {key!r} is not configured or is disabled", id=key)

    async def adapter(self, key: str, *, allow_disabled: bool = False) -> A:
        row = (await self._rows()).get(key)
        if row is None or not (row.enabled or allow_disabled):
            raise self._unknown(key)
        digest = hashlib.sha256((row.adapter + row.config_enc).encode()).hexdigest()
        hit = self._adapters.get(key)
        if hit and hit[0] == digest:
            return hit[1]
        cls: Any = self.adapter_class(row.adapter)
        config = cls.config_model.model_validate(self.core.vault.decrypt_json(row.config_enc))
        assert self.core.http is not None
        adapter: A = cls(config, self.core.http)
        if hit:
            await self._close(hit[1])
        self._adapters[key] = (digest, adapter)
        return adapter

    def adapter_class(self, adapter_id: str) -> type:
        cls = self.registered().get(adapter_id)
        if cls is None:
            raise ConfigError(f"no {self.kind} adapter {adapter_id!r} is registered", adapter=adapter_id,
                              available=sorted(self.registered()))
        return cls

    def validate_config(self, adapter_id: str, config: dict[str, Any]) -> type:
        """The adapter class, after checking ``config`` against its model (a bad field is named)."""
        cls: Any = self.adapter_class(adapter_id)
        try:
            cls.config_model.model_validate(config)
        except ValidationError as exc:
            raise ValidationFailed(f"configuration of adapter {adapter_id!r} is invalid",
                                   errors=[{"loc": ["config", *map(str, e["loc"])], "msg": e["msg"]}
                                           for e in exc.errors()]) from exc
        return cls

    async def upsert(self, actor: str, key: str, values: dict[str, Any], audit: dict[str, Any]) -> Any:
        """Create or replace one row (``values`` holds the plain ``config``; it is stored encrypted)."""
        now = utcnow()
        values = dict(values)
        values["config_enc"] = self.core.vault.encrypt_json(values.pop("config"))
        values["updated_at"] = now
        async with self.core.sm() as s, s.begin():
            row = await s.get(self.model, key)
            created = row is None
            if row is None:
                row = self.model(id=key, created_at=now, **values)
                s.add(row)
            else:
                for k, v in values.items():
                    setattr(row, k, v)
        await self.core.ledger.audit(actor, f"{self.audit_prefix}.{'create' if created else 'update'}", key, audit)
        self.invalidate()
        return row

    async def built(self, row: Any) -> Any:
        """The configured instance for a listing (capabilities follow configuration), else the class."""
        cls: Any = self.registered().get(row.adapter)
        if row.enabled and cls is not None and self.core.http is not None:
            try:
                return await self.adapter(row.id)
            except Exception:  # a broken configuration still lists, with its class
                log.exception("%s %s cannot be built", self.kind, row.id)
        return cls

    @staticmethod
    async def _close(adapter: Any) -> None:
        close = getattr(adapter, "aclose", None)
        if close is None:
            return
        try:
            await close()
        except Exception:  # closing must never stop a reload or shutdown
            log.exception("closing adapter %s failed", getattr(adapter, "id", adapter))

    async def aclose(self) -> None:
        for _, adapter in self._adapters.values():
            await self._close(adapter)
        self._adapters.clear()
