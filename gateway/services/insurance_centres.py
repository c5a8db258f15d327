"""Configured insurance centres (医保中心) and their adapter instances.

A centre is configuration, not code: an adapter id (``nhsa`` or a plugin's) and the
adapter's configuration, encrypted at rest (it holds OAuth secrets and SM keys).
Adapter instances are cached per process, keyed by a digest of the stored
configuration and re-read every few seconds, so every process follows an update.
Calls to a centre go through :meth:`InsuranceCentres.call`, which records them in
the interface log (bodies masked) and in the metrics.
"""
from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select

from ..db.models import InsuranceCentre, utcnow
from ..errors import ConfigError, InsuranceCentreUnknown, UpstreamError, ValidationFailed, YinyiError
from ..insurance import InsuranceAdapter
from ..metrics import UPSTREAM_CALLS, UPSTREAM_LATENCY

if TYPE_CHECKING:
    from ..core import Core

log = logging.getLogger("yinyi.insurance")
_CACHE_TTL = 5.0
T = TypeVar("T")


class CentreIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    adapter: str = Field(min_length=1, max_length=40)
    config: dict[str, Any]
    enabled: bool = True


def centre_out(row: InsuranceCentre, adapter_cls: Any) -> dict[str, Any]:
    profile = None
    try:
        profile = row.adapter and getattr(getattr(adapter_cls, "config", None), "profile", None)
    except Exception:  # pragma: no cover - a description never fails a listing
        profile = None
    return {"id": row.id, "name": row.name, "adapter": row.adapter, "enabled": row.enabled,
            "adapter_name_zh": getattr(adapter_cls, "name_zh", None),
            "profile": getattr(profile, "name", None), "updated_at": row.updated_at.isoformat()}


class InsuranceCentres:
    def __init__(self, core: Core) -> None:
        self.core = core
        self._cache: tuple[float, dict[str, InsuranceCentre]] | None = None
        self._adapters: dict[str, tuple[str, InsuranceAdapter]] = {}

    def invalidate(self) -> None:
        self._cache = None

    async def _rows(self) -> dict[str, InsuranceCentre]:
        now = time.monotonic()
        if self._cache and now - self._cache[0] < _CACHE_TTL:
            return self._cache[1]
        async with self.core.rsm() as s:
            rows = {r.id: r for r in (await s.execute(select(InsuranceCentre))).scalars()}
        self._cache = (now, rows)
        return rows

    async def enabled_ids(self) -> list[str]:
        return sorted(k for k, r in (await self._rows()).items() if r.enabled)

    async def resolve(self, centre_id: str | None) -> str:
        """The centre a request names, or the only enabled one when it names none."""
        ids = await self.enabled_ids()
        if centre_id is None:
            if len(ids) == 1:
                return ids[0]
            raise InsuranceCentreUnknown("name the insurance centre (centre)" if ids else
                                         "no insurance centre is configured", available=ids)
        if centre_id not in ids:
            raise InsuranceCentreUnknown(f"insurance centre {centre_id!r} is not configured or is disabled",
                                         centre=centre_id, available=ids)
        return centre_id

    async def adapter(self, centre_id: str, *, allow_disabled: bool = False) -> InsuranceAdapter:
        row = (await self._rows()).get(centre_id)
        if row is None or not (row.enabled or allow_disabled):
            raise InsuranceCentreUnknown(f"insurance centre {centre_id!r} is not configured or is disabled",
                                         centre=centre_id)
        digest = hashlib.sha256((row.adapter + row.config_enc).encode()).hexdigest()
        hit = self._adapters.get(centre_id)
        if hit and hit[0] == digest:
            return hit[1]
        cls = self._adapter_class(row.adapter)
        config = cls.config_model.model_validate(self.core.vault.decrypt_json(row.config_enc))
        assert self.core.http is not None
        adapter = cls(config, self.core.http)
        self._adapters[centre_id] = (digest, adapter)
        return adapter

    def _adapter_class(self, adapter_id: str) -> type[InsuranceAdapter]:
        cls = self.core.registry.insurance_adapters.get(adapter_id)
        if cls is None:
            raise ConfigError(f"no insurance adapter {adapter_id!r} is registered",
                              adapter=adapter_id, available=sorted(self.core.registry.insurance_adapters))
        return cls

    async def aclose(self) -> None:
        self._adapters.clear()

    # --- calls ----------------------------------------------------------------------------
    async def call(self, centre_id: str, op: str, coro: Awaitable[T], *, request: Any = None,
                   subject_id: str | None = None) -> T:
        """Await one adapter call, recording it; exceptions pass through unchanged."""
        t0 = time.perf_counter()
        iface = f"insurance.{op}"
        outcome, code, response = "normal", None, None
        try:
            result = await coro
            response = result.model_dump(mode="json") if isinstance(result, BaseModel) else None
            return result
        except UpstreamError as exc:
            outcome, code = "abnormal", exc.code
            raise
        except YinyiError as exc:
            outcome, code = "rejected", exc.code
            raise
        finally:
            elapsed = time.perf_counter() - t0
            UPSTREAM_CALLS.labels(interface=iface, outcome=outcome).inc()
            UPSTREAM_LATENCY.labels(interface=iface).observe(elapsed)
            req = request.model_dump(mode="json", exclude={"password"}) if isinstance(request, BaseModel) \
                else request
            self.core.ilog.record(direction="out", interface=iface, outcome=outcome, latency_ms=elapsed * 1000,
                                  channel=f"insurance:{centre_id}", payment_id=subject_id, error_code=code,
                                  request=req, response=response)

    # --- administration -----------------------------------------------------------------
    async def put(self, actor: str, centre_id: str, body: CentreIn) -> dict[str, Any]:
        cls = self._adapter_class(body.adapter)
        try:
            cls.config_model.model_validate(body.config)
        except ValidationError as exc:
            raise ValidationFailed(f"configuration of insurance adapter {body.adapter!r} is invalid",
                                   errors=[{"loc": ["config", *map(str, e["loc"])], "msg": e["msg"]}
                                           for e in exc.errors()]) from exc
        now = utcnow()
        values = {"name": body.name, "adapter": body.adapter, "config_enc": self.core.vault.encrypt_json(body.config),
                  "enabled": body.enabled, "updated_at": now}
        async with self.core.sm() as s, s.begin():
            row = await s.get(InsuranceCentre, centre_id)
            created = row is None
            if row is None:
                row = InsuranceCentre(id=centre_id, created_at=now, **values)
                s.add(row)
            else:
                for k, v in values.items():
                    setattr(row, k, v)
        await self.core.ledger.audit(actor, "insurance_centre.create" if created else "insurance_centre.update",
                                     centre_id, {"adapter": body.adapter, "enabled": body.enabled})
        self.invalidate()
        built: Any = cls
        if body.enabled and self.core.http is not None:
            built = await self.adapter(centre_id)
        return centre_out(row, built)

    async def list(self) -> list[dict[str, Any]]:
        out = []
        for r in sorted((await self._rows()).values(), key=lambda r: r.id):
            built: Any = self.core.registry.insurance_adapters.get(r.adapter)
            if r.enabled and built is not None and self.core.http is not None:
                try:
                    built = await self.adapter(r.id)
                except Exception:  # a broken configuration still lists
                    log.exception("insurance centre %s cannot be built", r.id)
            out.append(centre_out(r, built))
        return out
